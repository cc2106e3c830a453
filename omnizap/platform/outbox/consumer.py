"""The outbox consumer: claims domain events with the queue protocol and dispatches them.

A handler turns an event into follow-up tasks (enqueue a classification cycle, refresh these
packs' ranking snapshots). The follow-ups of a whole batch are merged and written in the same
transaction that marks the batch's events completed, so an event is done exactly when its
follow-ups exist. Keys make this safe to repeat:

- `per_events` follow-ups (targeted work such as `{"pack_ids": [...]}`) are keyed by the ids of
  the events that asked for them: a retried batch inserts nothing new, a later event is delivered.
  List values of follow-ups of one task type are unioned, so a burst of 100 likes on 3 packs is one
  refresh of 3 packs instead of 100 tasks.
- `per_window` follow-ups (whole cycles) are keyed by a time window: any number of events in that
  window start one cycle (the original enqueued one full curation cycle per classified sticker).

Unknown event types complete with nothing to do; a handler that raises fails only its own event,
which is retried with backoff and dead-lettered in `domain_event_outbox_dlq` after its attempts.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from omnizap.platform.metrics import worker_metrics
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.queue.protocol import ClaimedItem, Queue
from omnizap.platform.queue.waker import SleepWaker, Waker
from omnizap.platform.queue.worker import LeaseKeeper

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    id: int
    event_type: str
    aggregate_type: str
    aggregate_id: str
    payload: Mapping[str, Any]
    attempt: int = 1


@dataclass(frozen=True)
class FollowUp:
    task_type: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 50
    keyed: Literal["per_events", "per_window"] = "per_events"


OutboxHandler = Callable[[TaskContext, DomainEvent], Sequence[FollowUp] | None]


def _event(item: ClaimedItem) -> DomainEvent:
    row = item.row
    return DomainEvent(
        id=item.id,
        event_type=item.kind,
        aggregate_type=str(row.get("aggregate_type") or ""),
        aggregate_id=str(row.get("aggregate_id") or ""),
        payload=item.payload,
        attempt=item.attempts,
    )


def merge_follow_ups(requests: Sequence[tuple[int, FollowUp]]) -> list[tuple[FollowUp, list[int]]]:
    """One follow-up per (task type, keying): lists unioned (order kept), other values from the
    first request, priority the highest. Returns each with the ids of the events behind it."""
    merged: dict[tuple[str, str], tuple[FollowUp, list[int]]] = {}
    for event_id, follow_up in requests:
        slot = (follow_up.task_type, follow_up.keyed)
        if slot not in merged:
            merged[slot] = (follow_up, [event_id])
            continue
        current, ids = merged[slot]
        payload = dict(current.payload)
        for key, value in follow_up.payload.items():
            if isinstance(value, list) and isinstance(payload.get(key), list):
                payload[key] = list(dict.fromkeys([*payload[key], *value]))
            else:
                payload.setdefault(key, value)
        merged[slot] = (
            replace(current, payload=payload, priority=max(current.priority, follow_up.priority)),
            [*ids, event_id],
        )
    return list(merged.values())


@dataclass
class ConsumerOptions:
    name: str
    batch_size: int = 50
    poll_interval: float = 2.0
    window_seconds: float = 10.0
    enabled: Callable[[], bool] = field(default=lambda: True)
    lease_renew_seconds: float | None = None  # None: a third of the outbox lease


class OutboxConsumer:
    def __init__(
        self,
        outbox: Queue,
        tasks: Queue,
        handlers: Mapping[str, OutboxHandler],
        base_context: TaskContext,
        options: ConsumerOptions,
        *,
        waker: Waker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.tasks = tasks
        self.handlers = handlers
        self.base_context = base_context
        self.options = options
        self.waker = waker or SleepWaker()
        self.clock = clock
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        self.waker.wake()

    def run(self) -> None:
        logger.info("outbox consumer %s started", self.options.name)
        try:
            while not self._stop.is_set():
                try:
                    handled = self.run_once()
                except Exception:
                    logger.exception("outbox consumer %s: tick failed", self.options.name)
                    handled = 0
                if handled == 0 and not self._stop.is_set():
                    self.waker.wait(self.options.poll_interval)
        finally:
            self.waker.close()
            logger.info("outbox consumer %s stopped", self.options.name)

    def run_once(self) -> int:
        """Claim one batch, dispatch it, commit follow-ups with completions; returns events handled."""
        try:
            if not self.options.enabled():
                return 0
        except Exception:
            logger.warning("outbox flag unreadable; skipping this tick", exc_info=True)
            return 0
        batch = self.outbox.claim(self.options.name, limit=self.options.batch_size)
        if not batch:
            return 0
        # The batch's leases are renewed until it commits, so a short lease bounds how long a killed
        # consumer's events wait, without a slow batch losing them to another consumer.
        interval = self.options.lease_renew_seconds or max(0.5, self.outbox.lease.total_seconds() / 3)
        with LeaseKeeper(self.outbox, batch, interval):
            return self._dispatch(batch)

    def _dispatch(self, batch: list[ClaimedItem]) -> int:
        started = time.perf_counter()
        done: list[ClaimedItem] = []
        requests: list[tuple[int, FollowUp]] = []
        for item in batch:
            event = _event(item)
            handler = self.handlers.get(event.event_type)
            context = replace(
                self.base_context,
                task_type=event.event_type,
                task_id=event.id,
                attempt=event.attempt,
                worker=self.options.name,
            )
            try:
                follow_ups = handler(context, event) if handler is not None else ()
            except Exception as exc:
                outcome = self.outbox.fail(item, f"{type(exc).__name__}: {exc}")
                logger.warning("event %s %s failed (%s): %s", event.id, event.event_type, outcome, exc)
                self._observe(event.event_type, outcome, started)
                continue
            done.append(item)
            requests.extend((event.id, follow_up) for follow_up in follow_ups or ())
        self._commit(done, requests)
        return len(batch)

    def _commit(self, done: list[ClaimedItem], requests: list[tuple[int, FollowUp]]) -> None:
        started = time.perf_counter()
        window = int(self.clock() // max(1.0, self.options.window_seconds))
        with self.outbox.database.transaction() as connection:
            for follow_up, event_ids in merge_follow_ups(requests):
                if follow_up.keyed == "per_window":
                    key = f"outbox:{follow_up.task_type}:w{window}"
                else:
                    digest = hashlib.sha256(",".join(map(str, sorted(event_ids))).encode()).hexdigest()[:32]
                    key = f"outbox:{follow_up.task_type}:e{digest}"
                self.tasks.enqueue(
                    values={
                        "task_type": follow_up.task_type,
                        "payload": {**follow_up.payload, "events": len(event_ids)},
                    },
                    idempotency_key=key,
                    priority=follow_up.priority,
                    connection=connection,
                )
            outcomes = [
                (item.kind, "completed" if self.outbox.complete(item, connection=connection) else "lost")
                for item in done
            ]
        for kind, outcome in outcomes:
            self._observe(kind, outcome, started)

    def _observe(self, kind: str, outcome: str, started: float) -> None:
        worker_metrics.observe_task(
            queue=self.outbox.spec.name,
            kind=kind,
            mode="outbox",
            outcome=outcome,
            seconds=time.perf_counter() - started,
        )
