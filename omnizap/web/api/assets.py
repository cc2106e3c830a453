"""Sticker files, previews and WhatsApp downloads of reachable packs (docs/delivery.md).

- GET|HEAD {api}/{packKey}/stickers/{stickerId}[.webp][?size=96|128|256][&expires=…&signature=…]
  200 from local disk, or 302 to the object store for viewers in the `enable_object_storage_delivery`
  rollout (`omnizap.delivery.objects`)
- GET|HEAD {api}/{packKey}/download/whatsapp

Errors are raised (PackNotFound, StickerNotFound, InvalidInput, StickerFileMissing, ExportRefused,
LinkInvalid, LinkExpired) and answered in the API's JSON error shape by `omnizap.web.api.errors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry

from omnizap.catalog.interactions import clean_viewer_key, clean_viewer_token, client_key_secret
from omnizap.delivery import (
    IMMUTABLE_CACHE_CONTROL,
    PREVIEW_SIZES,
    StickerDelivery,
    WhatsAppDownloads,
    parse_preview_size,
)
from omnizap.delivery.downloads import ZIP_CONTENT_TYPE, safe_filename
from omnizap.delivery.links import EXPIRES_PARAMETER, SIGNATURE_PARAMETER, SignedLinks
from omnizap.delivery.objects import DeliveryMetrics, ObjectDelivery, viewer_subject
from omnizap.web.api.interactions import VIEWER_COOKIE
from omnizap.web.api.models import NOT_MODIFIED, error_answers
from omnizap.web.api.routing import add_get_and_head, app_service, pack_key_path
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

BINARY = {"type": "string", "format": "binary"}
STICKER_ID_PATH = Path(
    ...,
    alias="stickerId",
    description="The sticker's id, optionally followed by `.webp` (e.g. `9b1d0c2e-….webp`).",
)

SIGNED_LINK_PARAMETERS = [
    {
        "name": EXPIRES_PARAMETER,
        "in": "query",
        "required": False,
        "description": "Signed link: expiry in unix seconds (with `signature`).",
        "schema": {"type": "integer"},
    },
    {
        "name": SIGNATURE_PARAMETER,
        "in": "query",
        "required": False,
        "description": "Signed link: HMAC signature, as issued by `omnizap storage sign-url`.",
        "schema": {"type": "string"},
    },
]


def sticker_delivery(request: Request) -> StickerDelivery:
    return app_service(request, "sticker_delivery", lambda rt: StickerDelivery(rt.database, rt.storage))


def object_delivery(request: Request) -> ObjectDelivery:
    def build(runtime: Any) -> ObjectDelivery:
        http_metrics = getattr(request.app.state, "http_metrics", None)
        # The app's registry in one process; None in multi-process mode (values live in shared files).
        registry = http_metrics.registry if http_metrics is not None else CollectorRegistry()
        return ObjectDelivery.for_runtime(runtime, DeliveryMetrics(registry))

    return app_service(request, "object_delivery", build)


def signed_links(request: Request) -> SignedLinks:
    return app_service(
        request, "signed_links", lambda rt: SignedLinks(rt.settings.sticker_asset_url_signing_secret)
    )


def _subject_secret(request: Request) -> bytes:
    return app_service(request, "delivery_subject_secret", lambda rt: client_key_secret(rt.settings))


def request_subject(request: Request) -> str:
    """Who asks, for the rollout: X-Viewer-Key, else `viewer_key`, else the viewer cookie, else the
    client address (hashed). Invalid values count as absent, as for interactions."""
    viewer_key = clean_viewer_key(request.headers.get("x-viewer-key")) or clean_viewer_key(
        request.query_params.get("viewer_key")
    )
    return viewer_subject(
        viewer_key=viewer_key,
        cookie_token=clean_viewer_token(request.cookies.get(VIEWER_COOKIE)),
        client_address=request.client.host if request.client else "unknown",
        secret=_subject_secret(request),
    )


def whatsapp_downloads(request: Request) -> WhatsAppDownloads:
    return app_service(
        request, "whatsapp_downloads", lambda rt: WhatsAppDownloads(rt.database, rt.storage, rt.settings)
    )


def serve_sticker(
    request: Request,
    pack_key: str = pack_key_path(),
    sticker_file: str = STICKER_ID_PATH,
) -> Response:
    query = request.query_params
    size = parse_preview_size(query.get("size"))
    cache_control = IMMUTABLE_CACHE_CONTROL
    linked = EXPIRES_PARAMETER in query or SIGNATURE_PARAMETER in query
    if linked:
        expires = signed_links(request).check(
            pack_key, sticker_file, query.get(EXPIRES_PARAMETER), query.get(SIGNATURE_PARAMETER)
        )
        # Shared caches must not keep serving a link's answer after it expires.
        cache_control = f"private, max-age={max(0, expires - int(time.time()))}"
    delivery = sticker_delivery(request)
    location = delivery.locate(pack_key, sticker_file, linked=linked)
    etag = location.etag(size)
    headers = {"ETag": etag, "Cache-Control": cache_control, **NOSNIFF}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    redirect = object_delivery(request).redirect_for(
        location, lambda: request_subject(request), preview=size is not None
    )
    if redirect is not None:
        return Response(
            status_code=302,
            headers={"Location": redirect.location, "Cache-Control": redirect.cache_control, **NOSNIFF},
        )
    if size is None and request.method == "HEAD" and delivery.has_file(location):
        headers["Content-Length"] = str(location.size_bytes)
        return Response(status_code=200, headers=headers, media_type=location.content_type)
    data = delivery.read(location) if size is None else delivery.read_preview(location, size)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return Response(status_code=200, headers=headers, media_type=location.content_type)
    return Response(data, status_code=200, headers=headers, media_type=location.content_type)


def download_whatsapp(request: Request, pack_key: str = pack_key_path()) -> Response:
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
            f"{base}/{{packKey}}/stickers/{{stickerId}}",
            serve_sticker,
            "sticker_asset",
            {
                "summary": "A sticker file (or a smaller preview)",
                "description": "`{stickerId}.webp` of a sticker in a reachable pack (public or unlisted). "
                "`?size=96|128|256` gives a preview of that size. Strong `ETag` from the content hash, "
                "`Cache-Control: public, max-age=31536000, immutable`, 304 on `If-None-Match`. "
                "Viewers in the `enable_object_storage_delivery` rollout get a 302 to a presigned "
                "object-store URL (`Cache-Control: private, max-age=45`). `expires` + `signature` "
                "(a signed link) also open stickers of private packs until the link expires.",
                "openapi_extra": {"parameters": [PREVIEW_SIZE_PARAMETER, *SIGNED_LINK_PARAMETERS]},
                "response_class": Response,
                "responses": {
                    200: {"content": {"image/webp": {"schema": BINARY}}, "description": "The WebP file."},
                    302: {"description": "Redirect to the object store (presigned or CDN URL)."},
                    304: NOT_MODIFIED,
                    **error_answers(400, 403, 404),
                },
            },
        ),
        (
            f"{base}/{{packKey}}/download/whatsapp",
            download_whatsapp,
            "sticker_pack_download_whatsapp",
            {
                "summary": "The pack as a WhatsApp sticker pack (.zip)",
                "description": "contents.json, tray icon and stickers, valid for WhatsApp's importer; "
                "422 `EXPORT_INVALID` names the WhatsApp rule the pack breaks (e.g. fewer than 3 stickers).",
                "response_class": Response,
                "responses": {
                    200: {"content": {ZIP_CONTENT_TYPE: {"schema": BINARY}}, "description": "The zip."},
                    304: NOT_MODIFIED,
                    **error_answers(404, 422),
                },
            },
        ),
    ]
    for path, endpoint, name, documentation in routes:
        add_get_and_head(router, path, endpoint, name=name, **documentation)
    return router


router = build_router()
