"""Routes for operators and tools: `/healthz`, `/readyz`, METRICS_PATH and the API docs page.

- `/healthz`: the process answers (no database), for liveness probes.
- `/readyz`: the database answers and its schema is at this code's migration head; 503 with the
  reason otherwise, for readiness probes and load balancers.
- METRICS_PATH (`/metrics`): Prometheus text, aggregated over worker processes under `omnizap serve`,
  with queue depths (plus `app.state.queue_depth_readers` and `app.state.metrics_collectors`, the
  services' readings) read from the database at scrape time.
- `/api-docs`: Swagger UI for `/api-docs/openapi.json`. The UI's files come from the
  `fastapi-offline` wheel (Swagger UI 5, which reads OpenAPI 3.1) and are served here: nothing loads
  from a CDN, so the page works on a closed network, under a CSP allowing this server's scripts only.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import logging

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from omnizap.platform.db import Database
from omnizap.platform.metrics import CONTENT_TYPE, QueueDepthCollector
from omnizap.web.api.models import Health, Readiness, json_answer
from omnizap.web.api.routing import add_get_and_head

logger = logging.getLogger(__name__)

DOCS_PATH = "/api-docs"
OPENAPI_PATH = "/api-docs/openapi.json"
NO_STORE = {"Cache-Control": "no-store"}
DOCS_ASSETS_PATH = DOCS_PATH + "/assets"
# The files of the vendored Swagger UI the page needs, with their content types.
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
DOCS_ASSET_CACHE = "public, max-age=86400"  # not versioned by URL, so not immutable


def _json(value: object, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json", headers=NO_STORE)


@functools.cache
def _head_revision() -> str:
    from omnizap.platform.db.migrate import head_revision

    return head_revision()


SCHEMA_NOT_CURRENT = "database schema is older than this release; the operator has to migrate it"


def readiness(database: Database) -> tuple[bool, str]:
    """(ready, reason). Never raises; the reason names no host, user, password, command or revision."""
    # Alembic loads on the first probe, not with the app: every HTTP worker imports the app
    # before it can answer, and the migration machinery is a tenth of that import.
    from omnizap.platform.db.migrate import current_revision, is_current

    try:
        if is_current(database):
            return True, "ok"
        current = current_revision(database)
    except Exception as exc:
        logger.warning("readiness: database unreachable: %s", type(exc).__name__)
        return False, f"database unreachable ({type(exc).__name__})"
    # The probe's answer is public: it says what is wrong, the log says how to fix it.
    logger.warning(
        "readiness: database schema is at %s, this release needs %s: run `omnizap migrate`",
        current or "no version",
        _head_revision(),
    )
    return False, SCHEMA_NOT_CURRENT


# Our own page around the vendored UI: no inline script or style, so the CSP needs no hashes.
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""
DOCS_INIT_SCRIPT = b"""window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
"""
DOCS_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ]
)


@functools.cache
def _docs_page(title: str) -> bytes:
    return DOCS_PAGE.format(title=html.escape(title), assets=DOCS_ASSETS_PATH, openapi=OPENAPI_PATH).encode()


@functools.cache
def _docs_asset(name: str) -> bytes | None:
    """A file of the vendored Swagger UI (or our bootstrap script), read once; None for other names."""
    if name == "init.js":
        return DOCS_INIT_SCRIPT
    if name not in DOCS_ASSETS:
        return None
    return (importlib.resources.files("fastapi_offline") / "static" / name).read_bytes()


def build_operations_router(*, metrics_path: str | None, title: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    async def healthz() -> Response:
        return _json({"status": "ok"})

    add_get_and_head(
        router,
        "/healthz",
        healthz,
        summary="Liveness: the process answers",
        responses={200: json_answer(Health, "The process answers.", {"status": "ok"})},
    )

    def readyz(request: Request) -> Response:
        ready, reason = readiness(request.app.state.runtime.database)
        if ready:
            return _json({"status": "ready"})
        return _json({"status": "unavailable", "reason": reason}, status=503)

    add_get_and_head(
        router,
        "/readyz",
        readyz,
        summary="Readiness: database reachable and migrated",
        responses={
            200: json_answer(Readiness, "Ready.", {"status": "ready"}),
            503: {
                "model": Readiness,
                "description": "Not ready; `reason` says why.",
                "content": {
                    "application/json": {
                        "example": {
                            "status": "unavailable",
                            "reason": SCHEMA_NOT_CURRENT,
                        }
                    }
                },
            },
        },
    )

    def metrics(request: Request) -> Response:
        exposition = request.app.state.metrics_exposition
        # Scrape-time readings of the services (the catalog's ranking health): the app registers
        # them, so this module stays free of service imports.
        state = request.app.state
        depths = QueueDepthCollector(state.runtime.database, getattr(state, "queue_depth_readers", ()))
        body = exposition.render([depths, *getattr(state, "metrics_collectors", ())])
        return Response(body, media_type=CONTENT_TYPE, headers=NO_STORE)

    if metrics_path:
        add_get_and_head(
            router,
            metrics_path,
            metrics,
            summary="Prometheus metrics (all worker processes)",
            response_class=Response,
            responses={
                200: {
                    "description": "Prometheus text exposition format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        )

    @router.get(DOCS_PATH, include_in_schema=False)
    async def api_docs() -> Response:
        return Response(
            _docs_page(title),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"},
        )

    @router.get(DOCS_ASSETS_PATH + "/{name}", include_in_schema=False)
    async def api_docs_asset(name: str) -> Response:
        body = _docs_asset(name)
        if body is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        media_type = DOCS_ASSETS.get(name, "text/javascript; charset=utf-8")
        return Response(body, media_type=media_type, headers={"Cache-Control": DOCS_ASSET_CACHE})

    return router
