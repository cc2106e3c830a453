"""The generation rows: reading them, claiming the next one, the writers' lease, pruning.

`GenerationStore` is the base of `RankingStore` (`rankings`): it holds the state every part shares
(settings, the cached orders, the facts and snapshot fingerprints of the last computation) and the
database side of generations: `latest`, `live_builder`, `order`, `claim` (who creates generation
N+1 is decided in one serializable/exclusive transaction), `exclusive` (the `catalog_ranking` lease
every snapshot writer takes) and `prune`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.catalog.classification import ClassificationFacts
from omnizap.catalog.derive import DeriveSettings
from omnizap.catalog.rankings.common import (
    CLAIM_ATTEMPTS,
    LEASE_NAME,
    LEASE_WAIT_SECONDS,
    ORDERS_KEPT,
    Generation,
    RefreshAbandoned,
    _generation,
    generation_table,
    logger,
    ranking_table,
)
from omnizap.config import Settings
from omnizap.platform import leases
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow


class GenerationStore:
    """Shared state and the generation rows (see the module docstring)."""

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
