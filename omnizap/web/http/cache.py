"""Serialized response bodies kept in memory, with a strong ETag, for the hot catalog reads.

A catalog answer depends only on its path, its query string and the catalog's data; the catalog
service's `data_version()` changes whenever anything it shows may have changed. So an entry is kept
under (path, normalized query) for the current data version, and a request that finds one costs a
dict lookup and a bytes write: no query parsing, no database, no JSON encoding. When the version
moves, the whole cache is dropped at once.

`CachedResponseLane` answers hits before FastAPI's routing even runs; misses go through the route,
which builds the body and stores it (`serve_cached`). ETags are content hashes, so every worker
process gives the same tag for the same body and a client's `If-None-Match` works whichever
process answers.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
CacheKey = tuple[str, tuple[bytes, ...]]

REVALIDATE = "no-cache"  # clients and proxies may store the answer but must revalidate (cheap: 304)
_IF_NONE_MATCH = b"if-none-match"


_normalized_queries: dict[bytes, tuple[bytes, ...]] = {}
NORMALIZED_QUERY_MEMO_SIZE = 4096


def _normalized_query(raw: bytes) -> tuple[bytes, ...]:
    pairs = [pair for pair in raw.split(b"&") if pair]
    names = [pair.partition(b"=")[0] for pair in pairs]
    if len(set(names)) == len(names):
        pairs.sort()
    return tuple(pairs)


def cache_key(scope: Scope) -> CacheKey:
    """(path, query pairs). Pairs are sorted when every name is distinct, so `a=1&b=2` and `b=2&a=1`
    share an entry; with a repeated name the order matters to the route and is kept."""
    raw = scope.get("query_string") or b""
    if not raw:
        return scope["path"], ()
    normalized = _normalized_queries.get(raw)
    if normalized is None:
        if len(_normalized_queries) >= NORMALIZED_QUERY_MEMO_SIZE:
            _normalized_queries.clear()
        normalized = _normalized_queries[raw] = _normalized_query(raw)
    return scope["path"], normalized


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires: `W/"x"` matches `"x"`; `*` matches all."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A complete 200 answer, and the headers of its 304, ready to write."""

    body: bytes
    etag: str
    headers: tuple[tuple[bytes, bytes], ...]
    not_modified_headers: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def build(cls, body: bytes, media_type: str, *, cache_control: str = REVALIDATE) -> CachedResponse:
        etag = etag_for(body)
        shared = ((b"etag", etag.encode()), (b"cache-control", cache_control.encode()))
        headers = (
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *shared,
        )
        return cls(body=body, etag=etag, headers=headers, not_modified_headers=shared)

    def answer(self, method: str, if_none_match: str | None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, headers, body) for this request: 304 when the client has this version."""
        if if_none_match and etag_matches(if_none_match, self.etag):
            return 304, list(self.not_modified_headers), b""
        return 200, list(self.headers), (b"" if method == "HEAD" else self.body)


class PrebuiltResponse(Response):
    """A Starlette response whose headers are already encoded (no per-request header building)."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


class ResponseCache:
    """LRU of CachedResponse for one data version, bounded by entries and bytes. Thread-safe: hits
    are read on the event loop, misses are stored from the threadpool."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[CacheKey, CachedResponse] = collections.OrderedDict()
        self._bytes = 0
        self._version: Any = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, version: Any) -> CachedResponse | None:
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._bytes = 0
                self._version = version
                self.misses += 1
                return None
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: CacheKey, version: Any, entry: CachedResponse) -> None:
        """Store `entry`, built from data at `version`; dropped if the data moved on meanwhile."""
        size = len(entry.body)
        if self.max_entries <= 0 or size > self.max_bytes:
            return
        with self._lock:
            if version != self._version:
                return
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous.body)
            self._entries[key] = entry
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def serve_cached(
    request: Request,
    cache: ResponseCache,
    version: Any,
    build: Callable[[], tuple[bytes, str]],
    *,
    cache_control: str = REVALIDATE,
) -> Response:
    """The cached answer for this request at `version`, building and storing it on a miss.

    `version` must be read before the data is (so a body is never stored under a newer version than
    the data it shows); `build` returns (body, media type)."""
    key = cache_key(request.scope)
    entry = cache.get(key, version)
    if entry is None:
        body, media_type = build()
        entry = CachedResponse.build(body, media_type, cache_control=cache_control)
        cache.put(key, version, entry)
    status, headers, body = entry.answer(request.method, _header(request.scope, _IF_NONE_MATCH))
    return PrebuiltResponse(status, headers, body)


class CachedResponseLane:
    """ASGI middleware: answers GET/HEAD cache hits under `prefixes` without entering the router."""

    def __init__(
        self, app: ASGIApp, *, cache: ResponseCache, version: Callable[[], Any], prefixes: tuple[str, ...]
    ) -> None:
        self.app = app
        self.cache = cache
        self.version = version
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and scope["path"].startswith(self.prefixes)
        ):
            try:
                version = self.version()
            except Exception:  # the route will meet the same problem and answer it properly
                logger.debug("data version unavailable; request goes to its route", exc_info=True)
            else:
                entry = self.cache.get(cache_key(scope), version)
                if entry is not None:
                    status, headers, body = entry.answer(scope["method"], _header(scope, _IF_NONE_MATCH))
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
