"""Serialized response bodies kept in memory, with a strong ETag, for the hot catalog reads.

A catalog answer depends only on its path, its query string and the catalog's data; the catalog
service's `data_version()` changes whenever anything it shows may have changed. So an entry is kept
under (path, normalized query) for the current data version, and a request that finds one costs a
dict lookup and a bytes write: no query parsing, no database, no JSON encoding. When the version
moves, the whole cache is dropped at once.

`CachedResponseLane` answers hits before FastAPI's routing even runs; misses go through the route,
which builds the body and stores it (`serve_cached`). After the data version moves, only one
request per known key goes to its route; the others wait on the event loop for that answer.
ETags are content hashes, so every worker process gives the same tag for the same body and a
client's `If-None-Match` works whichever process answers.
"""

from __future__ import annotations

import asyncio
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
IF_NONE_MATCH_MAX_CHARS = 8192
FLIGHT_SCOPE_KEY = "omnizap.response_flight"  # the lane's flight, handed to the route that builds


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


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires: `W/"x"` matches `"x"`; `*` matches all.

    Our tags never contain commas, so splitting on them cannot make a foreign tag look like ours;
    a header longer than IF_NONE_MATCH_MAX_CHARS is not parsed (the client gets the full answer)."""
    if not if_none_match or len(if_none_match) > IF_NONE_MATCH_MAX_CHARS:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
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
        if etag_matches(if_none_match, self.etag):
            return 304, list(self.not_modified_headers), b""
        return 200, list(self.headers), (b"" if method == "HEAD" else self.body)


class PrebuiltResponse(Response):
    """A Starlette response whose headers are already encoded (no per-request header building)."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


class _Flight:
    """One body being built; requests for the same key and version wait for it instead of
    building it again (after an invalidation, hundreds of connections ask for the same few pages).

    Threads wait on `done`; requests still on the event loop await `finished` (created by the
    lane that started the flight), so they never enter the router or the threadpool."""

    __slots__ = ("done", "entry", "finished", "loop")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: CachedResponse | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.finished: asyncio.Future[CachedResponse | None] | None = None

    def attach_loop(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.finished = self.loop.create_future()

    def finish(self, entry: CachedResponse | None) -> None:
        """Publish the result (None: the build failed or the route did not build). Any thread; once."""
        if self.done.is_set():
            return
        self.entry = entry
        self.done.set()
        if self.loop is not None and self.finished is not None:
            future = self.finished
            self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(entry))


class ResponseCache:
    """LRU of CachedResponse for one data version, bounded by entries and bytes. Thread-safe: hits
    are read on the event loop, misses are built (once per key and version) in the threadpool."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[CacheKey, CachedResponse] = collections.OrderedDict()
        self._bytes = 0
        self._version: Any = None
        self._lock = threading.Lock()
        self._flights: dict[tuple[CacheKey, Any], _Flight] = {}
        # Keys a route has stored an answer for: only those are coordinated by the lane, so requests
        # for other paths under the same prefixes (sticker files, errors) are never made to wait.
        self._known: set[CacheKey] = set()
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
            if len(self._known) >= 4 * max(self.max_entries, 1):
                self._known.clear()
            self._known.add(key)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body)

    def join_flight(self, key: CacheKey, version: Any) -> tuple[_Flight, bool] | None:
        """For the lane: (flight, is_leader) for a known key missing at `version`, else None."""
        with self._lock:
            if key not in self._known:
                return None
            flight_key = (key, version)
            flight = self._flights.get(flight_key)
            if flight is not None:
                return flight, False
            flight = self._flights[flight_key] = _Flight()
            flight.attach_loop()
            return flight, True

    def end_flight(self, key: CacheKey, version: Any, flight: _Flight, entry: CachedResponse | None) -> None:
        with self._lock:
            if self._flights.get((key, version)) is flight:
                del self._flights[(key, version)]
        flight.finish(entry)

    def get_or_build(
        self,
        key: CacheKey,
        version: Any,
        build: Callable[[], CachedResponse],
        *,
        flight: _Flight | None = None,
    ) -> CachedResponse:
        """The entry for `key` at `version`; on a miss one caller builds it and concurrent callers for
        the same key and version wait for that result. If the builder fails, each waiter builds for
        itself (so every caller sees the real error, and nobody waits forever). `flight` is the one
        the lane started for this request, which makes it the builder."""
        entry = self.get(key, version)
        if entry is not None:
            if flight is not None:
                self.end_flight(key, version, flight, entry)
            return entry
        flight_key = (key, version)
        if flight is None:
            with self._lock:
                flight = self._flights.get(flight_key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[flight_key] = _Flight()
        else:
            leader = True
        if not leader:
            flight.done.wait()
            if flight.entry is not None:
                return flight.entry
            entry = build()
            self.put(key, version, entry)
            return entry
        built: CachedResponse | None = None
        try:
            built = build()
            self.put(key, version, built)
            return built
        finally:
            self.end_flight(key, version, flight, built)


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

    def build_entry() -> CachedResponse:
        body, media_type = build()
        return CachedResponse.build(body, media_type, cache_control=cache_control)

    flight = request.scope.get(FLIGHT_SCOPE_KEY)
    entry = cache.get_or_build(cache_key(request.scope), version, build_entry, flight=flight)
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
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        try:
            version = self.version()
        except Exception:  # the route will meet the same problem and answer it properly
            logger.debug("data version unavailable; request goes to its route", exc_info=True)
            await self.app(scope, receive, send)
            return
        key = cache_key(scope)
        entry = self.cache.get(key, version)
        if entry is None:
            joined = self.cache.join_flight(key, version)
            if joined is not None:
                flight, leader = joined
                if leader:
                    # This request builds the new answer; the others for the same key wait below.
                    scope[FLIGHT_SCOPE_KEY] = flight
                    try:
                        await self.app(scope, receive, send)
                    finally:
                        self.cache.end_flight(key, version, flight, None)  # no-op once the route built
                    return
                assert flight.finished is not None
                entry = await asyncio.shield(flight.finished)
        if entry is None:
            await self.app(scope, receive, send)
            return
        status, headers, body = entry.answer(scope["method"], _header(scope, _IF_NONE_MATCH))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
