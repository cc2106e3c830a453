"""Ranking generations: the listed packs' order per sort, computed once and shared by every process.

One build (`RankingStore.build`) computes every reachable pack's signals, writes them to
`sticker_pack_score_snapshot`, and stores the order of the listed packs for each score sort as
generation N in `sticker_catalog_ranking`; marking the generation `ready` publishes it. Cursors
name their generation, so a client pages through one frozen order while newer ones appear.

Who builds is decided in the database (`claim`): one transaction inserts the `building` row only if
no live builder exists and, unless forced, the newest generation is old enough. The transaction is
serializable on PostgreSQL and MySQL (a concurrent claimer fails and retries, then sees the winner)
and exclusive on SQLite. A builder silent for STICKER_CATALOG_RANKING_BUILD_TIMEOUT_SECONDS is
presumed dead and its row marked failed, so a crash never blocks builds for long.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.catalog import repository as repo
from omnizap.catalog.classification import ClassificationFacts
from omnizap.catalog.derive import DeriveSettings, PackDerivation, derive, facts_from_scores, snapshot_row
from omnizap.catalog.index import microseconds
from omnizap.catalog.visibility import LISTED_VISIBILITY
from omnizap.config import Settings
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
_SNAPSHOT_UPDATE_COLUMNS = [
    column.name for column in snapshot_table.c if column.name not in ("pack_id", "created_at")
]


@dataclass(frozen=True)
class Generation:
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    pack_count: int


def _generation(row: Mapping[str, Any]) -> Generation:
    return Generation(
        id=int(row["id"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        pack_count=int(row["pack_count"] or 0),
    )


def _sort_rows(
    listed: Sequence[Mapping[str, Any]], derived: Mapping[str, PackDerivation]
) -> dict[str, list[str]]:
    """The pack ids of each score sort, best first; ties by newest change, then id (deterministic)."""

    def base(row: Mapping[str, Any]) -> tuple[float, int, str]:
        signals = derived[row["id"]].signals
        return (-signals["ranking_score"], -microseconds(row["updated_at"]), row["id"])

    keys = {
        "popular": lambda row: base(row),
        "trending": lambda row: (-derived[row["id"]].signals["trend_score"], *base(row)),
        "liked": lambda row: (-derived[row["id"]].like_count, *base(row)),
        "downloads": lambda row: (-derived[row["id"]].open_count, *base(row)),
    }
    return {sort_key: [row["id"] for row in sorted(listed, key=key)] for sort_key, key in keys.items()}


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
        self._orders: OrderedDict[tuple[int, str], tuple[str, ...]] = OrderedDict()
        self._orders_lock = threading.Lock()
        self._facts: dict[str, tuple[str, ClassificationFacts]] = {}
        self._quality: dict[str, tuple[int, float | None]] = {}  # pack id → (version, quality base)
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

    # --- building ---------------------------------------------------------------------------------
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

    def build(self, generation_id: int) -> Generation | None:
        """Compute and publish generation `generation_id` (claimed by this process)."""
        try:
            return self._build(generation_id)
        except BaseException:
            with self.database.transaction() as connection:
                connection.execute(
                    generation_table.update()
                    .where(generation_table.c.id == generation_id, generation_table.c.status == "building")
                    .values(status="failed", finished_at=utcnow())
                )
            raise

    def _build(self, generation_id: int) -> Generation | None:
        started = time.perf_counter()
        now = utcnow()
        only_classified = self.settings.sticker_catalog_only_classified
        with self.database.read() as connection:
            rows = repo.catalog_pack_rows(connection, None, listed_only=False, only_classified=False)
            derived = derive(
                connection,
                rows,
                self.derive_settings,
                now,
                everything=True,
                previous=lambda ids: self._known_facts(connection, ids),
                quality_memo=self._quality,
            )
            classified = repo.classified_pack_ids(connection, None) if only_classified else set()
            existing_snapshots = {row[0] for row in connection.execute(sa.select(snapshot_table.c.pack_id))}
        computed = time.perf_counter()
        self._write_snapshots(self._snapshots_to_write(rows, derived, existing_snapshots, now))
        self._delete_snapshots(sorted(existing_snapshots - derived.keys()))
        listed = [
            row
            for row in rows
            if row["visibility"] == LISTED_VISIBILITY and (not only_classified or row["id"] in classified)
        ]
        orders = _sort_rows(listed, derived)
        ranking_rows = [
            {"generation_id": generation_id, "sort_key": sort_key, "position": position, "pack_id": pack_id}
            for sort_key, ids in orders.items()
            for position, pack_id in enumerate(ids, start=1)
        ]
        for start in range(0, len(ranking_rows), RANKING_INSERT_CHUNK):
            with self.database.transaction() as connection:
                connection.execute(ranking_table.insert(), ranking_rows[start : start + RANKING_INSERT_CHUNK])
        written = time.perf_counter()
        finished = utcnow()
        with self.database.transaction() as connection:
            published = connection.execute(
                generation_table.update()
                .where(generation_table.c.id == generation_id, generation_table.c.status == "building")
                .values(status="ready", pack_count=len(listed), finished_at=finished)
            ).rowcount
        self._quality = {pack_id: self._quality[pack_id] for pack_id in derived if pack_id in self._quality}
        self._facts = {
            pack_id: (derivation.stamp, derivation.facts)
            for pack_id, derivation in derived.items()
            if derivation.facts.classified_items
        }
        if not published:  # presumed dead meanwhile and marked failed: readers never use it
            logger.warning("ranking generation %d was taken over before it was published", generation_id)
            return None
        with self._orders_lock:
            for sort_key, ids in orders.items():
                self._orders[(generation_id, sort_key)] = tuple(ids)
            while len(self._orders) > ORDERS_KEPT:
                self._orders.popitem(last=False)
        logger.info(
            "ranking generation %d: %d listed of %d reachable packs, %.2f s (signals %.2f s, writes %.2f s)",
            generation_id,
            len(listed),
            len(rows),
            time.perf_counter() - started,
            computed - started,
            written - computed,
        )
        return Generation(id=generation_id, started_at=now, finished_at=finished, pack_count=len(listed))

    def _snapshots_to_write(
        self,
        rows: Sequence[Mapping[str, Any]],
        derived: Mapping[str, PackDerivation],
        existing: set[str],
        now: dt.datetime,
    ) -> list[dict[str, Any]]:
        """Snapshot rows that changed since this process last wrote them, or whose row is missing,
        older than the pack's last change, or past half the freshness bound; the others stay."""
        rewrite_before = now - dt.timedelta(milliseconds=self.settings.sticker_score_snapshot_max_age_ms) / 2
        written: dict[str, tuple[tuple[Any, ...], dt.datetime]] = {}
        changed = []
        for row in rows:
            pack_id = row["id"]
            derivation = derived[pack_id]
            fingerprint = _snapshot_fingerprint(derivation, int(row["sticker_count"]))
            previous = self._written.get(pack_id)
            if (
                previous is not None
                and pack_id in existing
                and previous[0] == fingerprint
                and previous[1] >= row["updated_at"]
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
