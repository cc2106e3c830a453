"""Tailing `domain_event_outbox` for changes, without claiming or modifying a single row.

Ids come from an auto-increment key, which numbers rows when they are inserted, not when they
commit: a transaction holding id 41 can commit after the one holding id 42. A plain "id > last
seen" tail would skip 41 for good. So the tail remembers every id below its high-water mark that
it has not seen yet (a gap) and asks for those again on each poll, until they show up or
STICKER_CATALOG_OUTBOX_GAP_SECONDS pass (a rolled-back insert, an `INSERT … ON CONFLICT DO NOTHING`
or an engine's id cache leaves ids that never appear). Only primary-key lookups are used, so a
large or pruned outbox costs nothing extra.

When more ids are missing than it can track, or the outbox's ids went backwards (SQLite reuses the
highest ids after they are deleted), the tail reports an overflow and the caller treats
everything as changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.catalog.repository import ID_BATCH
from omnizap.platform.db.schema import domain_event_outbox

outbox = domain_event_outbox
POLL_BATCH = 2_000
STARTUP_LOOKBACK = 1_000  # ids below the start position that may still be uncommitted
MAX_GAPS = 20_000


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    event_type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any] | None


@dataclass
class PollResult:
    events: list[OutboxEvent] = field(default_factory=list)
    overflow: bool = False


_COLUMNS = (
    outbox.c.id,
    outbox.c.event_type,
    outbox.c.aggregate_type,
    outbox.c.aggregate_id,
    outbox.c.payload,
)


def _event(row: Any) -> OutboxEvent:
    payload = row.payload if isinstance(row.payload, dict) else None
    return OutboxEvent(
        int(row.id), str(row.event_type), str(row.aggregate_type), str(row.aggregate_id), payload
    )


class OutboxTail:
    def __init__(self, gap_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.gap_seconds = gap_seconds
        self._clock = clock
        self.high_water: int | None = None
        self.gaps: dict[int, float] = {}  # missing id → when it was first missed

    def start(self, connection: Connection) -> None:
        """Begin at the current end of the outbox; ids just below it that are not visible yet may
        belong to transactions still running, so they start as gaps."""
        high = connection.execute(sa.select(sa.func.max(outbox.c.id))).scalar_one_or_none()
        self.high_water = int(high or 0)
        self.gaps.clear()
        low = max(0, self.high_water - STARTUP_LOOKBACK)
        present = {
            int(row[0])
            for row in connection.execute(
                sa.select(outbox.c.id).where(outbox.c.id > low, outbox.c.id <= self.high_water)
            )
        }
        now = self._clock()
        self.gaps = {
            missing: now for missing in range(low + 1, self.high_water + 1) if missing not in present
        }

    def poll(self, connection: Connection) -> PollResult:
        if self.high_water is None:
            self.start(connection)
            return PollResult(overflow=True)
        result = PollResult()
        now = self._clock()
        if self.gaps:
            found = self._fetch_ids(connection, sorted(self.gaps))
            for event in found:
                self.gaps.pop(event.id, None)
            result.events.extend(found)
        while True:
            rows = connection.execute(
                sa.select(*_COLUMNS)
                .where(outbox.c.id > self.high_water)
                .order_by(outbox.c.id)
                .limit(POLL_BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                event = _event(row)
                if event.id > self.high_water + 1:
                    if event.id - self.high_water - 1 + len(self.gaps) > MAX_GAPS:
                        result.overflow = True
                    else:
                        for missing in range(self.high_water + 1, event.id):
                            self.gaps[missing] = now
                self.high_water = event.id
                result.events.append(event)
            if len(rows) < POLL_BATCH:
                break
        if not result.events:
            newest = connection.execute(sa.select(sa.func.max(outbox.c.id))).scalar_one_or_none()
            if int(newest or 0) < self.high_water:  # ids reused after the newest rows were deleted
                self.start(connection)
                result.overflow = True
        expired_before = now - self.gap_seconds
        for missing in [missing for missing, since in self.gaps.items() if since < expired_before]:
            del self.gaps[missing]
        return result

    @staticmethod
    def _fetch_ids(connection: Connection, ids: Sequence[int]) -> list[OutboxEvent]:
        found: list[OutboxEvent] = []
        for start in range(0, len(ids), ID_BATCH):
            query = sa.select(*_COLUMNS).where(outbox.c.id.in_(list(ids[start : start + ID_BATCH])))
            found.extend(_event(row) for row in connection.execute(query))
        return found
