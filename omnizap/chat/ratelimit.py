"""Per-sender command rate limit in the database, so every worker process shares one count (chat §2).

A fixed window like the original's: the first action opens a window of STICKER_PACK_RATE_WINDOW_MS,
up to STICKER_PACK_RATE_MAX_ACTIONS actions fit in it, and a refused attempt is not counted.

Each decision is one conditional UPDATE (or an INSERT that loses cleanly on the primary key), so two
processes can never both take the last slot: PostgreSQL and MariaDB re-check the WHERE clause on
the locked row, SQLite serialises writers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from omnizap.platform.db import Database
from omnizap.platform.db.engine import insert_ignore
from omnizap.platform.db.schema import chat_rate_window
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.protocol import retry_deadlocks

BUCKET_MAX = 255
_ATTEMPTS = 12  # a lost INSERT race or a deadlock victim tries again


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: int = 0  # rounded up; 0 when allowed


class RateLimiter:
    def __init__(
        self,
        database: Database,
        *,
        max_actions: int,
        window_seconds: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.database = database
        self.max_actions = max(1, max_actions)
        self.window = dt.timedelta(seconds=max(1.0, window_seconds))
        self.clock = clock

    def hit(self, bucket: str) -> RateDecision:
        """Count one action for `bucket` if its window has room; otherwise say how long to wait."""
        key = bucket[:BUCKET_MAX]
        for _ in range(_ATTEMPTS):
            # MariaDB: concurrent first hits of one sender lock the same gap; the deadlock victim's
            # transaction was rolled back whole, so it is simply tried again.
            decision = retry_deadlocks(lambda: self._attempt(key, self.clock()), attempts=_ATTEMPTS)
            if decision is not None:
                return decision
        return RateDecision(False, 1)

    def _attempt(self, key: str, now: dt.datetime) -> RateDecision | None:
        """One transaction; None when the row vanished between the statements (try again)."""
        table = chat_rate_window
        opened_after = now - self.window
        with self.database.transaction() as connection:
            counted = connection.execute(
                table.update()
                .where(
                    table.c.bucket == key,
                    table.c.window_started_at > opened_after,
                    table.c.action_count < self.max_actions,
                )
                .values(action_count=table.c.action_count + 1)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            if counted:
                return RateDecision(True)
            reopened = connection.execute(
                table.update()
                .where(table.c.bucket == key, table.c.window_started_at <= opened_after)
                .values(window_started_at=now, action_count=1)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            if reopened:
                return RateDecision(True)
            inserted = connection.execute(
                insert_ignore(
                    connection.dialect.name,
                    table,
                    {"bucket": key, "window_started_at": now, "action_count": 1},
                )
            ).rowcount
            if inserted:
                return RateDecision(True)
            started = connection.execute(
                sa.select(table.c.window_started_at).where(table.c.bucket == key)
            ).scalar()
        if started is not None and started > opened_after:
            remaining = (started + self.window - now).total_seconds()
            return RateDecision(False, max(1, math.ceil(remaining)))
        return None
