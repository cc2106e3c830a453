"""The public catalog's read service: lists, search, pack details, intents, creators, stats, sitemap.

Reads answer from memory: a `CatalogIndex` of the listed packs (one record each), frozen ranking
generations shared through the database (`rankings`), and a cache of computed bodies (`cache`).
Generations and score snapshots are built by the `ranking_refresh` task (`catalog.tasks`); this
service adopts them, builds one itself only when none exists yet (a fresh install), and builds on a
schedule only with STICKER_CATALOG_RANKING_BUILD_IN_API. Signals come from snapshots while the
`enable_ranking_snapshot_read` flag is on for a pack and its snapshot is fresh, live otherwise.
Freshness comes from the transactional outbox: every change commits a `domain_event_outbox` row with
it, a watcher thread tails those rows (`watcher`), reloads the packs they name and invalidates what
showed them, so a like or an edit shows within about one poll interval. TTLs bound everything
else. See docs/catalog.md for the endpoints, the pagination guarantee and the settings.

Thread-safe: reads run concurrently in the web server's thread pool; index updates are serialized
and swap in a new immutable index, so a read never sees half an update.

`CatalogService` composes its parts: the index keeper (`keeper`: state, freshness, index and
generations), the read endpoints (`lists`, `detail`, `home_collections`, `overview`) and list entries
(`entries`); it runs the watcher and maintenance threads. The endpoints' constants are re-exported
here for the web layer.
"""

from __future__ import annotations

import logging
import threading
import time

from omnizap.catalog.detail import PACK_KEY_MAX, CatalogDetailMixin
from omnizap.catalog.home_collections import (
    CREATORS_LIMIT_DEFAULT,
    CREATORS_LIMIT_MAX,
    INTENT_LIMIT_DEFAULT,
    INTENT_LIMIT_MAX,
    CatalogCollectionsMixin,
)
from omnizap.catalog.keeper import AGGREGATES_SCOPE
from omnizap.catalog.lists import CatalogListsMixin
from omnizap.catalog.overview import README_TOP_PACKS, CatalogOverviewMixin

__all__ = [
    "AGGREGATES_SCOPE",
    "CREATORS_LIMIT_DEFAULT",
    "CREATORS_LIMIT_MAX",
    "INTENT_LIMIT_DEFAULT",
    "INTENT_LIMIT_MAX",
    "MAINTENANCE_TICK_SECONDS",
    "PACK_KEY_MAX",
    "README_TOP_PACKS",
    "CatalogService",
]

logger = logging.getLogger(__name__)

MAINTENANCE_TICK_SECONDS = 1.0


class CatalogService(CatalogListsMixin, CatalogDetailMixin, CatalogCollectionsMixin, CatalogOverviewMixin):
    """Read side of the public catalog. `start()` runs the watcher and maintenance threads.

    `flags` decides the snapshot read path (default: a reader of the flag table with the settings'
    cache TTL); `clock` is the time freshness is judged by (tests move it)."""

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the watcher (outbox tail) and maintenance (rankings, TTL reloads) threads."""
        with self._lifecycle_lock:
            if self._running:
                return
            self._stop.clear()
            self._threads = [
                threading.Thread(target=self._watch_loop, name="catalog-watcher", daemon=True),
                threading.Thread(target=self._maintenance_loop, name="catalog-maintenance", daemon=True),
            ]
            self._running = True
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Stop and join the threads (a ranking build in progress finishes first)."""
        with self._lifecycle_lock:
            if not self._running:
                return
            self._stop.set()
            for thread in self._threads:
                thread.join()
            self._threads = []
            self._running = False

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._current_index()
                self.poll_changes()
            except Exception:
                logger.exception("catalog watcher: poll failed; retrying")
            self._stop.wait(self._poll_seconds)

    def _maintenance_loop(self) -> None:
        while not self._stop.wait(MAINTENANCE_TICK_SECONDS):
            try:
                if self._index is None:
                    continue
                # Generations come from the ranking_refresh task (adopted by the watcher's poll);
                # only a deployment without any task poller builds them here.
                min_interval = self._ranking_due() if self._build_in_api else None
                if min_interval is not None:
                    generation_id = self.rankings.claim(min_interval=min_interval)
                    if generation_id is not None:
                        self._build_and_adopt(generation_id)
                index = self._index
                if index is not None and time.monotonic() - index.built_at > self._list_ttl:
                    self._reload_index()
            except Exception:
                logger.exception("catalog maintenance failed; retrying")
