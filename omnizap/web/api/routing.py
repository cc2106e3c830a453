"""What the route modules share: GET+HEAD registration and services kept on the app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Path, Request

T = TypeVar("T")
_STATE_LOCK = threading.Lock()
PACK_KEY_DESCRIPTION = (
    "The pack's key, e.g. `sunny-cats-a1b2c`. A key of another form, or of a pack that is not "
    "publicly reachable, answers 404 `PACK_NOT_FOUND`."
)


def pack_key_path(**constraints: Any) -> Any:
    """The `{packKey}` path parameter, spelled the same on every route (the original's `:packKey`)."""
    return Path(
        ..., alias="packKey", description=PACK_KEY_DESCRIPTION, examples=["sunny-cats-a1b2c"], **constraints
    )


def add_get_and_head(
    router: APIRouter, path: str, endpoint: Callable[..., Any], *, name: str | None = None, **options: Any
) -> None:
    """GET documented in OpenAPI; HEAD answers the same (headers only) without a second operation."""
    router.add_api_route(path, endpoint, methods=["GET"], name=name, **options)
    head_name = f"{name}_head" if name is not None else None
    router.add_api_route(path, endpoint, methods=["HEAD"], name=head_name, include_in_schema=False)


def app_service(request: Request, name: str, factory: Callable[[Any], T]) -> T:
    """One service per app, made on first use from `app.state.runtime` (tests may preset their own)."""
    service = getattr(request.app.state, name, None)
    if service is None:
        with _STATE_LOCK:
            service = getattr(request.app.state, name, None)
            if service is None:
                service = factory(request.app.state.runtime)
                setattr(request.app.state, name, service)
    return service
