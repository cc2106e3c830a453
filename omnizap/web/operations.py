"""Routes for operators and tools: `/healthz`, `/readyz`, METRICS_PATH and the API docs page.

- `/healthz`: the process answers (no database), for liveness probes.
- `/readyz`: the database answers and its schema is at this code's migration head; 503 with the
  reason otherwise, for readiness probes and load balancers.
- METRICS_PATH (`/metrics`): Prometheus text, aggregated over worker processes under `omnizap serve`,
  with queue depths counted in the database at scrape time.
- `/api-docs`: Swagger UI for `/api-docs/openapi.json`, under a CSP that allows only its own
  script (by hash) and the UI's files.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response

from omnizap.platform.db import Database
from omnizap.platform.db.migrate import current_revision, head_revision, is_current
from omnizap.platform.metrics import CONTENT_TYPE, QueueDepthCollector

logger = logging.getLogger(__name__)

DOCS_PATH = "/api-docs"
OPENAPI_PATH = "/api-docs/openapi.json"
NO_STORE = {"Cache-Control": "no-store"}
SWAGGER_ORIGIN = "https://cdn.jsdelivr.net"
SWAGGER_ICON_ORIGIN = "https://fastapi.tiangolo.com"


def _json(value: object, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json", headers=NO_STORE)


@functools.cache
def _head_revision() -> str:
    return head_revision()


def readiness(database: Database) -> tuple[bool, str]:
    """(ready, reason). Never raises; the reason names no host, user or password."""
    try:
        if is_current(database):
            return True, "ok"
        current = current_revision(database)
    except Exception as exc:
        logger.warning("readiness: database unreachable: %s", type(exc).__name__)
        return False, f"database unreachable ({type(exc).__name__})"
    return False, (
        f"database schema is at {current or 'no version'}, this release needs {_head_revision()}: "
        "run `omnizap migrate`"
    )


@functools.cache
def _docs_page(title: str) -> tuple[bytes, str]:
    """Swagger UI's HTML and a CSP that allows its inline bootstrap script by hash only."""
    html = get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=title).body
    text = bytes(html).decode()
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    ]
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {SWAGGER_ORIGIN} {' '.join(hashes)}",
            f"style-src {SWAGGER_ORIGIN}",
            f"img-src 'self' data: {SWAGGER_ICON_ORIGIN}",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return text.encode(), csp


def _add_get_and_head(router: APIRouter, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
    router.add_api_route(path, endpoint, methods=["GET"], **options)
    router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)


def build_operations_router(*, metrics_path: str | None, title: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    async def healthz() -> Response:
        return _json({"status": "ok"})

    _add_get_and_head(router, "/healthz", healthz, summary="Liveness: the process answers")

    def readyz(request: Request) -> Response:
        ready, reason = readiness(request.app.state.runtime.database)
        if ready:
            return _json({"status": "ready"})
        return _json({"status": "unavailable", "reason": reason}, status=503)

    _add_get_and_head(
        router,
        "/readyz",
        readyz,
        summary="Readiness: database reachable and migrated",
        responses={
            200: {"content": {"application/json": {"example": {"status": "ready"}}}},
            503: {
                "description": "Not ready; `reason` says why.",
                "content": {
                    "application/json": {
                        "example": {
                            "status": "unavailable",
                            "reason": "database schema is at no version, this release needs 0002: "
                            "run `omnizap migrate`",
                        }
                    }
                },
            },
        },
    )

    def metrics(request: Request) -> Response:
        exposition = request.app.state.metrics_exposition
        body = exposition.render([QueueDepthCollector(request.app.state.runtime.database)])
        return Response(body, media_type=CONTENT_TYPE, headers=NO_STORE)

    if metrics_path:
        _add_get_and_head(router, metrics_path, metrics, summary="Prometheus metrics (all worker processes)")

    @router.get(DOCS_PATH, include_in_schema=False)
    async def api_docs() -> Response:
        body, csp = _docs_page(title)
        return Response(
            body,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache"},
        )

    return router
