"""Enqueues each periodic task type at its cadence, without piling duplicates.

Each tick, a type is enqueued only when none of its rows is pending (due or waiting for a retry)
or running, under the key `pipeline:<type>:<floor(now / cadence)>`: two schedulers (two servers)
in the same window insert one row, and a slow cycle is never queued behind itself. The scheduler
also deletes completed rows past their retention, once per `housekeeping_seconds`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from omnizap.platform.queue.protocol import Queue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    task_type: str
    cadence_seconds: float
    priority: int = 50
    payload: Mapping[str, Any] = field(default_factory=dict)


class Scheduler:
    def __init__(
        self,
        queue: Queue,
        schedules: Sequence[Schedule],
        *,
        retention: dt.timedelta = dt.timedelta(days=7),
        housekeeping_seconds: float = 3600.0,
        extra_queues: Sequence[Queue] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.schedules = list(schedules)
        self.retention = retention
        self.housekeeping_seconds = housekeeping_seconds
        self.purged_queues = [queue, *extra_queues]
        self.clock = clock
        self._last_housekeeping = -math.inf
        self._stop = threading.Event()

    def busy_types(self) -> set[str]:
        table = self.queue.table
        kind = table.c[self.queue.spec.kind_column]
        with self.queue.database.read() as connection:
            rows = connection.execute(
                sa.select(kind).where(table.c.status.in_(("pending", "processing"))).group_by(kind)
            ).scalars()
            return {str(value) for value in rows}

    def tick(self) -> list[str]:
        """Enqueue what is due now; returns the task types enqueued."""
        now = self.clock()
        busy = self.busy_types()
        enqueued = []
        for schedule in self.schedules:
            if schedule.task_type in busy:
                continue
            bucket = int(now // max(1.0, schedule.cadence_seconds))
            if self.queue.enqueue(
                values={
                    "task_type": schedule.task_type,
                    "payload": {**schedule.payload, "scheduled_by": "scheduler"},
                },
                idempotency_key=f"pipeline:{schedule.task_type}:{bucket}",
                priority=schedule.priority,
            ):
                enqueued.append(schedule.task_type)
        if now - self._last_housekeeping >= self.housekeeping_seconds:
            self._last_housekeeping = now
            for queue in self.purged_queues:
                rows, _ = queue.purge(older_than=self.retention)
                if rows:
                    logger.info("purged %d completed rows of %s", rows, queue.spec.name)
        return enqueued

    def run(self, interval_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                enqueued = self.tick()
                if enqueued:
                    logger.info("scheduled %s", ", ".join(enqueued))
            except Exception:
                logger.exception("scheduler tick failed; retrying")
            self._stop.wait(interval_seconds)

    def stop(self) -> None:
        self._stop.set()
