"""The outermost layer every request passes through (pure ASGI: no per-request task or body copy).

For each HTTP request it:
1. takes or makes the request id and binds it to the logging context (`X-Request-Id` on the answer);
2. refuses bodies larger than HTTP_MAX_BODY_BYTES on every route, whatever the method: a larger
   Content-Length before anything is read; a body without one (chunked) is read here, up to the
   limit, before the route runs, so a route that never reads its body (the interactions) cannot
   act on an oversized request; past the limit it answers 413 without reading the rest;
3. adds the security headers (nosniff, referrer policy, frame denial, a CSP unless the route set one,
   HSTS on an https SITE_ORIGIN, `X-Robots-Tag` under /api/);
4. turns an unexpected exception into a JSON 500 `INTERNAL_ERROR`, logged with the request id;
5. records the HTTP metrics and writes one access log line once the last byte is sent.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from omnizap.config import Settings
from omnizap.platform.logging import AccessLog, request_id_var
from omnizap.platform.metrics import HttpMetrics, RouteGroupPaths, resolve_route_group
from omnizap.web.api.errors import INTERNAL_MESSAGE, MESSAGES_BY_STATUS, ApiError, error_body
from omnizap.web.http.request_id import request_id_from_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("omnizap.web")

API_CSP = b"default-src 'none'; frame-ancestors 'none'"
HSTS = b"max-age=31536000"
SECRET_PARAM_MARKERS = ("token", "secret", "password", "passwd", "key", "sig", "auth", "session", "code")
_SECRET_PARAM = re.compile("|".join(SECRET_PARAM_MARKERS), re.IGNORECASE)
MAX_LOGGED_QUERY = 512
ROUTE_GROUP_MEMO_SIZE = 4096


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "PAYLOAD_TOO_LARGE",
            f"{MESSAGES_BY_STATUS[413]} The limit is {limit} bytes.",
            details={"limit_bytes": limit},
        )


@dataclass(frozen=True, slots=True)
class ReadBody:
    body: bytes | None  # None: over the limit, or the client went away
    client_gone: bool


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body read by the pipeline, then the server's own messages
    (a later `http.disconnect`)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def loggable_target(path: str, query_string: bytes) -> str:
    """Path plus query for the access log, with values of secret-looking parameters masked."""
    if not query_string:
        return path
    raw = query_string.decode("latin-1")
    if len(raw) <= MAX_LOGGED_QUERY and not _SECRET_PARAM.search(raw):
        return f"{path}?{raw}"
    pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
    shown = [(name, "***" if _SECRET_PARAM.search(name) else value) for name, value in pairs]
    query = urllib.parse.urlencode(shown)
    if len(query) > MAX_LOGGED_QUERY:
        query = query[:MAX_LOGGED_QUERY] + "…"
    return f"{path}?{query}"


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """(declared Content-Length, whether the body is chunked) from the request headers."""
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


class RequestPipeline:
    """See the module docstring. `metrics` is None with METRICS_ENABLED=false, `access_log` with
    HTTP_ACCESS_LOG=false or a LOG_LEVEL above info."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        metrics: HttpMetrics | None,
        access_log: AccessLog | None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.route_paths = RouteGroupPaths.from_settings(settings)
        self.max_body_bytes = settings.http_max_body_bytes
        self._route_groups: dict[str, str] = {}
        api_base = self.route_paths.api_base_path
        self.api_paths = ("/api", api_base)
        self.api_prefixes = ("/api/", api_base + "/")
        self.security_headers: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
        ]
        if settings.site_origin.strip().lower().startswith("https://"):
            self.security_headers.append((b"strict-transport-security", HSTS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from_headers(scope.get("headers") or ())
        token = request_id_var.set(request_id)
        path: str = scope["path"]
        is_api = path.startswith(self.api_prefixes) or path in self.api_paths
        request_id_header = (b"x-request-id", request_id.encode("ascii"))
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or ())
                present = {name.lower() for name, _ in headers}
                headers.append(request_id_header)
                for name, value in self.security_headers:
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", API_CSP))
                if is_api and b"x-robots-tag" not in present:
                    headers.append((b"x-robots-tag", b"noindex, nofollow"))
                message = {**message, "headers": headers}
            await send(message)

        app_receive = receive
        declared, chunked = _body_framing(scope)
        too_large = declared is not None and declared > self.max_body_bytes
        if chunked and not too_large:
            read = await self._read_body(receive)
            if read.client_gone:  # nothing to answer, nothing served
                request_id_var.reset(token)
                return
            too_large = read.body is None
            if read.body is not None:
                app_receive = _replay(read.body, receive)
        if too_large:
            await self._send_error(send_with_headers, BodyTooLarge(self.max_body_bytes), close=True)
            self._finish(scope, status, started, request_id)
            request_id_var.reset(token)
            return

        try:
            await self.app(scope, app_receive, send_with_headers)
        except Exception as error:
            method = scope["method"]
            logger.error("unhandled error in %s %s", method, path, exc_info=error, extra={"path": path})
            if status == 0:
                await self._send_error(
                    send_with_headers, ApiError(500, "INTERNAL_ERROR", INTERNAL_MESSAGE), close=False
                )
        finally:
            self._finish(scope, status, started, request_id)
            request_id_var.reset(token)

    def _route_group(self, path: str) -> str:
        """resolve_route_group, memoized: the same few paths come back all the time."""
        group = self._route_groups.get(path)
        if group is None:
            if len(self._route_groups) >= ROUTE_GROUP_MEMO_SIZE:
                self._route_groups.clear()
            group = self._route_groups[path] = resolve_route_group(path, self.route_paths)
        return group

    async def _read_body(self, receive: Receive) -> ReadBody:
        """The whole body of a request without Content-Length, counted as it arrives; `body` is None
        as soon as it passes the limit, leaving the rest unread."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return ReadBody(body=None, client_gone=True)
            if message["type"] != "http.request":
                continue
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return ReadBody(body=None, client_gone=False)
            parts.append(chunk)
            if not message.get("more_body", False):
                return ReadBody(body=b"".join(parts), client_gone=False)

    @staticmethod
    async def _send_error(send: Send, error: ApiError, *, close: bool) -> None:
        body = error_body(error.code, error.message, error.details or None)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if close:  # the unread body is still on the wire; do not reuse the connection
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _finish(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        if status == 0:
            return  # the client went away before any answer; nothing was served
        duration_ms = (time.perf_counter() - started) * 1000.0
        route_group = self._route_group(scope["path"])
        if self.metrics is not None:
            self.metrics.observe(
                route_group=route_group, method=scope["method"], status=status, duration_ms=duration_ms
            )
        if self.access_log is not None:
            client = scope.get("client")
            self.access_log.write(
                f"{scope['method']} {scope['path']} {status} {duration_ms:.1f}ms",
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": loggable_target(scope["path"], scope.get("query_string") or b""),
                    "status": status,
                    "duration_ms": round(duration_ms, 2),
                    "route_group": route_group,
                    "client": client[0] if client else None,
                },
            )
