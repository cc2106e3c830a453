"""Server-rendered web pages of the catalog: home, catalog search, pack pages (FastAPI router).

The web app includes `router`; `build_router(web_path)` makes one for another STICKER_WEB_PATH.
"""

from omnizap.web.pages.routes import build_router, router

__all__ = ["build_router", "router"]
