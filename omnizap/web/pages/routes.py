"""Server-rendered catalog pages: `/`, `/stickers`, `/stickers/{packKey}` and their `/static` files.

Data comes from the catalog's read service in-process (`CatalogReader`), never over HTTP. Templates
autoescape everything; the pages run no inline script, so they work under a strict CSP.
"""

from __future__ import annotations

import functools
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from omnizap.config import Settings
from omnizap.platform.storage.s3 import download_origins
from omnizap.web.pages import views
from omnizap.web.pages.assets import IMMUTABLE_CACHE, SHORT_CACHE, STATIC_PREFIX, asset_url, static_files
from omnizap.web.pages.source import CatalogReader, CatalogUnavailable

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
logger = logging.getLogger(__name__)
SITE_NAME = "OmniZap Stickers"
PACK_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,159}$")
THEMES_SAMPLE = 60
HTML_CACHE = "no-cache"  # counts change; let browsers revalidate every time


@functools.cache
def template_environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.globals["asset"] = asset_url
    environment.filters["number"] = views.format_number
    return environment


def _origin(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def content_security_policy(settings: Settings) -> str:
    """Strict CSP for the pages; images may also come from the object store or CDN (302 delivery):
    the origin redirects point to (virtual-hosted buckets and AWS included), plus the configured
    endpoint and CDN."""
    image_sources = ["'self'", "data:"]
    candidates = [
        *download_origins(settings),
        settings.sticker_object_storage_cdn_base_url,
        settings.sticker_object_storage_endpoint,
    ]
    for candidate in candidates:
        origin = _origin(candidate or "")
        if origin and origin not in image_sources:
            image_sources.append(origin)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(image_sources)}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _settings(request: Request) -> Settings:
    runtime = getattr(request.app.state, "runtime", None)
    settings = getattr(runtime, "settings", None)
    if settings is None:
        raise CatalogUnavailable("the web app has no runtime (app.state.runtime)")
    return settings


def _reader(request: Request) -> CatalogReader:
    """The catalog read service the app was built with (see `omnizap.web.pages.source`)."""
    from omnizap.web.pages.source import catalog_reader_for

    return catalog_reader_for(request.app)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    page: Mapping[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    settings = _settings(request)
    site = {
        "name": SITE_NAME,
        "lang": "en",
        "api_base": settings.sticker_api_base_path.rstrip("/"),
        "web_path": settings.sticker_web_path.rstrip("/") or "/stickers",
    }
    full_page = {"robots": None, "canonical": None, "image": None, "og_type": None, "json_ld": None, **page}
    body = template_environment().get_template(template).render(site=site, page=full_page, **context)
    response = HTMLResponse(body, status_code=status_code)
    response.headers["Content-Security-Policy"] = content_security_policy(settings)
    response.headers["Cache-Control"] = HTML_CACHE
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


def not_found_page(request: Request, heading: str, message: str) -> HTMLResponse:
    return render(
        request,
        "not_found.html",
        {"nav": "", "heading": heading, "message": message},
        page={"title": f"{heading} · {SITE_NAME}", "description": message, "robots": "noindex, nofollow"},
        status_code=404,
    )


def _unavailable(request: Request, error: CatalogUnavailable) -> HTMLResponse:
    logger.warning("catalog pages unavailable: %s", error)  # the visitor sees a plain 503 page
    response = not_found_page(request, "Catalog unavailable", "The catalog is not available right now.")
    response.status_code = 503
    return response


def build_router(web_path: str = "/stickers") -> APIRouter:
    """The pages' routes with the catalog under `web_path` (STICKER_WEB_PATH, default /stickers)."""
    base = "/" + web_path.strip("/")
    router = APIRouter(include_in_schema=False)

    def guarded(handler: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(handler)
        def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
            try:
                return handler(request, *args, **kwargs)
            except CatalogUnavailable as error:
                return _unavailable(request, error)

        return wrapper

    @router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    @guarded
    def home(request: Request) -> Response:
        reader = _reader(request)
        settings = _settings(request)
        context = views.home_context(
            reader.intents(limit=views.HOME_COLLECTION_SIZE), reader.stats(), settings.sticker_web_path
        )
        origin = settings.site_origin.rstrip("/")
        return render(
            request,
            "home.html",
            context,
            page={
                "title": f"{SITE_NAME}: sticker packs for your chats",
                "description": "Browse, search and add community sticker packs to WhatsApp.",
                "canonical": origin + "/",
            },
        )

    @router.api_route(base, methods=["GET", "HEAD"], response_class=HTMLResponse)
    @router.api_route(base + "/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    @guarded
    def catalog(request: Request) -> Response:
        reader = _reader(request)
        settings = _settings(request)
        query = views.CatalogQuery.from_params(request.query_params)
        listing = reader.list_packs(
            q=query.q,
            sort=query.sort,
            categories=[query.category] if query.category else [],
            intent=query.intent,
            limit=views.PAGE_SIZE,
            offset=query.offset,
        )
        sample = reader.list_packs(q="", sort="", categories=[], intent="", limit=THEMES_SAMPLE, offset=0)
        themes = views.theme_options(sample.get("data") or [], query.category)
        context = views.catalog_context(query, listing, themes, base)
        title = f"Packs matching “{query.q}”" if query.q else "Sticker packs"
        origin = settings.site_origin.rstrip("/")
        canonical_params = query.params(offset=query.offset)
        return render(
            request,
            "catalog.html",
            context,
            page={
                "title": f"{title} · {SITE_NAME}",
                "description": "Search and browse sticker packs by name, creator or theme.",
                "canonical": views.page_url(origin + base, canonical_params),
                # Search result pages are not worth indexing; the plain catalog is.
                "robots": "noindex, follow" if query.q else None,
            },
        )

    @router.api_route(base + "/{pack_key}", methods=["GET", "HEAD"], response_class=HTMLResponse)
    @guarded
    def pack_page(request: Request, pack_key: str) -> Response:
        missing = ("Pack not found", "This pack does not exist, or it is not public.")
        if not PACK_KEY_PATTERN.match(pack_key):
            return not_found_page(request, *missing)
        details = _reader(request).pack_detail(pack_key)
        if details is None:
            return not_found_page(request, *missing)
        settings = _settings(request)
        origin = settings.site_origin.rstrip("/")
        context = views.pack_context(details, origin)
        pack = context["pack"]
        cover = views.absolute_url(origin, pack["cover_url"]) if pack.get("cover_url") else None
        return render(
            request,
            "pack.html",
            context,
            page={
                "title": f"{pack['name']} · {SITE_NAME}",
                "description": views.pack_description(pack),
                "canonical": context["share_url"],
                "image": cover,
                "og_type": "article",
                "robots": "index, follow, max-image-preview:large"
                if pack.get("visibility") == "public"
                else "noindex, follow",  # unlisted: reachable by link, not advertised
                "json_ld": views.pack_json_ld(pack, context["share_url"], cover),
            },
        )

    @router.api_route(STATIC_PREFIX + "/{name:path}", methods=["GET", "HEAD"])
    def static_file(request: Request, name: str) -> Response:
        found = static_files().get(name)
        if found is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        headers = {
            "ETag": found.etag,
            "Cache-Control": IMMUTABLE_CACHE
            if request.query_params.get("v") == found.version
            else SHORT_CACHE,
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.content_type, headers=headers)

    return router


router = build_router()
