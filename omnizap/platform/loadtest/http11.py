"""A small HTTP/1.1 keep-alive client built for the load generator.

Why not httpx: at 200 connections on a 2-core machine the generator shares the CPU with the server
under test, and httpx spends several times more CPU per request than this client (numbers in
`docs/loadtest.md`). A generator that saturates first measures itself, not the server. This client
does only what a load test needs: GET over one persistent connection at a time, responses framed by
Content-Length, chunked encoding or connection close, bodies drained and counted but not kept.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE_BYTES = 4 * 1024
ALLOWED_SCHEMES = {"http": 80, "https": 443}


class ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.1 response."""


class RequestTimeout(Exception):
    """No complete response before the request's deadline."""


@dataclass(frozen=True)
class Target:
    """Where requests go: parsed once from `--base-url`."""

    scheme: str
    host: str
    port: int
    base_path: str
    host_header: str

    @classmethod
    def parse(cls, base_url: str) -> Target:
        """Parse and check a base URL such as `http://127.0.0.1:9102` (a path prefix is kept)."""
        text = base_url.strip()
        if not text:
            raise ValueError("the base URL is empty; pass something like http://127.0.0.1:9102")
        if any(ord(char) <= 32 or ord(char) == 127 for char in text):
            raise ValueError(f"the base URL {base_url!r} contains spaces or control characters")
        parts = urllib.parse.urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise ValueError(f"the base URL {base_url!r} must start with http:// or https://")
        if not parts.hostname:
            raise ValueError(f"the base URL {base_url!r} has no host name")
        if parts.query or parts.fragment:
            raise ValueError(f"the base URL {base_url!r} must not carry a query or fragment; use --paths")
        if parts.username or parts.password:
            raise ValueError(f"the base URL {base_url!r} must not carry credentials")
        try:
            port = parts.port or ALLOWED_SCHEMES[scheme]
        except ValueError as exc:
            raise ValueError(f"the base URL {base_url!r} has an invalid port") from exc
        host = parts.hostname
        default_port = port == ALLOWED_SCHEMES[scheme]
        shown_host = f"[{host}]" if ":" in host else host
        host_header = shown_host if default_port else f"{shown_host}:{port}"
        return cls(scheme, host, port, parts.path.rstrip("/"), host_header)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.base_path}"


def check_request_path(path: str) -> str:
    """A request path must start with "/" and be printable ASCII without spaces (no header injection)."""
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/'")
    for char in path:
        if ord(char) <= 32 or ord(char) >= 127:
            raise ValueError(
                f"path {path!r} contains a space, control or non-ASCII character; percent-encode it"
            )
    return path


def build_get_request(target: Target, path: str, headers: Mapping[str, str]) -> bytes:
    """The bytes of one GET request, built once per path and reused for every send."""
    lines = [f"GET {target.base_path}{check_request_path(path)} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers.items():
        if any(char in name + value for char in "\r\n\0") or ":" in name or not name:
            raise ValueError(f"header {name!r} has a forbidden character")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class ResponseParser:
    """Incremental parser of one response. Feed bytes as they arrive; `done` turns true at its end."""

    __slots__ = ("_buffer", "_remaining", "_scan_from", "_state", "body_bytes", "keep_alive", "status")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._scan_from = 0
        self.status = 0
        self.keep_alive = True
        self.body_bytes = 0

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def started(self) -> bool:
        """Whether any byte of the response arrived (a reused connection may be retried if not)."""
        return self.status != 0 or bool(self._buffer) or self._scan_from > 0

    def feed(self, data: bytes) -> None:
        if self._state == _DONE:
            if data:  # bytes after the end of a response we did not pipeline: do not reuse
                self.keep_alive = False
            return
        self._buffer += data
        while self._state != _DONE and self._step():
            pass

    def feed_eof(self) -> None:
        """The server closed the connection; that ends a read-until-close body and nothing else."""
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
            self.keep_alive = False
        elif self._state != _DONE:
            raise ConnectionResetError("the server closed the connection before the response ended")

    def _step(self) -> bool:
        """Advance one state; False when more bytes are needed."""
        buffer = self._buffer
        state = self._state
        if state == _HEAD:
            end = buffer.find(b"\r\n\r\n", max(0, self._scan_from - 3))
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise ProtocolError(f"response head is larger than {MAX_HEAD_BYTES} bytes")
                self._scan_from = len(buffer)
                return False
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            self._scan_from = 0
            self._parse_head(head)
            return True
        if state in (_LENGTH, _CHUNK_DATA):
            taken = min(self._remaining, len(buffer))
            if taken:
                del buffer[:taken]
                self._remaining -= taken
                self.body_bytes += taken
            if self._remaining:
                return False
            if state == _LENGTH:
                self._finish()
            else:
                self._state = _CHUNK_END
            return True
        if state == _CHUNK_SIZE:
            line = self._take_line()
            if line is None:
                return False
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"invalid chunk size line {line[:40]!r}") from None
            if size < 0 or not size_text or size_text.startswith((b"-", b"+", b"0x", b"0X")):
                raise ProtocolError(f"invalid chunk size line {line[:40]!r}")
            if size == 0:
                self._state = _TRAILERS
            else:
                self._remaining = size
                self._state = _CHUNK_DATA
            return True
        if state == _CHUNK_END:
            if len(buffer) < 2:
                return False
            if buffer[:2] != b"\r\n":
                raise ProtocolError("chunk data is not followed by CRLF")
            del buffer[:2]
            self._state = _CHUNK_SIZE
            return True
        if state == _TRAILERS:
            line = self._take_line()
            if line is None:
                return False
            if not line:
                self._finish()
            return True
        if state == _UNTIL_CLOSE:
            self.body_bytes += len(buffer)
            buffer.clear()
            return False
        return False

    def _take_line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_CHUNK_LINE_BYTES:
                raise ProtocolError("chunk size or trailer line is too long")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status_line = lines[0]
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[0]) != 8:
            raise ProtocolError(f"invalid status line {status_line[:60]!r}")
        if len(parts[1]) != 3 or not parts[1].isdigit():
            raise ProtocolError(f"invalid status code in {status_line[:60]!r}")
        status = int(parts[1])
        if status < 100:
            raise ProtocolError(f"invalid status code in {status_line[:60]!r}")
        http10 = parts[0] == b"HTTP/1.0"
        content_length: int | None = None
        chunked = False
        connection = b""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError(f"invalid header line {line[:60]!r}")
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                if not value.isdigit():
                    raise ProtocolError(f"invalid Content-Length {value[:30]!r}")
                length = int(value)
                if content_length is not None and content_length != length:
                    raise ProtocolError("conflicting Content-Length headers")
                content_length = length
            elif name == b"transfer-encoding":
                chunked = value.lower().split(b",")[-1].strip() == b"chunked"
            elif name == b"connection":
                connection = value.lower()
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("unexpected 101 Switching Protocols")
            return  # interim response: the real one follows; stay in _HEAD
        self.status = status
        if b"close" in connection or (http10 and b"keep-alive" not in connection):
            self.keep_alive = False
        if status in (204, 304):
            self._finish()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif content_length is not None:
            self._remaining = content_length
            self._state = _LENGTH
            if content_length == 0:
                self._finish()
        else:
            self._state = _UNTIL_CLOSE
            self.keep_alive = False

    def _finish(self) -> None:
        self._state = _DONE
        if self._buffer:
            self.keep_alive = False
            self._buffer.clear()


class _ClientProtocol(asyncio.Protocol):
    """Feeds socket bytes to the parser of the request in flight and wakes its waiter."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.waiter: asyncio.Future[ResponseParser] | None = None
        self.closed = False

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            if self.transport is not None:  # unsolicited bytes: this connection is not reusable
                self.transport.close()
            return
        try:
            parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        if parser.done:
            self.parser = None
            waiter = self.waiter
            self.waiter = None
            if waiter is not None and not waiter.done():
                waiter.set_result(parser)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        parser = self.parser
        if parser is None:
            return
        try:
            parser.feed_eof()
        except ConnectionResetError as reset:
            self._fail(reset)
            return
        self.parser = None
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(parser)

    def _fail(self, exc: BaseException) -> None:
        self.parser = None
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


def _timeout_waiter(waiter: asyncio.Future[ResponseParser]) -> None:
    if not waiter.done():
        waiter.set_exception(RequestTimeout())


class HttpConnection:
    """One keep-alive connection, reconnected on demand. Not safe for concurrent requests."""

    def __init__(self, target: Target, ssl_context: ssl.SSLContext | None = None) -> None:
        self._target = target
        self._ssl = ssl_context if ssl_context is not None else _default_ssl(target)
        self._protocol: _ClientProtocol | None = None

    async def get(self, request: bytes, timeout_seconds: float) -> ResponseParser:
        """Send one request and wait for its full response; raises on timeout and network errors."""
        deadline = time.monotonic() + timeout_seconds
        reused = self._protocol is not None and self._protocol.usable
        try:
            return await self._exchange(request, deadline)
        except (ConnectionResetError, BrokenPipeError) as exc:
            # A reused idle connection the server had already closed: retry once on a new one,
            # as every HTTP client does, unless the server had started answering.
            if not reused or getattr(exc, "response_started", False):
                raise
            self.close()
            return await self._exchange(request, deadline)

    async def _exchange(self, request: bytes, deadline: float) -> ResponseParser:
        loop = asyncio.get_running_loop()
        protocol = self._protocol
        if (
            protocol is None
            or protocol.closed
            or protocol.transport is None
            or protocol.transport.is_closing()
        ):
            protocol = await self._connect(deadline)
        transport = protocol.transport
        assert transport is not None
        parser = ResponseParser()
        waiter: asyncio.Future[ResponseParser] = loop.create_future()
        protocol.parser = parser
        protocol.waiter = waiter
        timer = loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()), _timeout_waiter, waiter)
        try:
            transport.write(request)
            result = await waiter
        except RequestTimeout:
            self.close()  # the response may still arrive: this connection cannot be reused
            raise
        except ConnectionResetError as exc:
            exc.response_started = parser.started  # type: ignore[attr-defined]
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        finally:
            timer.cancel()
        if not result.keep_alive:
            self.close()
        return result

    async def _connect(self, deadline: float) -> _ClientProtocol:
        self.close()
        loop = asyncio.get_running_loop()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout()
        target = self._target
        try:
            _transport, protocol = await asyncio.wait_for(
                loop.create_connection(
                    _ClientProtocol,
                    target.host,
                    target.port,
                    ssl=self._ssl,
                    server_hostname=target.host if self._ssl else None,
                ),
                remaining,
            )
        except TimeoutError:
            raise RequestTimeout() from None
        self._protocol = protocol
        return protocol

    def close(self) -> None:
        protocol = self._protocol
        self._protocol = None
        if protocol is not None and protocol.transport is not None and not protocol.closed:
            protocol.transport.close()


def _default_ssl(target: Target) -> ssl.SSLContext | None:
    return ssl.create_default_context() if target.scheme == "https" else None
