"""Every API error has one shape: `{"error": {"code": "...", "message": "..."}}` with a fitting status.

Routes do not build error responses: they raise.

- A `StickerPackError` subclass (omnizap.core.errors) answers its `http_status` with its `code` and
  `message`: InvalidInput → 400 INVALID_INPUT, PackNotFound → 404 PACK_NOT_FOUND, NotAllowed → 403,
  and so on. A subclass defined elsewhere works the same (e.g. `code = "RATE_LIMITED"`,
  `http_status = 429`); `details={"retry_after_seconds": 30}` also sets `Retry-After`.
- `ApiError(status, code, message)` is for answers that are not a domain rule (413, 429, 503, …).
- FastAPI's parameter validation answers 400 INVALID_INPUT naming the parameter.
- Unknown paths: JSON 404 NOT_FOUND under /api/, the pages' HTML 404 under STICKER_WEB_PATH, plain
  text elsewhere. Wrong methods: 405 METHOD_NOT_ALLOWED with an `Allow` header.
- 5xx answers never carry the exception's text (it is logged with the request id instead).
- Anonymous clients get a domain error's `public_message` and `public_details`, never the CLI-facing
  `message`. As a last guard, a public message that still names an `omnizap …` command or a server
  path is replaced by the status's generic text (and the original is logged): public errors never
  tell visitors how the server is run.

The original answered `{"error": "<text>"}` (sometimes with a sibling `code`); see docs/api.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from omnizap.core.errors import StickerPackError

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json"
NO_STORE = {"Cache-Control": "no-store"}
INTERNAL_MESSAGE = "The server could not complete the request; try again later."
CODES_BY_STATUS: dict[int, str] = {
    400: "INVALID_INPUT",
    401: "UNAUTHORIZED",
    403: "NOT_ALLOWED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_INPUT",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
    504: "TIMEOUT",
}
MESSAGES_BY_STATUS: dict[int, str] = {
    404: "No such route. See /api-docs for the API's endpoints.",
    405: "This route does not accept that method; see the Allow header.",
    413: "The request body is too large.",
}


GENERIC_MESSAGES_BY_STATUS: dict[int, str] = {
    400: "The request is invalid.",
    403: "This is not allowed.",
    404: "Not found.",
    409: "The request conflicts with the current state; reload and try again.",
    422: "The request cannot be completed for this item.",
}
# What no public answer may contain: an operator command line, or a server file-system path (two or
# more segments after a leading slash, not part of a URL).
_OPERATOR_COMMAND = re.compile(r"\bomnizap\s+[a-z]")
_SERVER_PATH = re.compile(r"(?<![\w/:.\]])/(?:[\w.-]+/)+[\w.-]+")


def leaks_internals(text: str) -> bool:
    """Whether `text` names an `omnizap …` command or a server path (see the module docstring)."""
    return bool(_OPERATOR_COMMAND.search(text) or _SERVER_PATH.search(text))


def public_text(status: int, code: str, message: str) -> str:
    """`message`, unless it leaks internals: then the generic text for `status` (logged, not sent)."""
    if not leaks_internals(message):
        return message
    logger.error("public %s error message named operator internals; sent a generic one: %s", code, message)
    return GENERIC_MESSAGES_BY_STATUS.get(status, "The request could not be completed.")


def _public_details(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """Details without any string value that leaks internals (nested lists of strings included)."""
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        if isinstance(value, str) and leaks_internals(value):
            continue
        if isinstance(value, list | tuple):
            value = [item for item in value if not (isinstance(item, str) and leaks_internals(item))]
        cleaned[key] = value
    return cleaned or None


class ApiError(Exception):
    """An HTTP error answer that is not a domain rule: body too large, rate limited, unavailable…"""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = dict(details or {})


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = dict(details)
    return orjson.dumps({"error": error}, default=str)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> Response:
    """The JSON error answer. Errors are never cached (`Cache-Control: no-store`)."""
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    body = error_body(code, message, details)
    return Response(body, status_code=status, media_type=JSON_MEDIA_TYPE, headers=all_headers)


def internal_error_response() -> Response:
    return error_response(500, "INTERNAL_ERROR", INTERNAL_MESSAGE)


def _retry_after(details: Mapping[str, Any]) -> dict[str, str]:
    seconds = details.get("retry_after_seconds")
    if isinstance(seconds, int | float) and seconds >= 0:
        return {"Retry-After": str(max(1, round(seconds)))}
    return {}


def response_for_domain_error(error: StickerPackError) -> Response:
    status = int(getattr(error, "http_status", 500) or 500)
    if status >= 500:
        logger.error("request failed: %s [%s]", error.message, error.code, exc_info=error)
        return error_response(status, error.code, INTERNAL_MESSAGE)
    details = error.public_details
    return error_response(
        status,
        error.code,
        public_text(status, error.code, error.public_message),
        headers=_retry_after(details),
        details=_public_details(details),
    )


def _path_kind(request: Request) -> str:
    """'api', 'web' or 'other': which 404 body a path gets."""
    path = request.url.path
    runtime = getattr(request.app.state, "runtime", None)
    api_base = "/" + (runtime.settings.sticker_api_base_path.strip("/") if runtime else "api/sticker-packs")
    if path in ("/api", api_base) or path.startswith(("/api/", api_base + "/")):
        return "api"
    web_path = "/" + (runtime.settings.sticker_web_path.strip("/") if runtime else "stickers")
    if path == web_path or path.startswith(web_path + "/"):
        return "web"
    return "other"


def not_found_response(request: Request) -> Response:
    kind = _path_kind(request)
    if kind == "api":
        return error_response(404, "NOT_FOUND", MESSAGES_BY_STATUS[404])
    if kind == "web":
        from omnizap.web.pages.routes import not_found_page

        return not_found_page(request, "Page not found", "There is no page at this address.")
    return Response("Not Found", status_code=404, media_type="text/plain", headers=NO_STORE)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts at this path. Starlette's 405 names only the first route that
    matched the path, so a path served by several routes (GET here, POST and DELETE there) would
    claim fewer methods than it has."""
    methods: set[str] = set()
    for route in _flat_routes(getattr(request.app, "routes", ())):
        route_methods = getattr(route, "methods", None)
        if not route_methods:
            continue
        match, _ = route.matches({**request.scope, "method": next(iter(route_methods))})
        if match is Match.FULL:
            methods.update(route_methods)
    return sorted(methods)


def _flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Routes, with FastAPI's included routers (kept as wrappers, all without a prefix here) opened."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat_routes(included.routes)
        else:
            yield route


def _http_exception_response(request: Request, error: StarletteHTTPException) -> Response:
    status = error.status_code
    headers = dict(error.headers or {})
    if status == 404 and error.detail in (None, "", "Not Found"):
        return not_found_response(request)
    code = CODES_BY_STATUS.get(status, "INTERNAL_ERROR" if status >= 500 else "HTTP_ERROR")
    default_message = MESSAGES_BY_STATUS.get(status, "The request could not be completed.")
    message = error.detail if isinstance(error.detail, str) and error.detail else default_message
    if status == 405:
        message = MESSAGES_BY_STATUS[405]
        headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
    if status >= 500:
        message = INTERNAL_MESSAGE
    return error_response(status, code, message, headers=headers)


def _validation_message(error: RequestValidationError) -> tuple[str, dict[str, Any]]:
    problems = error.errors()
    if not problems:
        return "The request is invalid.", {}
    first = problems[0]
    location = [str(part) for part in first.get("loc", ())]
    where = location[0] if location else "request"
    name = ".".join(location[1:]) or where
    kind = {"query": "query parameter", "path": "path parameter", "header": "header", "body": "body field"}
    label = kind.get(where, "parameter")
    message = f"Invalid {label} '{name}': {first.get('msg', 'invalid value')}."
    return message, {"parameter": name, "location": where}


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the JSON shape (see the module docstring)."""

    async def on_domain_error(_request: Request, error: Exception) -> Response:
        assert isinstance(error, StickerPackError)
        return response_for_domain_error(error)

    async def on_api_error(_request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        message = error.message if error.status < 500 or error.code != "INTERNAL_ERROR" else INTERNAL_MESSAGE
        return error_response(
            error.status,
            error.code,
            public_text(error.status, error.code, message),
            headers=error.headers,
            details=_public_details(error.details),
        )

    async def on_http_exception(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        return _http_exception_response(request, error)

    async def on_validation_error(_request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        message, details = _validation_message(error)
        return error_response(400, "INVALID_INPUT", message, details=details)

    app.add_exception_handler(StickerPackError, on_domain_error)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
