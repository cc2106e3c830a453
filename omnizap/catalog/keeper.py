"""The catalog's index keeper: the state every read part shares and what keeps it fresh.

`CatalogIndexKeeper` holds the in-memory `CatalogIndex`, the adopted ranking generation, the read
cache and the outbox tail. Freshness: polling the outbox for changes (reloading the packs they name
and invalidating what showed them), taking up generations other processes publish, deciding when a
build is due. Index and generations: the first load, full and per-pack reloads, building and
adopting generations. `_cached` is how every read endpoint answers through the cache. The read
endpoints themselves live in `lists`, `detail`, `home_collections` and `overview`; `CatalogService`
(`service`) composes them and runs the threads.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from omnizap.catalog import repository as repo
from omnizap.catalog.cache import ReadCache
from omnizap.catalog.cursor import CursorCodec, cursor_key
from omnizap.catalog.derive import SNAPSHOT_READ_FLAG, DeriveSettings
from omnizap.catalog.index import CatalogIndex, PackRecord, load_records
from omnizap.catalog.rankings import Generation, RankingStore
from omnizap.catalog.shapes import Links
from omnizap.catalog.text import fold
from omnizap.catalog.watcher import OutboxEvent, OutboxTail
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED, PACK_UPDATED, STICKER_CLASSIFIED

# The name the catalog has always logged under (log filters match it).
logger = logging.getLogger("omnizap.catalog.service")

# Scope of the marketplace's database aggregates: invalidated by pack, sticker and classification
# changes, not by every open or like (those reach them within MARKETPLACE_GLOBAL_STATS_CACHE_SECONDS).
AGGREGATES_SCOPE = "\x00aggregates"


class CatalogIndexKeeper:
    """State and freshness of the catalog's read side (see the module docstring).

    `flags` decides the snapshot read path (default: a reader of the flag table with the settings'
    cache TTL); `clock` is the time freshness is judged by (tests move it)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        flags: FeatureFlags | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.database = database
        self.settings = settings
        self.flags = flags or FeatureFlags(
            database, cache_ttl_ms=settings.feature_flag_cache_ttl_ms, environment=settings.feature_env
        )
        self._clock = clock
        self.links = Links.from_settings(settings)
        self.derive_settings = DeriveSettings.from_settings(settings)
        name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.rankings = RankingStore(database, settings, name)
        retention = settings.sticker_catalog_ranking_retention_seconds
        url = database.url.render_as_string(hide_password=False)
        self.cursors = CursorCodec(cursor_key(settings.sticker_catalog_cursor_secret, url), retention)
        self._cache = ReadCache(
            settings.sticker_catalog_cache_max_entries, independent_scopes=[AGGREGATES_SCOPE]
        )
        self._tail = OutboxTail(settings.sticker_catalog_outbox_gap_seconds)
        self._index: CatalogIndex | None = None
        self._index_lock = threading.RLock()  # serializes index writers; readers never take it
        self._poll_lock = threading.Lock()
        self._lifecycle_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = False
        self._latest: Generation | None = None
        self._flag_state: tuple[object, ...] | None = None  # the read flag's state the index was loaded with
        self._build_in_api = settings.sticker_catalog_ranking_build_in_api
        self._last_poll = 0.0
        self._pack_change_at: dt.datetime | None = None
        self._engagement_change_at: dt.datetime | None = None
        self._poll_seconds = settings.sticker_catalog_invalidation_poll_ms / 1000
        self._snapshot_max_age = dt.timedelta(milliseconds=settings.sticker_score_snapshot_max_age_ms)
        self._list_ttl = settings.sticker_catalog_list_cache_seconds
        # The web layer caches on data_version alone, so the version also moves at least this often:
        # that is how the TTLs bound staleness even when no event arrives.
        self._tick_seconds = float(
            min(
                settings.sticker_catalog_list_cache_seconds,
                settings.sticker_catalog_pack_payload_cache_seconds,
                settings.sticker_catalog_creator_ranking_cache_seconds,
                settings.home_marketplace_stats_cache_seconds,
                settings.marketplace_global_stats_cache_seconds,
                settings.readme_summary_cache_seconds,
                settings.sticker_sitemap_cache_seconds,
            )
        )
        self._verified = {
            fold(name).strip()
            for name in settings.sticker_creator_verified_publishers.split(",")
            if name.strip()
        }

    # --- freshness --------------------------------------------------------------------------------
    def data_version(self) -> int:
        """Grows whenever anything the catalog shows may have changed, and at least every
        min(cache TTLs) seconds. Costs an attribute read while the watcher runs."""
        if not self._running:
            self._poll_if_due()
        return self._cache.sequence + int(time.monotonic() // self._tick_seconds)

    def note_pack_changed(self, pack_id: str) -> None:
        """A change to this pack was just committed (the interaction route calls this after a like):
        reload it now rather than at the watcher's next poll."""
        self._engagement_change_at = utcnow()
        if self._index is not None:
            self._refresh_packs([str(pack_id)])
        self._cache.invalidate_packs([str(pack_id)])

    def _poll_if_due(self) -> None:
        if self._index is None or time.monotonic() - self._last_poll < self._poll_seconds:
            return
        if self._poll_lock.acquire(blocking=False):
            try:
                self._poll_locked()
            finally:
                self._poll_lock.release()

    def poll_changes(self) -> int:
        """Apply every change committed since the last poll now; returns how many events were seen."""
        with self._poll_lock:
            return self._poll_locked()

    def _poll_locked(self) -> int:
        self._last_poll = time.monotonic()
        if self._index is None:
            self._current_index()
            return 0
        with self.database.read() as connection:
            result = self._tail.poll(connection)
            latest = self.rankings.latest(connection)
            pack_ids, other_changes = self._affected_packs(connection, result.events)
        if result.overflow:
            self._reload_index()
            self._adopt_if_newer(latest)
            self._cache.invalidate_packs([AGGREGATES_SCOPE])
            return len(result.events)
        if self.flags.state(SNAPSHOT_READ_FLAG) != self._flag_state:
            self._reload_index()  # the read flag changed: every record is decided again
            self._adopt_if_newer(latest)
            return len(result.events)
        pack_ids |= set(self._expired_snapshot_records())
        if pack_ids:
            self._refresh_packs(sorted(pack_ids))
        self._adopt_if_newer(latest)
        if pack_ids or other_changes:
            self._cache.invalidate_packs([*pack_ids, *([AGGREGATES_SCOPE] if other_changes else [])])
        return len(result.events)

    def _adopt_if_newer(self, latest: Generation | None) -> bool:
        """Take up a generation another process published. The records need no reload for it:
        events keep them current and the TTL reload takes up drifting snapshot values, so only
        list bodies (their order) are dropped."""
        with self._index_lock:
            if latest is None or (self._latest is not None and latest.id <= self._latest.id):
                return False
            self._latest = latest
        self._cache.invalidate_lists()
        return True

    def _expired_snapshot_records(self) -> list[str]:
        """Records built from a snapshot that has since passed the freshness bound (they are
        rebuilt: from a newer snapshot if a refresh wrote one, live otherwise)."""
        index = self._index
        if index is None or index.oldest_snapshot is None:
            return []
        cutoff = self._clock() - self._snapshot_max_age
        if index.oldest_snapshot > cutoff:
            return []
        return index.snapshot_records_before(cutoff)

    def _affected_packs(self, connection: Any, events: Sequence[OutboxEvent]) -> tuple[set[str], bool]:
        """Pack ids the events concern, and whether any event is more than an interaction."""
        pack_ids: set[str] = set()
        asset_ids: list[str] = []
        other = False
        now = utcnow()
        for event in events:
            if event.event_type != ENGAGEMENT_RECORDED:
                other = True
            if event.aggregate_type == "sticker_pack":
                pack_ids.add(event.aggregate_id)
                if event.event_type == ENGAGEMENT_RECORDED:
                    self._engagement_change_at = now
                else:
                    self._pack_change_at = now
            elif event.event_type == STICKER_CLASSIFIED:
                asset_ids.append((event.payload or {}).get("asset_id") or event.aggregate_id)
                self._pack_change_at = now
            if event.event_type == PACK_UPDATED and event.payload and event.payload.get("pack_id"):
                pack_ids.add(str(event.payload["pack_id"]))
        if asset_ids:
            pack_ids |= repo.packs_holding_assets(connection, asset_ids)
        return pack_ids, other

    def _ranking_due(self) -> dt.timedelta | None:
        """None when no build is due; else the minimum age of the newest generation for the claim."""
        latest = self._latest
        if latest is None:
            return dt.timedelta(0)
        now = utcnow()
        age = now - (latest.finished_at or latest.started_at)
        refresh = dt.timedelta(seconds=self.settings.sticker_catalog_ranking_refresh_seconds)
        debounce = dt.timedelta(seconds=self.settings.sticker_catalog_ranking_debounce_seconds)
        if self._pack_change_at is not None and self._pack_change_at > latest.started_at and age >= debounce:
            return debounce
        changed = self._engagement_change_at is not None and self._engagement_change_at > latest.started_at
        if changed and age >= refresh:
            return refresh
        # Keep snapshots well inside their freshness bound and the age decay current.
        if age >= max(refresh, self._snapshot_max_age / 2):
            return refresh
        return None

    # --- index and generations --------------------------------------------------------------------
    def _current_index(self) -> CatalogIndex:
        index = self._index
        if index is not None and (self._running or time.monotonic() - index.built_at <= self._list_ttl):
            return index
        with self._index_lock:
            if self._index is None:
                self._initialize()
            elif not self._running and time.monotonic() - self._index.built_at > self._list_ttl:
                self._reload_index()
            assert self._index is not None
            return self._index

    def _initialize(self) -> None:
        with self._index_lock:
            with self.database.read() as connection:
                self._tail.start(connection)
                latest = self.rankings.latest(connection)
            self._last_poll = time.monotonic()
            if latest is None:
                # A fresh install (no task has run yet): build the first generation here, through
                # the same claim as every builder, so lists and cursors work from the first request.
                # Later generations come from the ranking_refresh task.
                logger.info("no ranking generation yet: building the first one in this process")
                self.refresh_rankings()
            else:
                self._latest = latest
            if self._index is None:
                self._reload_index()

    def _load(self, pack_ids: Sequence[str] | None) -> dict[str, PackRecord]:
        previous = self._index.records if self._index is not None else None
        snapshot_read = self.flags.decider(SNAPSHOT_READ_FLAG)
        with self.database.read() as connection:
            return load_records(
                connection,
                pack_ids,
                only_classified=self.settings.sticker_catalog_only_classified,
                derive_settings=self.derive_settings,
                snapshot_max_age=self._snapshot_max_age,
                now=self._clock(),
                previous=previous,
                snapshot_read=snapshot_read,
            )

    def _reload_index(self) -> None:
        with self._index_lock:
            # The state first: if the flag changes between the two readings, the next poll sees a
            # state different from the one kept and loads again.
            self._flag_state = self.flags.state(SNAPSHOT_READ_FLAG)
            self._index = CatalogIndex(self._load(None), time.monotonic())
            self._cache.invalidate_all()

    def _refresh_packs(self, pack_ids: Sequence[str]) -> None:
        with self._index_lock:
            if self._index is None:
                return
            records = self._load(list(pack_ids))
            changes: dict[str, PackRecord | None] = {pack_id: records.get(pack_id) for pack_id in pack_ids}
            self._index = self._index.replaced(changes, self._index.built_at)

    def _adopt(self, generation: Generation) -> None:
        with self._index_lock:
            if self._latest is not None and generation.id <= self._latest.id:
                return
            self._latest = generation
            self._reload_index()

    def _build_and_adopt(self, generation_id: int) -> Generation | None:
        generation = self.rankings.build(generation_id)
        if generation is not None:
            self._adopt(generation)
            self.rankings.prune()
        return generation

    def refresh_rankings(self) -> int:
        """Build a new ranking generation now and return its id. If another process is building
        one at this moment, wait for it and return that one instead."""
        deadline = time.monotonic() + self.settings.sticker_catalog_ranking_build_timeout_seconds
        while True:
            generation_id = self.rankings.claim(min_interval=None)
            if generation_id is not None:
                generation = self._build_and_adopt(generation_id)
                if generation is not None:
                    return generation.id
                continue
            builder = self.rankings.live_builder()
            while builder is not None and time.monotonic() < deadline:
                latest = self.rankings.latest()
                if latest is not None and latest.id >= builder.id:
                    self._adopt(latest)
                    return latest.id
                if self.rankings.live_builder() is None:
                    break
                time.sleep(0.05)
            if time.monotonic() >= deadline:
                raise TimeoutError("no ranking generation became ready in time; is the database reachable?")

    def _generation(self) -> Generation:
        if self._latest is None:
            self._current_index()
        if self._latest is None:
            self.refresh_rankings()
        assert self._latest is not None
        return self._latest

    def _cached(self, key: tuple[Any, ...], ttl: float, compute: Callable[[], tuple[Any, str | None]]) -> Any:
        # Load (or, without the watcher, refresh) before the cache takes its sequence number, so
        # a first body is not computed against data that is replaced a moment later.
        self._current_index()
        if not self._running:
            self._poll_if_due()
        return self._cache.get_or_compute(key, ttl, compute)
