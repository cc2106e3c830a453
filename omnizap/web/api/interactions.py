"""POST {api}/{packKey}/open|like|dislike (http §4): count an interaction once per viewer and window.

The body is never read (the original took none). Identity, dedupe and the rate limit live in
`omnizap.catalog.interactions`; this module only takes them from the request and sets the viewer
cookie when the client has no identity of its own yet.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from omnizap.catalog.interactions import INTERACTIONS, InteractionService, clean_viewer_key
from omnizap.web.api.models import InteractionAnswer, error_answers, json_answer
from omnizap.web.api.routing import app_service, pack_key_path

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "/api/sticker-packs"
VIEWER_COOKIE = "omnizap_viewer"
VIEWER_COOKIE_MAX_AGE = int(dt.timedelta(days=400).total_seconds())  # browsers cap cookies at 400 days
NO_STORE = {"Cache-Control": "no-store"}


def interaction_service(request: Request) -> InteractionService:
    return app_service(
        request, "interaction_service", lambda runtime: InteractionService(runtime.database, runtime.settings)
    )


def _first_valid_key(*candidates: str | None) -> str | None:
    """The header wins over the query string; an invalid one does not hide a valid other."""
    for candidate in candidates:
        if clean_viewer_key(candidate) is not None:
            return candidate
    return None


def record_interaction(request: Request, pack_key: str, interaction: str) -> Response:
    service = interaction_service(request)
    headers, query = request.headers, request.query_params
    identification = service.identify(
        viewer_key=_first_valid_key(headers.get("x-viewer-key"), query.get("viewer_key")),
        cookie_token=request.cookies.get(VIEWER_COOKIE),
        session_key=_first_valid_key(headers.get("x-session-key"), query.get("session_key")),
        source=headers.get("x-client-source"),
        client_address=request.client.host if request.client else "unknown",
    )
    result = service.record(pack_key, interaction, identification.viewer)
    if result.counted:
        catalog = getattr(request.app.state, "catalog", None)
        note = getattr(catalog, "note_pack_changed", None)
        if note is not None:
            try:
                note(result.pack_id)
            except Exception:  # the interaction is committed; a stale cache must not turn it into a 500
                logger.exception("catalog cache invalidation failed for pack %s", result.pack_id)
    response = JSONResponse({"data": result.to_dict()}, headers=NO_STORE)
    if identification.issue_cookie is not None:
        settings = service.settings
        response.set_cookie(
            VIEWER_COOKIE,
            identification.issue_cookie,
            max_age=VIEWER_COOKIE_MAX_AGE,
            path="/" + settings.sticker_api_base_path.strip("/"),
            secure=settings.site_origin.lower().startswith("https://"),
            httponly=True,
            samesite="lax",
        )
    return response


def _endpoint(interaction: str) -> Callable[..., Response]:
    def endpoint(request: Request, pack_key: str = pack_key_path()) -> Response:
        return record_interaction(request, pack_key, interaction)

    endpoint.__name__ = f"record_{interaction}"
    return endpoint


def build_router(api_base: str = DEFAULT_API_BASE) -> APIRouter:
    """The interaction routes under `api_base` (STICKER_API_BASE_PATH); other methods answer 405."""
    base = "/" + api_base.strip("/")
    router = APIRouter(tags=["interactions"])
    for interaction in INTERACTIONS:
        router.add_api_route(
            f"{base}/{{packKey}}/{interaction}",
            _endpoint(interaction),
            methods=["POST"],
            name=f"sticker_pack_{interaction}",
            summary=f"Record a `{interaction}` of a pack",
            description="Counted once per viewer and window, rate-limited per client (docs/delivery.md). "
            "The viewer is `X-Viewer-Key`, else `viewer_key`, else the `omnizap_viewer` cookie, which is "
            "set when the client has none. No body is read; a body over HTTP_MAX_BODY_BYTES is refused.",
            responses={
                200: json_answer(InteractionAnswer, "The pack's counters after this interaction."),
                **error_answers(404, 413, 429),
            },
        )
    return router


router = build_router()
