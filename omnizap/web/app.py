"""The web application: JSON API, web pages, sitemap, health and metrics in one ASGI app.

`create_app(runtime)` builds it around an existing `Runtime` (tests, embedding); `create_server_app()`
is the factory `omnizap serve` hands to uvicorn by import string, so each worker process builds its
own Runtime from the settings.

Layers, outermost first: `RequestPipeline` (request id, limits, headers, errors, metrics, access log)
→ `CachedResponseLane` (cache hits of the catalog reads answered without routing) → FastAPI's
exception handlers and router.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from typing import IO, Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from omnizap.catalog.metrics import RankingGenerationCollector, snapshot_pending_depth
from omnizap.catalog.service import CatalogService
from omnizap.chat.transports.webhooks import build_webhook_routers, inbox_accept
from omnizap.config import Settings, get_settings
from omnizap.platform.logging import AccessLog, configure_logging
from omnizap.platform.metrics import HttpMetrics, MetricsExposition
from omnizap.runtime import Runtime
from omnizap.web.api import accounts, assets, interactions
from omnizap.web.api.catalog import MARKETPLACE_STATS_PATH, build_catalog_router, build_marketplace_router
from omnizap.web.api.errors import install_error_handlers
from omnizap.web.api.models import without_validation_schemas
from omnizap.web.http.cache import CachedResponseLane, ResponseCache
from omnizap.web.http.pipeline import RequestPipeline
from omnizap.web.operations import DOCS_PATH, OPENAPI_PATH, build_operations_router
from omnizap.web.pages import accounts as account_pages
from omnizap.web.pages import build_router as build_pages_router
from omnizap.web.pages.login import build_login_router
from omnizap.web.seo import SITEMAP_PATH, build_seo_router

logger = logging.getLogger(__name__)

TITLE = "OmniZap Stickers API"
DESCRIPTION = """Public catalog of sticker packs: list, search, pack details, stats, interactions and
sticker files. Conventions (errors, ETags, request ids, headers, limits): see `docs/api.md`.

Every error is `{"error": {"code": "...", "message": "..."}}`. Every answer carries `X-Request-Id`."""


def _package_version() -> str:
    try:
        return importlib.metadata.version("omnizap")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _http_metrics(settings: Settings) -> tuple[HttpMetrics | None, MetricsExposition | None]:
    multiprocess_dir = settings.prometheus_multiproc_dir
    # One registry per app in a single process (tests build many apps); none in multi-process mode,
    # where values live in the shared files and a scrape reads them all.
    registry = None if multiprocess_dir is not None else CollectorRegistry(auto_describe=True)
    metrics = HttpMetrics(
        service=settings.metrics_service_name, slo_target_ms=settings.http_slo_target_ms, registry=registry
    )
    exposition = MetricsExposition(own_registry=registry, multiprocess_dir=multiprocess_dir)
    return metrics, exposition


def _access_log(settings: Settings, stream: IO[str] | None) -> AccessLog | None:
    level = logging.getLevelName(settings.log_level.upper())
    if not settings.http_access_log or (isinstance(level, int) and level > logging.INFO):
        return None
    return AccessLog(settings.log_format, stream)


def _document_only_real_answers(app: FastAPI) -> None:
    """The OpenAPI document without FastAPI's 422 validation schema, which this API never sends
    (invalid parameters answer 400 with the error envelope)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        return without_validation_schemas(build())  # FastAPI caches the document; this is idempotent

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    runtime: Runtime,
    *,
    close_runtime_on_shutdown: bool = False,
    access_log_stream: IO[str] | None = None,
    freeze_gc_after_start: bool = False,
) -> FastAPI:
    """The app for `runtime`. Its lifespan starts and stops the catalog service.

    Access lines go to `access_log_stream` (default: stderr at the time of writing).
    `freeze_gc_after_start` is for server processes that hold one app for their whole life."""
    settings = runtime.settings
    catalog = CatalogService(runtime.database, settings, flags=runtime.flags)
    access_log = _access_log(settings, access_log_stream)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(catalog.start)
        if freeze_gc_after_start:
            # The catalog's index is ~100k long-lived objects; without this, a full garbage
            # collection walks them all (a pause of 100 ms and more) now and then.
            gc.freeze()
        try:
            yield
        finally:
            await run_in_threadpool(catalog.stop)
            if access_log is not None:
                access_log.close()
            if close_runtime_on_shutdown:
                runtime.close()

    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=_package_version(),
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks look up global providers on every request; we export
        # Prometheus metrics instead.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    metrics, exposition = _http_metrics(settings)
    app.state.runtime = runtime
    app.state.catalog = catalog
    app.state.pages_catalog_reader = catalog
    app.state.http_metrics = metrics
    app.state.access_log = access_log
    app.state.metrics_exposition = exposition
    app.state.queue_depth_readers = [snapshot_pending_depth(runtime.database, settings)]
    app.state.metrics_collectors = [RankingGenerationCollector(runtime.database)]
    app.state.response_cache = ResponseCache(
        max_entries=settings.http_response_cache_entries, max_bytes=settings.http_response_cache_max_bytes
    )
    install_error_handlers(app)
    _document_only_real_answers(app)

    api_base = "/" + settings.sticker_api_base_path.strip("/")
    # Order matters: the catalog's fixed segments (stats, creators, …) come before `/{packKey}`;
    # the session routes (`/me`, `/auth/…`) before the catalog's.
    app.include_router(accounts.build_router(api_base))
    app.include_router(
        build_catalog_router(
            api_base,
            list_limit_default=settings.sticker_web_list_limit,
            list_limit_max=settings.sticker_web_list_max_limit,
        )
    )
    app.include_router(build_marketplace_router())
    app.include_router(interactions.build_router(api_base))
    app.include_router(assets.build_router(api_base))
    app.include_router(build_seo_router())
    metrics_path = settings.metrics_path if settings.metrics_enabled else None
    app.include_router(build_operations_router(metrics_path=metrics_path, title=TITLE))
    app.include_router(account_pages.build_router())
    app.include_router(build_pages_router(settings.sticker_web_path))
    for chat_router in build_webhook_routers(settings, inbox_accept(runtime.database)):
        app.include_router(chat_router)
    app.include_router(build_login_router(settings.whatsapp_login_path))

    # add_middleware puts each new layer outside the previous one: the lane first, the pipeline last.
    app.add_middleware(
        CachedResponseLane,
        cache=app.state.response_cache,
        version=catalog.data_version,
        prefixes=(api_base, MARKETPLACE_STATS_PATH, SITEMAP_PATH),
    )
    app.add_middleware(RequestPipeline, settings=settings, metrics=metrics, access_log=access_log)
    logger.debug("web app built: api %s, pages %s, docs %s", api_base, settings.sticker_web_path, DOCS_PATH)
    return app


def create_server_app(settings: Settings | None = None) -> FastAPI:
    """uvicorn factory (`omnizap.web.app:create_server_app`): settings from the environment unless
    given, this process's logging, its own Runtime (closed at shutdown)."""
    settings = settings or get_settings()
    configure_logging(settings)
    return create_app(Runtime(settings), close_runtime_on_shutdown=True, freeze_gc_after_start=True)
