"""The load-test engine: a closed model (the original's) and an open, fixed-arrival-rate model.

Closed model: `concurrency` workers each send the next request as soon as the previous answer ends.
When the server slows down, the generator slows down with it and sends fewer requests, so the slow
moments are under-sampled ("coordinated omission") and p95 looks better than users saw.

Open model (`rate`): requests are scheduled at fixed times `start + k / rate` whatever the server
does. A request waits for a free connection if all are busy, and its latency is measured from its
scheduled time, so queueing caused by a slow server shows in the percentiles. Requests that could
not be sent before the window closed (or that overflowed the backlog) are counted as dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from omnizap.platform.loadtest.http11 import (
    HttpConnection,
    ProtocolError,
    RequestTimeout,
    Target,
    build_get_request,
)
from omnizap.platform.loadtest.report import (
    NETWORK_ERROR_STATUS,
    OpenModelStats,
    Tally,
    build_report,
)

DEFAULT_PATHS = (
    "/api/sticker-packs?limit=24&offset=0&sort=popular",
    "/api/sticker-packs/stats",
    "/api/sticker-packs/creators?limit=25",
)
DEFAULT_HEADERS: Mapping[str, str] = {
    "Connection": "keep-alive",
    "Accept": "application/json",
    "X-Viewer-Key": "loadtest",
    "X-Session-Key": "loadtest",
    "User-Agent": "omnizap-sticker-loadtest/1.0",
}
DEFAULT_MAX_ERROR_RATE = 0.02
CONNECT_FAILURE_PAUSE_SECONDS = 0.01  # keeps a refused port from turning into a busy loop


@dataclass(frozen=True)
class LoadTestConfig:
    """What to run. The CLI enforces the original's minimums; the engine accepts any positive value."""

    base_url: str
    paths: Sequence[str] = DEFAULT_PATHS
    duration_seconds: float = 30.0
    concurrency: int = 20
    timeout_ms: float = 12_000.0
    slo_ms: float = 750.0
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    rate: float | None = None
    max_requests: int | None = None
    late_threshold_ms: float = 10.0
    headers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_HEADERS))

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("at least one path is needed")
        if self.duration_seconds <= 0:
            raise ValueError("duration must be positive")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.timeout_ms <= 0:
            raise ValueError("timeout must be positive")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError("max_error_rate must be between 0 and 1")


class _RequestBudget:
    """Optional cap on how many requests a run sends (a count-bounded run, used by smoke tests)."""

    def __init__(self, limit: int | None) -> None:
        self._left = limit

    def take(self) -> bool:
        if self._left is None:
            return True
        if self._left <= 0:
            return False
        self._left -= 1
        return True


async def _send(
    connection: HttpConnection, request: bytes, timeout_seconds: float
) -> tuple[int, str | None, bool]:
    """(status, error text, whether the connection could not even be opened)."""
    try:
        response = await connection.get(request, timeout_seconds)
    except RequestTimeout:
        return NETWORK_ERROR_STATUS, f"timeout after {timeout_seconds * 1000:.0f} ms", False
    except ConnectionRefusedError:
        return NETWORK_ERROR_STATUS, "connection refused", True
    except ProtocolError as exc:
        return NETWORK_ERROR_STATUS, f"invalid response: {exc}", False
    except OSError as exc:
        return NETWORK_ERROR_STATUS, f"{type(exc).__name__}: {exc}".rstrip(": "), True
    return response.status, None, False


class _Dispatcher:
    """Hands scheduled arrivals to idle workers, one at a time (no thundering herd), else queues them."""

    def __init__(self) -> None:
        self._backlog: collections.deque[tuple[float, int]] = collections.deque()
        self._idle: collections.deque[asyncio.Future[tuple[float, int] | None]] = collections.deque()
        self._closed = False

    def offer(self, item: tuple[float, int], max_backlog: int) -> bool:
        """Give the arrival to an idle worker or queue it; False when the backlog is full."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return True
        if len(self._backlog) >= max_backlog:
            return False
        self._backlog.append(item)
        return True

    async def next(self) -> tuple[float, int] | None:
        """The next arrival to send, or None once the schedule is closed and nothing is queued."""
        if self._backlog:
            return self._backlog.popleft()
        if self._closed:
            return None
        waiter: asyncio.Future[tuple[float, int] | None] = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        return await waiter

    def push_back(self, item: tuple[float, int]) -> None:
        self._backlog.appendleft(item)

    def close(self) -> None:
        self._closed = True
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def discard_backlog(self) -> int:
        left = len(self._backlog)
        self._backlog.clear()
        return left


class LoadTest:
    """One run. `await run()` returns the report dict; `progress` is called about once a second."""

    def __init__(
        self,
        config: LoadTestConfig,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.target = Target.parse(config.base_url)
        self.requests = [build_get_request(self.target, path, config.headers) for path in config.paths]
        self.tally = Tally()
        self._progress = progress
        self._timeout_seconds = config.timeout_ms / 1000.0

    async def run(self) -> dict[str, Any]:
        config = self.config
        started_at = datetime.now(UTC)
        cpu_before = time.process_time()
        start = time.perf_counter()
        deadline = start + config.duration_seconds
        open_stats: OpenModelStats | None = None
        reporter = asyncio.create_task(self._report_progress(start)) if self._progress else None
        try:
            if config.rate is None:
                await self._run_closed(deadline)
            else:
                open_stats = OpenModelStats(rate_rps=config.rate, late_threshold_ms=config.late_threshold_ms)
                await self._run_open(start, deadline, open_stats)
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
        elapsed = time.perf_counter() - start
        return build_report(
            base_url=self.target.url,
            paths=list(config.paths),
            concurrency=config.concurrency,
            timeout_ms=config.timeout_ms,
            slo_ms=config.slo_ms,
            max_error_rate=config.max_error_rate,
            started_at=started_at,
            ended_at=datetime.now(UTC),
            elapsed_seconds=elapsed,
            tally=self.tally,
            open_model=open_stats,
            generator_cpu_seconds=time.process_time() - cpu_before,
        )

    # --- closed model: the original's -------------------------------------------------------------
    async def _run_closed(self, deadline: float) -> None:
        budget = _RequestBudget(self.config.max_requests)
        workers = [
            asyncio.create_task(self._closed_worker(index, deadline, budget))
            for index in range(self.config.concurrency)
        ]
        await asyncio.gather(*workers)

    async def _closed_worker(self, index: int, deadline: float, budget: _RequestBudget) -> None:
        connection = HttpConnection(self.target)
        paths = self.config.paths
        count = len(paths)
        position = index % count  # worker i starts at path i mod N, then round-robins
        record = self.tally.record
        clock = time.perf_counter
        timeout = self._timeout_seconds
        try:
            while clock() < deadline and budget.take():
                began = clock()
                status, error, unreachable = await _send(connection, self.requests[position], timeout)
                record(paths[position], status, (clock() - began) * 1000.0, error)
                position = (position + 1) % count
                if unreachable:
                    await asyncio.sleep(CONNECT_FAILURE_PAUSE_SECONDS)
        finally:
            connection.close()

    # --- open model: fixed arrival rate ---------------------------------------------------------
    async def _run_open(self, start: float, deadline: float, stats: OpenModelStats) -> None:
        config = self.config
        assert config.rate is not None
        # A backlog longer than what the pool could drain within one timeout only measures the
        # generator's queue; beyond it arrivals are dropped (and counted).
        max_backlog = max(config.concurrency, int(config.rate * self._timeout_seconds))
        dispatch = _Dispatcher()
        workers = [
            asyncio.create_task(self._open_worker(deadline, dispatch, stats))
            for _ in range(config.concurrency)
        ]
        budget = _RequestBudget(config.max_requests)
        interval = 1.0 / config.rate
        arrival = 0
        count = len(config.paths)
        clock = time.perf_counter
        try:
            while True:
                due = start + arrival * interval
                if due >= deadline or not budget.take():
                    break
                now = clock()
                if due > now:
                    await asyncio.sleep(due - now)
                stats.scheduled += 1
                if not dispatch.offer((due, arrival % count), max_backlog):
                    stats.dropped += 1
                arrival += 1
        finally:
            dispatch.close()
            await asyncio.gather(*workers)
        # Whatever is still queued was never sent inside the window.
        stats.dropped += dispatch.discard_backlog()

    async def _open_worker(self, deadline: float, dispatch: _Dispatcher, stats: OpenModelStats) -> None:
        connection = HttpConnection(self.target)
        paths = self.config.paths
        late_threshold = self.config.late_threshold_ms
        clock = time.perf_counter
        timeout = self._timeout_seconds
        try:
            while True:
                item = await dispatch.next()
                if item is None:
                    return
                began = clock()
                scheduled, position = item
                lag_ms = (began - scheduled) * 1000.0
                if began >= deadline and lag_ms > late_threshold:
                    # The window is over and this arrival waited in the backlog: it was not sent
                    # in time, so it counts as dropped (an on-time last arrival still goes out).
                    dispatch.push_back(item)
                    return
                stats.sent += 1
                if lag_ms > late_threshold:
                    stats.late += 1
                stats.max_send_lag_ms = max(stats.max_send_lag_ms, lag_ms)
                status, error, unreachable = await _send(connection, self.requests[position], timeout)
                ended = clock()
                stats.service_latencies_ms.append((ended - began) * 1000.0)
                self.tally.record(paths[position], status, (ended - scheduled) * 1000.0, error)
                if unreachable:
                    await asyncio.sleep(CONNECT_FAILURE_PAUSE_SECONDS)
        finally:
            connection.close()

    async def _report_progress(self, start: float) -> None:
        assert self._progress is not None
        while True:
            await asyncio.sleep(1.0)
            tally = self.tally
            self._progress(
                {
                    "elapsed_seconds": time.perf_counter() - start,
                    "requests_total": tally.total,
                    "requests_error": tally.count("error"),
                }
            )


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with uvicorn[standard]): the generator then costs less CPU."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_load_test(
    config: LoadTestConfig, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run one load test to completion in a fresh event loop and return its report."""
    test = LoadTest(config, progress)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(test.run())
