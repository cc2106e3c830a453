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

Layout: `common` (tables, constants, data types, pure helpers), `generations` (`GenerationStore`:
shared state, reading, claiming, the lease, pruning), `plans` (full/targeted/named computation),
`snapshots` (applying a plan's snapshot rows), `publishing` (orders to a ready generation, debounce
windows). `RankingStore`, here, composes them and holds the two entry points; every name callers
import stays importable from `omnizap.catalog.rankings` (`refresh` reads LEASE_WAIT_TASK_SECONDS
from this module, so patching it here still takes effect).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from omnizap.catalog.index import always
from omnizap.catalog.rankings.common import (
    CLAIM_ATTEMPTS,
    FULL_SHARE,
    LEASE_NAME,
    LEASE_WAIT_SECONDS,
    LEASE_WAIT_TASK_SECONDS,
    ORDERS_KEPT,
    RANKING_INSERT_CHUNK,
    SNAPSHOT_UPSERT_CHUNK,
    SORT_KEYS,
    Generation,
    OrderValues,
    RefreshAbandoned,
    RefreshResult,
    _check,
    _Decision,
    _sort_rows,
    generation_table,
    logger,
    ranking_table,
    snapshot_table,
)
from omnizap.catalog.rankings.generations import GenerationStore
from omnizap.catalog.rankings.plans import RankingPlansMixin
from omnizap.catalog.rankings.publishing import RankingPublishMixin
from omnizap.catalog.rankings.snapshots import RankingSnapshotsMixin
from omnizap.platform.db.types import utcnow

__all__ = [
    "CLAIM_ATTEMPTS",
    "FULL_SHARE",
    "LEASE_NAME",
    "LEASE_WAIT_SECONDS",
    "LEASE_WAIT_TASK_SECONDS",
    "ORDERS_KEPT",
    "RANKING_INSERT_CHUNK",
    "SNAPSHOT_UPSERT_CHUNK",
    "SORT_KEYS",
    "Generation",
    "GenerationStore",
    "OrderValues",
    "RankingStore",
    "RefreshAbandoned",
    "RefreshResult",
    "generation_table",
    "ranking_table",
    "snapshot_table",
]


class RankingStore(RankingPlansMixin, RankingSnapshotsMixin, RankingPublishMixin):
    """Ranking generations and score snapshots (see the module docstring): the two entry points,
    `build` and `refresh`; reading, claiming and pruning come from `GenerationStore`."""

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
