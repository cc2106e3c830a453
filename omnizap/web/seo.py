"""`/sitemap.xml` and `/robots.txt` (reference http §10).

The sitemap lists the site's own pages and every *listed* pack (public, published, not deleted)
with its last change; unlisted packs are reachable by link but never advertised, which the
original did differently (it put unlisted packs in the sitemap). `catalog.sitemap_entries()` gives
exactly the listed packs; the body is cached per catalog data version like the API's answers.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omnizap.config import Settings
from omnizap.web.http.cache import serve_cached

SITEMAP_PATH = "/sitemap.xml"
SITEMAP_MEDIA_TYPE = "application/xml; charset=utf-8"
SITEMAP_CACHE_CONTROL = "public, max-age=180"


def _day(moment: Any) -> str | None:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
        return moment.date().isoformat()
    if isinstance(moment, dt.date):
        return moment.isoformat()
    if isinstance(moment, str) and len(moment) >= 10:
        return moment[:10]
    return None


def _url(loc: str, lastmod: str | None, changefreq: str, priority: str) -> str:
    parts = [f"<loc>{escape(loc)}</loc>"]
    if lastmod:
        parts.append(f"<lastmod>{lastmod}</lastmod>")
    parts.append(f"<changefreq>{changefreq}</changefreq><priority>{priority}</priority>")
    return "<url>" + "".join(parts) + "</url>"


def render_sitemap(settings: Settings, entries: Iterable[tuple[str, Any]]) -> bytes:
    """The sitemap XML: home, the catalog page, then at most STICKER_SITEMAP_MAX_PACKS packs."""
    origin = settings.site_origin.rstrip("/")
    web = "/" + settings.sticker_web_path.strip("/")
    packs = list(entries)[: settings.sticker_sitemap_max_packs]
    days = [day for _, updated in packs if (day := _day(updated))]
    newest = max(days) if days else None
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
        _url(origin + "/", newest, "daily", "1.0"),
        _url(origin + web, newest, "hourly", "0.9"),
    ]
    for pack_key, updated in packs:
        loc = f"{origin}{web}/{urllib.parse.quote(str(pack_key), safe='')}"
        lines.append(_url(loc, _day(updated), "daily", "0.7"))
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode()


def render_robots(settings: Settings) -> str:
    origin = settings.site_origin.rstrip("/")
    api = "/" + settings.sticker_api_base_path.strip("/")
    # JSON is not for search results; sticker images are (pack pages use them as og:image), and
    # the longest matching rule wins for crawlers that support wildcards.
    lines = ["User-agent: *", "Allow: /", f"Allow: {api}/*/stickers/", "Disallow: /api/"]
    if not api.startswith("/api/"):
        lines.append(f"Disallow: {api}/")
    if settings.metrics_path:
        lines.append(f"Disallow: {settings.metrics_path}")
    lines.append(f"Sitemap: {origin}{SITEMAP_PATH}")
    return "\n".join(lines) + "\n"


def build_seo_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.api_route(SITEMAP_PATH, methods=["GET", "HEAD"])
    def sitemap(request: Request) -> Response:
        catalog = request.app.state.catalog
        settings: Settings = request.app.state.runtime.settings
        version = catalog.data_version()
        return serve_cached(
            request,
            request.app.state.response_cache,
            version,
            lambda: (render_sitemap(settings, catalog.sitemap_entries()), SITEMAP_MEDIA_TYPE),
            cache_control=SITEMAP_CACHE_CONTROL,
        )

    @router.api_route("/robots.txt", methods=["GET", "HEAD"])
    def robots(request: Request) -> Response:
        settings: Settings = request.app.state.runtime.settings
        return Response(
            render_robots(settings),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    return router
