"""The serialized-response cache: one build per key and data version, even under a stampede."""

from __future__ import annotations

import threading
import time

import pytest

from omnizap.web.http import cache as response_cache
from omnizap.web.http.cache import CachedResponse, ResponseCache

KEY = ("/api/sticker-packs", (b"limit=24",))
PlainEvent = threading.Event  # the tests' own events must not count as waiters


class CountingEvent(threading.Event):
    """An Event that counts the threads waiting on it, so a test knows when everyone is queued."""

    waiting = 0
    guard = threading.Lock()

    def wait(self, timeout: float | None = None) -> bool:
        with CountingEvent.guard:
            CountingEvent.waiting += 1
        return super().wait(timeout)


def wait_until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached")
        time.sleep(0.01)


@pytest.fixture
def counted_flights(monkeypatch: pytest.MonkeyPatch):
    CountingEvent.waiting = 0
    monkeypatch.setattr(response_cache.threading, "Event", CountingEvent)


def test_concurrent_misses_build_once_and_share_the_entry(counted_flights):
    cache = ResponseCache(max_entries=10, max_bytes=1 << 20)
    release = PlainEvent()
    builds: list[int] = []

    def build() -> CachedResponse:
        builds.append(1)
        release.wait(20)
        return CachedResponse.build(b'{"data":[]}', "application/json")

    results: list[CachedResponse] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_build(KEY, 7, build)))]
    threads[0].start()
    wait_until(lambda: builds == [1])
    threads += [
        threading.Thread(target=lambda: results.append(cache.get_or_build(KEY, 7, build))) for _ in range(8)
    ]
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: CountingEvent.waiting >= 8)  # all eight queued behind the first build
    release.set()
    for thread in threads:
        thread.join(20)
    assert builds == [1]
    assert len(results) == 9 and len({id(entry) for entry in results}) == 1
    assert cache.get(KEY, 7) is results[0]


def test_a_failed_build_lets_each_waiter_build_for_itself(counted_flights):
    cache = ResponseCache(max_entries=10, max_bytes=1 << 20)
    release = PlainEvent()
    calls: list[str] = []

    def failing() -> CachedResponse:
        calls.append("leader")
        release.wait(20)
        raise RuntimeError("database went away")

    def working() -> CachedResponse:
        calls.append("waiter")
        return CachedResponse.build(b"{}", "application/json")

    errors: list[BaseException] = []

    def lead() -> None:
        try:
            cache.get_or_build(KEY, 1, failing)
        except RuntimeError as error:
            errors.append(error)

    leader = threading.Thread(target=lead)
    leader.start()
    wait_until(lambda: calls == ["leader"])
    waiter_results: list[CachedResponse] = []
    waiter = threading.Thread(target=lambda: waiter_results.append(cache.get_or_build(KEY, 1, working)))
    waiter.start()
    wait_until(lambda: CountingEvent.waiting >= 1)
    release.set()
    leader.join(20)
    waiter.join(20)
    assert [str(error) for error in errors] == ["database went away"]
    assert calls == ["leader", "waiter"] and waiter_results[0].body == b"{}"


def test_a_newer_data_version_never_serves_an_older_body():
    cache = ResponseCache(max_entries=10, max_bytes=1 << 20)
    old = cache.get_or_build(KEY, 1, lambda: CachedResponse.build(b"old", "text/plain"))
    new = cache.get_or_build(KEY, 2, lambda: CachedResponse.build(b"new", "text/plain"))
    assert (old.body, new.body) == (b"old", b"new")
    assert cache.get(KEY, 2) is new


def test_the_lane_sends_one_request_per_key_to_the_route_after_the_data_moves():
    """After an invalidation, hundreds of connections ask for the same page: one rebuilds it, the
    rest wait on the event loop and get the same answer without entering the router."""
    import asyncio

    from omnizap.web.http.cache import FLIGHT_SCOPE_KEY, CachedResponseLane

    cache = ResponseCache(max_entries=10, max_bytes=1 << 20)
    version = {"now": 1}
    routed: list[int] = []

    async def main() -> None:
        release = asyncio.Event()

        async def route(scope, receive, send) -> None:
            routed.append(version["now"])
            if len(routed) > 1:
                await release.wait()
            flight = scope.get(FLIGHT_SCOPE_KEY)
            at = version["now"]

            def build() -> CachedResponse:
                return CachedResponse.build(f"v{at}".encode(), "text/plain")

            entry = await asyncio.to_thread(cache.get_or_build, KEY, at, build, flight=flight)
            await send({"type": "http.response.start", "status": 200, "headers": list(entry.headers)})
            await send({"type": "http.response.body", "body": entry.body})

        lane = CachedResponseLane(
            route, cache=cache, version=lambda: version["now"], prefixes=("/api/sticker-packs",)
        )

        async def request() -> bytes:
            scope = {
                "type": "http",
                "method": "GET",
                "path": KEY[0],
                "query_string": b"limit=24",
                "headers": [],
            }
            body = bytearray()

            async def send(message) -> None:
                body.extend(message.get("body", b""))

            await lane(scope, None, send)
            return bytes(body)

        assert await request() == b"v1"  # first answer: routed, stored, the key is now known
        assert await request() == b"v1" and routed == [1]  # a hit: never routed
        version["now"] = 2
        tasks = [asyncio.create_task(request()) for _ in range(50)]
        for _ in range(20):
            await asyncio.sleep(0)
        assert routed == [1, 2]  # exactly one of the fifty is rebuilding
        release.set()
        assert set(await asyncio.gather(*tasks)) == {b"v2"}
        assert routed == [1, 2]

    asyncio.run(main())
