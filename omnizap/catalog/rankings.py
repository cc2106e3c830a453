"""Ranking generations and score snapshots: computed once, shared by every process.

A **refresh** (`RankingStore.refresh`, run by the `ranking_refresh` task in `catalog.tasks`) brings
`sticker_pack_score_snapshot` up to date and, when the order of some score sort changed, stores the
listed packs' order of every score sort as generation N in `sticker_catalog_ranking`; marking the
generation `ready` publishes it. Cursors name their generation, so a client pages through one frozen
order while newer ones appear. API processes only adopt generations (`CatalogService`).

- *full* (`pack_ids=None`): every reachable pack's signals are computed from the database.
- *targeted* (a list of pack ids, from outbox events): those packs, plus the listed packs whose
  snapshot cannot stand in for them (missing, older than their last change or the freshness bound,
  another formula version, or the read flag off for them); every other listed pack enters the orders
  with its snapshot values. When that is most of the catalog it runs as a full refresh.

A generation is published only if an order changed, and not sooner after the previous one than
STICKER_CATALOG_RANKING_DEBOUNCE_SECONDS when packs joined or left the listing, or
STICKER_CATALOG_RANKING_REFRESH_SECONDS when interactions only reordered it; a refresh that is too
early says when to come back (`follow_up_at`), so a burst of likes costs one generation per window.

Snapshot writers (refreshes and in-process builds) take the `catalog_ranking` lease one at a time,
so a full build that read the data before a like never overwrites the row a targeted refresh wrote
after it. The lease is renewed in the background and lasts STICKER_WORKER_TASK_LOCK_TIMEOUT_SECONDS,
so a writer that crashed holds it up for at most that long. A refresh task that finds it taken
waits a little (LEASE_WAIT_TASK_SECONDS: targeted refreshes take milliseconds), then raises
`leases.LeaseBusy`, which defers the task until the lease ends instead of failing it.

Who creates a generation row is decided in the database (`claim`): one transaction inserts the
`building` row only if no live builder exists and, unless forced, the newest generation is old
enough. The transaction is serializable on PostgreSQL and MySQL (a concurrent claimer fails and
retries, then sees the winner) and exclusive on SQLite. A builder silent for
STICKER_CATALOG_RANKING_BUILD_TIMEOUT_SECONDS is presumed dead and its row marked failed, so a crash
never blocks builds for long. Lock order is always lease, then claim, or claim then lease with no
waiting on the claim while the lease is held (a refresh that finds a live claim defers), so two
writers never wait for each other.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.catalog import repository as repo
from omnizap.catalog.classification import ClassificationFacts
from omnizap.catalog.derive import (
    SNAPSHOT_SOURCE_VERSION,
    DeriveSettings,
    PackDerivation,
    derive,
    facts_from_scores,
    snapshot_row,
)
from omnizap.catalog.index import always, microseconds
from omnizap.catalog.visibility import LISTED_VISIBILITY
from omnizap.config import Settings
from omnizap.platform import leases
from omnizap.platform.db import Database
from omnizap.platform.db.engine import excluded
from omnizap.platform.db.schema import (
    sticker_catalog_generation,
    sticker_catalog_ranking,
    sticker_pack_score_snapshot,
)
from omnizap.platform.db.types import utcnow

logger = logging.getLogger(__name__)

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


class RankingStore:
    def __init__(self, database: Database, settings: Settings, builder_name: str) -> None:
        self.database = database
        self.settings = settings
        self.builder_name = builder_name[:120]
        self.derive_settings = DeriveSettings.from_settings(settings)
        self.snapshot_max_age = dt.timedelta(milliseconds=settings.sticker_score_snapshot_max_age_ms)
        self._orders: OrderedDict[tuple[int, str], tuple[str, ...]] = OrderedDict()
        self._orders_lock = threading.Lock()
        self._facts: dict[str, tuple[str, ClassificationFacts]] = {}
        self._quality: dict[str, tuple[int, float | None]] = {}  # pack id → (version, quality base)
        self._member_cache: tuple[int, frozenset[str]] | None = None  # packs of one generation's orders
        self._written: dict[str, tuple[tuple[Any, ...], dt.datetime]] = {}  # snapshot rows this process wrote

    @property
    def build_timeout(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.settings.sticker_catalog_ranking_build_timeout_seconds)

    # --- reading ----------------------------------------------------------------------------------
    def latest(self, connection: Connection | None = None) -> Generation | None:
        query = (
            sa.select(generation_table)
            .where(generation_table.c.status == "ready")
            .order_by(generation_table.c.id.desc())
            .limit(1)
        )
        if connection is None:
            with self.database.read() as own:
                row = own.execute(query).mappings().first()
        else:
            row = connection.execute(query).mappings().first()
        return _generation(row) if row else None

    def live_builder(self) -> Generation | None:
        """A generation being built by a process that is presumably still alive."""
        cutoff = utcnow() - self.build_timeout
        query = (
            sa.select(generation_table)
            .where(generation_table.c.status == "building", generation_table.c.started_at > cutoff)
            .order_by(generation_table.c.id.desc())
            .limit(1)
        )
        with self.database.read() as connection:
            row = connection.execute(query).mappings().first()
        return _generation(row) if row else None

    def order(self, generation_id: int, sort_key: str) -> tuple[str, ...] | None:
        """The frozen order of a ready generation (None if it does not exist or was pruned)."""
        key = (generation_id, sort_key)
        with self._orders_lock:
            found = self._orders.get(key)
            if found is not None:
                self._orders.move_to_end(key)
                return found
        with self.database.read() as connection:
            status = connection.execute(
                sa.select(generation_table.c.status).where(generation_table.c.id == generation_id)
            ).scalar_one_or_none()
            if status != "ready":
                return None
            ids = tuple(
                row[0]
                for row in connection.execute(
                    sa.select(ranking_table.c.pack_id)
                    .where(
                        ranking_table.c.generation_id == generation_id, ranking_table.c.sort_key == sort_key
                    )
                    .order_by(ranking_table.c.position)
                )
            )
        with self._orders_lock:
            self._orders[key] = ids
            while len(self._orders) > ORDERS_KEPT:
                self._orders.popitem(last=False)
        return ids

    # --- claiming ---------------------------------------------------------------------------------
    @contextmanager
    def _claim_transaction(self) -> Iterator[Connection]:
        if self.database.dialect == "sqlite":
            with self.database.transaction() as connection:  # BEGIN IMMEDIATE: one writer at a time
                yield connection
            return
        with self.database.engine.connect() as connection:
            serializable = connection.execution_options(isolation_level="SERIALIZABLE")
            with serializable.begin():
                yield serializable

    def claim(self, *, min_interval: dt.timedelta | None) -> int | None:
        """Start generation N+1 in the database and return its id, or None when another process
        builds one now or (with `min_interval`) the newest generation is younger than that."""
        for attempt in range(CLAIM_ATTEMPTS):
            try:
                return self._claim_once(min_interval)
            except sa.exc.DBAPIError as error:  # serialization failure or deadlock: the other won
                if attempt == CLAIM_ATTEMPTS - 1:
                    logger.warning("ranking claim gave up after %d conflicts: %s", CLAIM_ATTEMPTS, error.orig)
                    return None
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        return None

    def _claim_once(self, min_interval: dt.timedelta | None) -> int | None:
        now = utcnow()
        with self._claim_transaction() as connection:
            building = connection.execute(
                sa.select(generation_table.c.id, generation_table.c.started_at).where(
                    generation_table.c.status == "building"
                )
            ).all()
            if any(started > now - self.build_timeout for _, started in building):
                return None
            if building:  # their builders are presumed dead
                connection.execute(
                    generation_table.update()
                    .where(generation_table.c.id.in_([row[0] for row in building]))
                    .values(status="failed", finished_at=now)
                )
            latest = self.latest(connection)
            if (
                min_interval is not None
                and latest is not None
                and latest.finished_at is not None
                and latest.finished_at > now - min_interval
            ):
                return None
            result = connection.execute(
                generation_table.insert().values(
                    status="building", pack_count=0, built_by=self.builder_name, started_at=now
                )
            )
            return int(result.inserted_primary_key[0])

    # --- mutual exclusion -------------------------------------------------------------------------
    @contextmanager
    def exclusive(
        self, heartbeat: Callable[[], bool] | None = None, *, wait_seconds: float | None = None
    ) -> Iterator[Callable[[], bool]]:
        """Hold the lease every snapshot writer takes, waiting up to `wait_seconds` (default: the
        build timeout) for the writer that has it, else raise LeaseBusy. Without it a full build
        that read the data before a like could overwrite the snapshot a targeted refresh wrote
        after it. Yields a check that is False once the lease or the task's own lease was lost."""
        holder = f"{self.builder_name}:{uuid.uuid4().hex[:8]}"[:160]  # per call: threads share a name
        lease = leases.KeptLease(self.database, LEASE_NAME, holder, leases.task_lease_seconds(self.settings))
        wait = self.build_timeout.total_seconds() if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + wait
        while not lease.take():
            if time.monotonic() >= deadline:
                raise leases.busy(self.database, LEASE_NAME)
            if heartbeat is not None and not heartbeat():
                raise RefreshAbandoned("the task's lease was lost while waiting for another refresh")
            time.sleep(random.uniform(*LEASE_WAIT_SECONDS))
        with lease:
            yield lambda: lease.held() and (heartbeat is None or heartbeat())

    # --- computing --------------------------------------------------------------------------------
    def _known_facts(
        self, connection: Connection, pack_ids: list[str]
    ) -> dict[str, tuple[str, ClassificationFacts]]:
        """Facts computed before: this process's last build, else the snapshot rows."""
        known = {pack_id: self._facts[pack_id] for pack_id in pack_ids if pack_id in self._facts}
        missing = [pack_id for pack_id in pack_ids if pack_id not in known]
        if missing:
            for pack_id, row in repo.snapshot_rows(connection, missing, with_scores=True).items():
                scores = row.get("scores_json")
                facts = facts_from_scores(scores)
                if facts is not None and isinstance(scores, Mapping):
                    known[pack_id] = (str(scores.get("classification_stamp")), facts)
        return known

    def _derive(
        self, connection: Connection, rows: Sequence[Mapping[str, Any]], now: dt.datetime, *, everything: bool
    ) -> dict[str, PackDerivation]:
        return derive(
            connection,
            rows,
            self.derive_settings,
            now,
            everything=everything,
            previous=lambda ids: self._known_facts(connection, ids),
            quality_memo=self._quality,
        )

    def _compute_full(self, now: dt.datetime) -> _Plan:
        """Every reachable pack's signals from the database."""
        only_classified = self.settings.sticker_catalog_only_classified
        with self.database.read() as connection:
            rows = repo.catalog_pack_rows(connection, None, listed_only=False, only_classified=False)
            derived = self._derive(connection, rows, now, everything=True)
            classified = repo.classified_pack_ids(connection, None) if only_classified else set()
            existing = repo.snapshot_times(connection, None)
        listed = [
            row
            for row in rows
            if row["visibility"] == LISTED_VISIBILITY and (not only_classified or row["id"] in classified)
        ]
        return _Plan(
            full=True,
            named=0,
            derived_rows=rows,
            derived=derived,
            existing=existing,
            gone=sorted(existing.keys() - derived.keys()),
            listed=[(row["id"], microseconds(row["updated_at"])) for row in listed],
            values={pack_id: _values(derivation) for pack_id, derivation in derived.items()},
        )

    def _compute_targeted(
        self, pack_ids: Sequence[str], now: dt.datetime, snapshot_read: Callable[[str], bool]
    ) -> _Plan | None:
        """The named packs' signals, plus every listed pack whose snapshot cannot be used for the
        order (missing, stale, or not to be read); the other listed packs keep their snapshot
        values. None when that is most of the catalog: a full computation is cheaper then."""
        named = list(dict.fromkeys(str(pack_id) for pack_id in pack_ids))
        with self.database.read() as connection:
            listed = repo.order_rows(
                connection,
                only_classified=self.settings.sticker_catalog_only_classified,
                stale_before=now - self.snapshot_max_age,
                source_version=SNAPSHOT_SOURCE_VERSION,
            )
            named_rows = repo.catalog_pack_rows(connection, named, listed_only=False, only_classified=False)
            named_set = {row["id"] for row in named_rows}
            stale = [
                row[0] for row in listed if row[0] not in named_set and (row[6] or not snapshot_read(row[0]))
            ]
            if len(named_rows) + len(stale) > FULL_SHARE * max(1, len(listed)):
                return None
            stale_rows = (
                repo.catalog_pack_rows(connection, stale, listed_only=False, only_classified=False)
                if stale
                else []
            )
            rows = [*named_rows, *stale_rows]
            derived = self._derive(connection, rows, now, everything=False)
            existing = repo.snapshot_times(connection, [*named, *stale])
        values: dict[str, OrderValues] = {}
        for pack_id, _updated, ranking, trend, likes, opens, _stale in listed:
            derivation = derived.get(pack_id)
            if derivation is not None:
                values[pack_id] = _values(derivation)
            elif ranking is not None and trend is not None:  # fresh (else it would be derived)
                values[pack_id] = (float(ranking), float(trend), int(likes), int(opens))
        return _Plan(
            full=False,
            named=len(named),
            derived_rows=rows,
            derived=derived,
            existing=existing,
            gone=sorted(pack_id for pack_id in named if pack_id not in named_set and pack_id in existing),
            listed=[(row[0], microseconds(row[1])) for row in listed if row[0] in values],
            values=values,
        )

    def _compute_named(self, pack_ids: Sequence[str], now: dt.datetime) -> _Plan:
        """Only the named packs' signals, no orders: a refresh that will defer its generation anyway
        (the follow-up computes the orders), so a burst of likes costs a few ms per refresh."""
        named = list(dict.fromkeys(str(pack_id) for pack_id in pack_ids))
        with self.database.read() as connection:
            rows = repo.catalog_pack_rows(connection, named, listed_only=False, only_classified=False)
            derived = self._derive(connection, rows, now, everything=False)
            existing = repo.snapshot_times(connection, named)
        return _Plan(
            full=False,
            named=len(named),
            derived_rows=rows,
            derived=derived,
            existing=existing,
            gone=sorted(pack_id for pack_id in named if pack_id not in derived and pack_id in existing),
            listed=[],
            values={},
        )

    def _listing_changes(self, latest: Generation, pack_ids: Sequence[str]) -> bool:
        """Whether one of these packs joined or left the listing since `latest` was built."""
        with self.database.read() as connection:
            listed = {
                row["id"]
                for row in repo.catalog_pack_rows(
                    connection,
                    list(pack_ids),
                    listed_only=True,
                    only_classified=self.settings.sticker_catalog_only_classified,
                )
            }
        members = self._members(latest.id)
        return any((pack_id in listed) != (pack_id in members) for pack_id in pack_ids)

    def _members(self, generation_id: int) -> frozenset[str]:
        if self._member_cache is None or self._member_cache[0] != generation_id:
            self._member_cache = (generation_id, frozenset(self.order(generation_id, "popular") or ()))
        return self._member_cache[1]

    def _apply(self, plan: _Plan, now: dt.datetime) -> None:
        """Write the plan's changed snapshot rows and drop those of packs no longer reachable."""
        rows = self._snapshots_to_write(plan.derived_rows, plan.derived, plan.existing, now, full=plan.full)
        self._write_snapshots(rows)
        self._delete_snapshots(plan.gone)
        for pack_id in plan.gone:
            self._written.pop(pack_id, None)
        facts = {
            pack_id: (derivation.stamp, derivation.facts)
            for pack_id, derivation in plan.derived.items()
            if derivation.facts.classified_items
        }
        if plan.full:
            self._quality = {
                pack_id: self._quality[pack_id] for pack_id in plan.derived if pack_id in self._quality
            }
            self._facts = facts
        else:
            for pack_id in plan.derived:
                self._facts.pop(pack_id, None)
            self._facts.update(facts)
        plan.written, plan.deleted = len(rows), len(plan.gone)

    # --- publishing -------------------------------------------------------------------------------
    def _publish(self, generation_id: int, orders: Mapping[str, list[str]], listed: int) -> Generation | None:
        """Store the orders as generation `generation_id` and mark it ready (None if it was taken
        over meanwhile: then readers never use it)."""
        ranking_rows = [
            (generation_id, sort_key, position, pack_id)
            for sort_key, ids in orders.items()
            for position, pack_id in enumerate(ids, start=1)
        ]
        for start in range(0, len(ranking_rows), RANKING_INSERT_CHUNK):
            with self.database.transaction() as connection:
                _insert_ranking_rows(connection, ranking_rows[start : start + RANKING_INSERT_CHUNK])
        finished = utcnow()
        with self.database.transaction() as connection:
            published = connection.execute(
                generation_table.update()
                .where(generation_table.c.id == generation_id, generation_table.c.status == "building")
                .values(status="ready", pack_count=listed, finished_at=finished)
            ).rowcount
            started_at = connection.execute(
                sa.select(generation_table.c.started_at).where(generation_table.c.id == generation_id)
            ).scalar_one_or_none()
        if not published:
            logger.warning("ranking generation %d was taken over before it was published", generation_id)
            return None
        with self._orders_lock:
            for sort_key, ids in orders.items():
                self._orders[(generation_id, sort_key)] = tuple(ids)
            while len(self._orders) > ORDERS_KEPT:
                self._orders.popitem(last=False)
        return Generation(
            id=generation_id, started_at=started_at or finished, finished_at=finished, pack_count=listed
        )

    def _fail(self, generation_id: int) -> None:
        with self.database.transaction() as connection:
            connection.execute(
                generation_table.update()
                .where(generation_table.c.id == generation_id, generation_table.c.status == "building")
                .values(status="failed", finished_at=utcnow())
            )

    def _window(
        self, latest: Generation | None, orders: Mapping[str, Sequence[str]]
    ) -> tuple[str, dt.timedelta]:
        """How soon after `latest` the orders may be published: STICKER_CATALOG_RANKING_DEBOUNCE_SECONDS
        when packs joined or left the listing (a new pack should show soon), else
        STICKER_CATALOG_RANKING_REFRESH_SECONDS (likes and opens only reorder: once a minute is
        enough, and each generation costs its ~4 rows per listed pack)."""
        debounce = dt.timedelta(seconds=self.settings.sticker_catalog_ranking_debounce_seconds)
        if latest is None:
            return "listing", debounce
        before = self.order(latest.id, "popular")
        if before is None or set(before) != set(orders["popular"]):
            return "listing", debounce
        return "order", max(
            debounce, dt.timedelta(seconds=self.settings.sticker_catalog_ranking_refresh_seconds)
        )

    def _deferral(
        self, latest: Generation | None, pack_ids: Sequence[str] | None, now: dt.datetime
    ) -> tuple[str, dt.datetime] | None:
        """(window, follow-up time) when a targeted refresh is sure to defer its generation: the
        newest one is younger than the window its named packs call for. None otherwise."""
        if pack_ids is None or latest is None or latest.finished_at is None:
            return None
        debounce = dt.timedelta(seconds=self.settings.sticker_catalog_ranking_debounce_seconds)
        if latest.finished_at <= now - debounce:  # past the short window: it may publish
            return None
        if self._listing_changes(latest, pack_ids):
            return "listing", latest.finished_at + debounce
        reorder = max(debounce, dt.timedelta(seconds=self.settings.sticker_catalog_ranking_refresh_seconds))
        return "order", latest.finished_at + reorder

    def _publish_if_changed(self, plan: _Plan, latest: Generation | None, *, debounce: bool) -> _Decision:
        """Publish the plan's orders as a new generation if they differ from `latest`'s and their
        window allows it (or `debounce` is off)."""
        orders = _sort_rows(plan.listed, plan.values)
        current = latest.id if latest is not None else None
        window, wait = self._window(latest, orders)
        if latest is not None and self.same_orders(latest.id, orders):
            return _Decision("unchanged", current, window, None)
        finished = latest.finished_at if latest is not None else None
        if debounce and finished is not None and finished > utcnow() - wait:
            return _Decision("deferred", current, window, finished + wait)
        claimed = self.claim(min_interval=None)
        if claimed is None:  # an in-process build runs now; it may have read older data
            return _Decision("busy", current, window, utcnow() + wait)
        try:
            generation = self._publish(claimed, orders, len(plan.listed))
        except BaseException:
            self._fail(claimed)
            raise
        if generation is None:  # taken over meanwhile (presumed dead): try again later
            return _Decision("busy", current, window, utcnow() + wait)
        self.prune()
        return _Decision("published", generation.id, window, None)

    def same_orders(self, generation_id: int, orders: Mapping[str, Sequence[str]]) -> bool:
        return all(self.order(generation_id, sort_key) == tuple(ids) for sort_key, ids in orders.items())

    # --- the two entry points ---------------------------------------------------------------------
    def build(self, generation_id: int) -> Generation | None:
        """Full refresh, published as generation `generation_id` (claimed by this process) whatever
        its order: the in-process path (`CatalogService.refresh_rankings`, builds in the API)."""
        try:
            with self.exclusive():
                started = time.perf_counter()
                now = utcnow()
                plan = self._compute_full(now)
                self._apply(plan, now)
                generation = self._publish(
                    generation_id, _sort_rows(plan.listed, plan.values), len(plan.listed)
                )
        except BaseException:
            self._fail(generation_id)
            raise
        logger.info(
            "ranking generation %d built in process: %d listed of %d reachable packs, %.2f s",
            generation_id,
            len(plan.listed),
            len(plan.derived_rows),
            time.perf_counter() - started,
        )
        return generation

    def refresh(
        self,
        pack_ids: Sequence[str] | None,
        *,
        snapshot_read: Callable[[str], bool] = always,
        debounce: bool = True,
        heartbeat: Callable[[], bool] | None = None,
    ) -> RefreshResult:
        """Bring snapshots up to date and publish a generation if an order changed.

        `pack_ids=None` recomputes every reachable pack; a list recomputes those packs and the
        listed packs whose snapshot cannot be used (see `_compute_targeted`). A new generation is
        published only when some sort's order differs from the newest one's, and (with `debounce`)
        not sooner after it than its window (`_window`): a refresh that finds it too soon, or
        finds another process building, returns `follow_up_at`, when a refresh without debounce
        should run to publish what was deferred.
        """
        started = time.perf_counter()
        with self.exclusive(heartbeat, wait_seconds=LEASE_WAIT_TASK_SECONDS) as alive:
            now = utcnow()
            latest = self.latest()
            early = self._deferral(latest, pack_ids, now) if debounce else None
            if early is not None:  # it will defer whatever the orders: skip computing them
                plan = self._compute_named(pack_ids or (), now)
                _check(alive)
                self._apply(plan, now)
                decision = _Decision("deferred", latest.id if latest else None, early[0], early[1])
            else:
                plan = None if pack_ids is None else self._compute_targeted(pack_ids, now, snapshot_read)
                if plan is None:
                    plan = self._compute_full(now)
                    plan.named = len(pack_ids or ())
                _check(alive)
                self._apply(plan, now)
                _check(alive)
                decision = self._publish_if_changed(plan, latest, debounce=debounce)
        result = RefreshResult(
            full=plan.full,
            named=plan.named,
            derived=len(plan.derived),
            written=plan.written,
            deleted=plan.deleted,
            listed=len(plan.listed),
            outcome=decision.outcome,
            generation_id=decision.generation_id,
            window=decision.window,
            follow_up_at=decision.follow_up_at,
            seconds=time.perf_counter() - started,
        )
        logger.info("ranking refresh: %s", result.summary())
        return result

    def _snapshots_to_write(
        self,
        rows: Sequence[Mapping[str, Any]],
        derived: Mapping[str, PackDerivation],
        existing: Mapping[str, dt.datetime],
        now: dt.datetime,
        *,
        full: bool,
    ) -> list[dict[str, Any]]:
        """Snapshot rows to (re)write: those whose values changed since this process wrote them, whose
        row is missing or was written by another process since, is older than the pack's last
        change, or passed half the freshness bound. The others stay as they are."""
        rewrite_before = now - self.snapshot_max_age / 2
        written: dict[str, tuple[tuple[Any, ...], dt.datetime]] = {} if full else self._written
        changed = []
        for row in rows:
            pack_id = row["id"]
            derivation = derived[pack_id]
            fingerprint = _snapshot_fingerprint(derivation, int(row["sticker_count"]))
            previous = self._written.get(pack_id)
            if (
                previous is not None
                and existing.get(pack_id) == previous[1]
                and previous[0] == fingerprint
                and previous[1] >= derivation.changed_at
                and previous[1] >= rewrite_before
            ):
                written[pack_id] = previous
                continue
            changed.append(snapshot_row(derivation, int(row["sticker_count"]), now))
            written[pack_id] = (fingerprint, now)
        self._written = written
        return changed

    def _write_snapshots(self, rows: list[dict[str, Any]]) -> None:
        # One single-row upsert run as executemany: compiling a 1,000-row VALUES list costs far more
        # than sending the rows.
        template = {column.name: sa.bindparam(column.name, type_=column.type) for column in snapshot_table.c}
        statement = self.database.upsert(
            snapshot_table,
            template,
            conflict_columns=["pack_id"],
            update={name: excluded(name) for name in _SNAPSHOT_UPDATE_COLUMNS},
        )
        for start in range(0, len(rows), SNAPSHOT_UPSERT_CHUNK):
            with self.database.transaction() as connection:
                connection.execute(statement, rows[start : start + SNAPSHOT_UPSERT_CHUNK])

    def _delete_snapshots(self, pack_ids: list[str]) -> None:
        for chunk in repo.batches(pack_ids):
            if chunk:
                with self.database.transaction() as connection:
                    connection.execute(snapshot_table.delete().where(snapshot_table.c.pack_id.in_(chunk)))

    # --- pruning ----------------------------------------------------------------------------------
    def prune(self) -> int:
        """Drop generations superseded more than STICKER_CATALOG_RANKING_RETENTION_SECONDS ago (the
        newest ready one always stays) and old failed or abandoned ones. Returns how many went."""
        now = utcnow()
        retention = dt.timedelta(seconds=self.settings.sticker_catalog_ranking_retention_seconds)
        with self.database.read() as connection:
            rows = connection.execute(
                sa.select(
                    generation_table.c.id,
                    generation_table.c.status,
                    generation_table.c.started_at,
                    generation_table.c.finished_at,
                ).order_by(generation_table.c.id)
            ).all()
        ready = [row for row in rows if row.status == "ready"]
        doomed: list[int] = []
        for older, newer in itertools.pairwise(ready):
            if newer.finished_at is not None and newer.finished_at < now - retention:
                doomed.append(int(older.id))
        abandoned_before = now - max(retention, self.build_timeout)
        doomed.extend(
            int(row.id)
            for row in rows
            if row.status in ("failed", "building") and row.started_at < abandoned_before
        )
        for generation_id in doomed:
            with self.database.transaction() as connection:
                connection.execute(
                    ranking_table.delete().where(ranking_table.c.generation_id == generation_id)
                )
                connection.execute(generation_table.delete().where(generation_table.c.id == generation_id))
        return len(doomed)
