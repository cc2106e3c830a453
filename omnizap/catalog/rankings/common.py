"""Ranking data types, constants and pure helpers shared by the `rankings` modules.

The tables, chunk sizes and lease names; `Generation` and `RefreshResult` (what callers get back);
`_Plan` (what one refresh computed, before writing) and `_Decision` (what became of its orders);
and the helpers that need no store: sorting the orders, inserting ranking rows, fingerprinting a
snapshot row, checking a refresh still holds its lease.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from omnizap.catalog.derive import PackDerivation
from omnizap.platform.db.schema import (
    sticker_catalog_generation,
    sticker_catalog_ranking,
    sticker_pack_score_snapshot,
)

# The package's name, which ranking log lines have always carried (log filters match it).
logger = logging.getLogger("omnizap.catalog.rankings")

generation_table = sticker_catalog_generation
ranking_table = sticker_catalog_ranking
snapshot_table = sticker_pack_score_snapshot

SORT_KEYS = ("popular", "trending", "liked", "downloads")
RANKING_INSERT_CHUNK = 5_000
SNAPSHOT_UPSERT_CHUNK = 2_000
CLAIM_ATTEMPTS = 6
ORDERS_KEPT = 12
LEASE_NAME = "catalog_ranking"
LEASE_WAIT_SECONDS = (0.02, 0.06)
LEASE_WAIT_TASK_SECONDS = 10.0  # how long a refresh task waits for the lease before it is deferred
# A targeted refresh that would compute more than this share of the listed packs one by one reads
# whole tables instead (a full refresh): past that point id lists cost more than they save.
FULL_SHARE = 0.5
_SNAPSHOT_UPDATE_COLUMNS = [
    column.name for column in snapshot_table.c if column.name not in ("pack_id", "created_at")
]

OrderValues = tuple[float, float, int, int]  # ranking score, trend score, likes, opens


class RefreshAbandoned(RuntimeError):
    """The task running a refresh lost its lease; another worker may run it now."""


@dataclass(frozen=True)
class Generation:
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    pack_count: int


@dataclass(frozen=True)
class RefreshResult:
    full: bool
    named: int  # pack ids the caller named
    derived: int  # packs whose signals were computed from the database
    written: int  # snapshot rows written
    deleted: int  # snapshot rows of packs no longer reachable
    listed: int  # packs in the orders
    outcome: str  # published | unchanged | deferred | busy
    generation_id: int | None  # the generation published, else the newest one
    window: str  # "listing" (packs joined or left the listing) or "order" (only reordered)
    follow_up_at: dt.datetime | None  # set when deferred or busy: refresh again (no debounce) then
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "mode": "full" if self.full else "targeted",
            "named": self.named,
            "derived": self.derived,
            "snapshots_written": self.written,
            "snapshots_deleted": self.deleted,
            "listed": self.listed,
            "generation": self.outcome,
            "generation_id": self.generation_id,
            "window": self.window,
            "follow_up_at": self.follow_up_at.isoformat() if self.follow_up_at is not None else None,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Plan:
    """What one refresh computed, before anything is written."""

    full: bool
    named: int
    derived_rows: list[dict[str, Any]]  # rows of the packs in `derived`
    derived: dict[str, PackDerivation]
    existing: dict[str, dt.datetime]  # snapshot rows present: pack id → refreshed_at
    gone: list[str]  # snapshot rows to delete (pack not reachable any more)
    listed: list[tuple[str, int]]  # (pack id, updated_at in µs) of the packs in the orders
    values: dict[str, OrderValues]
    written: int = 0  # snapshot rows written, once applied
    deleted: int = 0  # snapshot rows deleted, once applied


class _Decision(NamedTuple):
    """What became of a refresh's orders."""

    outcome: str  # published | unchanged | deferred | busy
    generation_id: int | None
    window: str
    follow_up_at: dt.datetime | None


def _generation(row: Mapping[str, Any]) -> Generation:
    return Generation(
        id=int(row["id"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        pack_count=int(row["pack_count"] or 0),
    )


def _values(derivation: PackDerivation) -> OrderValues:
    signals = derivation.signals
    return (
        float(signals["ranking_score"]),
        float(signals["trend_score"]),
        derivation.like_count,
        derivation.open_count,
    )


def _sort_rows(listed: Sequence[tuple[str, int]], values: Mapping[str, OrderValues]) -> dict[str, list[str]]:
    """The pack ids of each score sort, best first; ties by ranking score, newest change, then id.

    One full sort by (ranking, newest change, id), then a stable sort of that order by each other
    sort's own key: equal keys keep the ranking order, which is the tie-break, at a fraction of the
    cost of comparing tuples in four sorts."""
    popular = [
        entry[0] for entry in sorted(listed, key=lambda entry: (-values[entry[0]][0], -entry[1], entry[0]))
    ]
    return {
        "popular": popular,
        "trending": sorted(popular, key=lambda pack_id: -values[pack_id][1]),
        "liked": sorted(popular, key=lambda pack_id: -values[pack_id][2]),
        "downloads": sorted(popular, key=lambda pack_id: -values[pack_id][3]),
    }


def _insert_ranking_rows(connection: Connection, rows: Sequence[tuple[int, str, int, str]]) -> None:
    """Plain-tuple executemany straight to the driver: a generation is ~4 rows per listed pack, and
    building SQLAlchemy's per-row parameters cost more than the insert itself (≈0.3 s of 0.5 s
    for 32,000 rows on SQLite). Every column is an int or a str, so no type processing is skipped."""
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(
        column.name
        for column in (
            ranking_table.c.generation_id,
            ranking_table.c.sort_key,
            ranking_table.c.position,
            ranking_table.c.pack_id,
        )
    )
    statement = f"INSERT INTO {ranking_table.name} ({columns}) VALUES ({', '.join([mark] * 4)})"
    connection.exec_driver_sql(statement, list(rows))


def _check(alive: Callable[[], bool]) -> None:
    if not alive():
        raise RefreshAbandoned("the lease was lost; stopping before writing more")


def _snapshot_fingerprint(derivation: PackDerivation, sticker_count: int) -> tuple[Any, ...]:
    """What a snapshot row says, to 4 decimals: rows equal by this are not rewritten."""
    signals = derivation.signals
    scores = tuple(
        round(float(signals[key]), 4)
        for key in (
            "ranking_score",
            "pack_score",
            "trend_score",
            "quality_score",
            "engagement_score",
            "diversity_score",
            "cohesion_score",
        )
    )
    return (*scores, signals["nsfw_level"], sticker_count, derivation.tags, derivation.stamp)
