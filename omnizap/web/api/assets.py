"""Sticker files, previews and WhatsApp downloads of reachable packs (docs/delivery.md).

- GET|HEAD {api}/{packKey}/stickers/{stickerId}[.webp][?size=96|128|256]
- GET|HEAD {api}/{packKey}/download/whatsapp

Errors are raised (PackNotFound, StickerNotFound, InvalidInput, StickerFileMissing, ExportRefused)
and answered in the API's JSON error shape by `omnizap.web.api.errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from omnizap.delivery import (
    IMMUTABLE_CACHE_CONTROL,
    PREVIEW_SIZES,
    StickerDelivery,
    WhatsAppDownloads,
    parse_preview_size,
)
from omnizap.delivery.downloads import ZIP_CONTENT_TYPE, safe_filename
from omnizap.web.api.routing import add_get_and_head, app_service
from omnizap.web.http.cache import etag_matches

DEFAULT_API_BASE = "/api/sticker-packs"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# The download URL does not name a version: caches may keep the zip but must revalidate (cheap 304).
DOWNLOAD_CACHE_CONTROL = "public, no-cache"
PREVIEW_SIZE_PARAMETER = {
    "name": "size",
    "in": "query",
    "required": False,
    "description": f"Preview side in pixels, one of {PREVIEW_SIZES} (absent: the 512 px sticker).",
    "schema": {"type": "integer", "enum": list(PREVIEW_SIZES)},
}


def sticker_delivery(request: Request) -> StickerDelivery:
    return app_service(request, "sticker_delivery", lambda rt: StickerDelivery(rt.database, rt.storage))


def whatsapp_downloads(request: Request) -> WhatsAppDownloads:
    return app_service(
        request, "whatsapp_downloads", lambda rt: WhatsAppDownloads(rt.database, rt.storage, rt.settings)
    )


def serve_sticker(request: Request, pack_key: str, sticker_file: str) -> Response:
    size = parse_preview_size(request.query_params.get("size"))
    delivery = sticker_delivery(request)
    location = delivery.locate(pack_key, sticker_file)
    etag = location.etag(size)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE_CACHE_CONTROL, **NOSNIFF}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if size is None and request.method == "HEAD" and delivery.has_file(location):
        headers["Content-Length"] = str(location.size_bytes)
        return Response(status_code=200, headers=headers, media_type=location.content_type)
    data = delivery.read(location) if size is None else delivery.read_preview(location, size)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return Response(status_code=200, headers=headers, media_type=location.content_type)
    return Response(data, status_code=200, headers=headers, media_type=location.content_type)


def download_whatsapp(request: Request, pack_key: str) -> Response:
    downloads = whatsapp_downloads(request)
    prepared = downloads.prepare(pack_key)
    headers = {"Cache-Control": DOWNLOAD_CACHE_CONTROL, **NOSNIFF}
    if etag_matches(request.headers.get("if-none-match"), prepared.etag):
        return Response(status_code=304, headers={"ETag": prepared.etag, **headers})
    export, etag = downloads.build(prepared)
    headers.update(
        {
            "ETag": etag,
            "Content-Disposition": f'attachment; filename="{safe_filename(export.filename)}"',
        }
    )
    if request.method == "HEAD":
        headers["Content-Length"] = str(export.size)
        return Response(status_code=200, headers=headers, media_type=ZIP_CONTENT_TYPE)
    return Response(export.data, status_code=200, headers=headers, media_type=ZIP_CONTENT_TYPE)


def build_router(api_base: str = DEFAULT_API_BASE) -> APIRouter:
    """The delivery routes under `api_base` (STICKER_API_BASE_PATH)."""
    base = "/" + api_base.strip("/")
    router = APIRouter(tags=["delivery"])
    routes: list[tuple[str, Callable[..., Response], str, dict[str, Any]]] = [
        (
            f"{base}/{{pack_key}}/stickers/{{sticker_file}}",
            serve_sticker,
            "sticker_asset",
            {
                "summary": "A sticker file (or a smaller preview)",
                "description": "`{stickerId}.webp` of a sticker in a reachable pack (public or unlisted). "
                "`?size=96|128|256` gives a preview of that size. Strong `ETag` from the content hash, "
                "`Cache-Control: public, max-age=31536000, immutable`, 304 on `If-None-Match`.",
                "openapi_extra": {"parameters": [PREVIEW_SIZE_PARAMETER]},
                "responses": {200: {"content": {"image/webp": {}}, "description": "The WebP file."}},
            },
        ),
        (
            f"{base}/{{pack_key}}/download/whatsapp",
            download_whatsapp,
            "sticker_pack_download_whatsapp",
            {
                "summary": "The pack as a WhatsApp sticker pack (.zip)",
                "description": "contents.json, tray icon and stickers, valid for WhatsApp's importer; "
                "422 `EXPORT_INVALID` names the WhatsApp rule the pack breaks (e.g. fewer than 3 stickers).",
                "responses": {200: {"content": {ZIP_CONTENT_TYPE: {}}, "description": "The zip."}},
            },
        ),
    ]
    for path, endpoint, name, documentation in routes:
        add_get_and_head(router, path, endpoint, name=name, **documentation)
    return router


router = build_router()
