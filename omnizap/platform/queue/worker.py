"""The loop that consumes one queue: claim what this process may run, run it under a kept lease.

Used three ways: a dedicated worker process (`omnizap worker curation`), the inline poller of
`omnizap serve`, and tests. Which task types it may take is asked on every tick (`allowed`), so a
flag change moves a type between the inline poller and the dedicated workers within the flag
cache TTL, without restarts.

A handler that raises `TaskDeferred` (the lease its job needs is taken) is put back until the
lease ends, without counting an attempt: outcome `deferred`, never `completed` for work not done.

Shutdown: `stop()` (SIGTERM) ends the loop after the task that is running; rows claimed in the same
batch but not started are released at once, without counting an attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from omnizap.platform.metrics import worker_metrics
from omnizap.platform.queue.context import TaskContext, TaskDeferred, TaskHandler
from omnizap.platform.queue.protocol import ClaimedItem, Queue
from omnizap.platform.queue.waker import SleepWaker, Waker

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews claimed rows' leases in the background while their work runs: one task's row, or an
    outbox batch (whose events are all held until the batch commits)."""

    def __init__(self, queue: Queue, items: ClaimedItem | Sequence[ClaimedItem], interval: float) -> None:
        self.queue = queue
        self.items = [items] if isinstance(items, ClaimedItem) else list(items)
        self.interval = interval
        self._lost: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.items[0].id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            for item in self.items:
                if item.id in self._lost:
                    continue
                try:
                    held = self.queue.heartbeat(item)
                except Exception:  # a database blip: keep trying until the lease really ends
                    logger.warning("heartbeat of %s %s failed", self.queue.spec.name, item.id, exc_info=True)
                    continue
                if not held:
                    self._lost.add(item.id)
                    logger.warning("lease of %s %s was lost", self.queue.spec.name, item.id)
            if len(self._lost) == len(self.items):
                return

    def held(self) -> bool:
        """Every row is still ours (for a single task: its lease was not lost)."""
        return not self._lost


@dataclass
class WorkerOptions:
    name: str
    kinds: Sequence[str]
    mode: str = "dedicated"  # "dedicated" or "inline": a metric label
    batch_size: int = 1
    poll_interval: float = 2.5
    allowed: Callable[[str], bool] = field(default=lambda kind: True)


class QueueWorker:
    def __init__(
        self,
        queue: Queue,
        handlers: Mapping[str, TaskHandler],
        base_context: TaskContext,
        options: WorkerOptions,
        *,
        waker: Waker | None = None,
        payload_of: Callable[[ClaimedItem], Mapping[str, Any]] = lambda item: item.payload,
    ) -> None:
        unknown = [kind for kind in options.kinds if kind not in handlers]
        if unknown:
            raise ValueError(f"no handler for {', '.join(unknown)}; known: {', '.join(sorted(handlers))}")
        self.queue = queue
        self.handlers = handlers
        self.base_context = base_context
        self.options = options
        self.waker = waker or SleepWaker()
        self.payload_of = payload_of
        self._stop = threading.Event()
        self.lease_interval = max(0.5, queue.lease.total_seconds() / 3)

    # --- lifecycle -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Finish the running task, release the rest, leave the loop (safe from a signal handler)."""
        self._stop.set()
        self.waker.wake()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        logger.info(
            "worker %s consuming %s (%s)", self.options.name, ", ".join(self.options.kinds), self.options.mode
        )
        try:
            while not self._stop.is_set():
                try:
                    executed = self.run_once()
                except Exception:  # the database is down, say: wait a poll interval and retry
                    logger.exception("worker %s: tick failed", self.options.name)
                    executed = 0
                if executed == 0 and not self._stop.is_set():
                    self.waker.wait(self.options.poll_interval)
        finally:
            self.waker.close()
            logger.info("worker %s stopped", self.options.name)

    # --- one tick --------------------------------------------------------------------------------
    def allowed_kinds(self) -> list[str]:
        allowed = []
        for kind in self.options.kinds:
            try:
                if self.options.allowed(kind):
                    allowed.append(kind)
            except Exception:  # a broken flag read must not stop the loop; skip this tick for that kind
                logger.warning("rollout decision for %s failed", kind, exc_info=True)
        return allowed

    def run_once(self) -> int:
        """Claim and run one batch; returns how many tasks ran (0: nothing due or not allowed)."""
        kinds = self.allowed_kinds()
        if not kinds:
            return 0
        batch = self.queue.claim(self.options.name, kinds=kinds, limit=self.options.batch_size)
        executed = 0
        for index, item in enumerate(batch):
            if self._stop.is_set():
                self.queue.release(batch[index:])
                break
            self.execute(item)
            executed += 1
        return executed

    def execute(self, item: ClaimedItem) -> str:
        """Run one claimed row's handler; returns completed, deferred, retry, dead or lost."""
        handler = self.handlers[item.kind]
        started = time.perf_counter()
        with LeaseKeeper(self.queue, item, self.lease_interval) as keeper:
            context = replace(
                self.base_context,
                task_type=item.kind,
                task_id=item.id,
                attempt=item.attempts,
                worker=self.options.name,
                heartbeat=keeper.held,
            )
            try:
                summary = handler(context, self.payload_of(item))
            except TaskDeferred as deferred:
                outcome = self.queue.defer(item, deferred, deferred.retry_at)
                logger.info(
                    "%s %s %s %s: %s",
                    self.queue.spec.name,
                    item.kind,
                    item.id,
                    outcome,
                    deferred,
                )
                self._observe(item.kind, outcome, started)
                return outcome
            except Exception as exc:
                outcome = self.queue.fail(item, f"{type(exc).__name__}: {exc}")
                logger.warning(
                    "%s %s %s failed on attempt %d/%d (%s): %s",
                    self.queue.spec.name,
                    item.kind,
                    item.id,
                    item.attempts,
                    item.max_attempts,
                    outcome,
                    exc,
                    exc_info=outcome == "dead",
                )
                self._observe(item.kind, outcome, started)
                return outcome
        outcome = "completed" if self.queue.complete(item) else "lost"
        logger.info(
            "%s %s %s %s in %.0f ms: %s",
            self.queue.spec.name,
            item.kind,
            item.id,
            outcome,
            (time.perf_counter() - started) * 1000,
            dict(summary or {}),
        )
        self._observe(item.kind, outcome, started)
        return outcome

    def _observe(self, kind: str, outcome: str, started: float) -> None:
        worker_metrics.observe_task(
            queue=self.queue.spec.name,
            kind=kind,
            mode=self.options.mode,
            outcome=outcome,
            seconds=time.perf_counter() - started,
        )
