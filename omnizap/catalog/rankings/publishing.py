"""Publishing: storing a plan's orders as a ready generation, within the debounce windows.

`_publish_if_changed` publishes only when an order differs from the newest generation's and its
window allows it (`_window`: the short debounce when packs joined or left the listing, the refresh
interval when they only reordered); `_deferral` tells a targeted refresh early that it will defer,
so it skips computing the orders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from omnizap.catalog import repository as repo
from omnizap.catalog.rankings.common import (
    ORDERS_KEPT,
    RANKING_INSERT_CHUNK,
    Generation,
    _Decision,
    _insert_ranking_rows,
    _Plan,
    _sort_rows,
    generation_table,
    logger,
)
from omnizap.catalog.rankings.generations import GenerationStore
from omnizap.platform.db.types import utcnow


class RankingPublishMixin(GenerationStore):
    """Publishing generations (see the module docstring)."""

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
