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
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from omnizap.catalog import repository as repo
from omnizap.catalog.cache import ReadCache
from omnizap.catalog.chat_links import telegram_set
from omnizap.catalog.classification import (
    classification_facts,
    empty_facts,
    merge_tags,
    sticker_classification,
    sticker_tags,
)
from omnizap.catalog.cursor import Cursor, CursorCodec, cursor_key, invalid_cursor
from omnizap.catalog.derive import (
    SNAPSHOT_READ_FLAG,
    DeriveSettings,
    current_derivations,
    facts_from_scores,
    signals_from_scores,
)
from omnizap.catalog.index import CatalogIndex, PackRecord, load_records, query_matcher
from omnizap.catalog.params import ListQuery, parse_categories, parse_int, parse_list_query
from omnizap.catalog.rankings import Generation, RankingStore
from omnizap.catalog.shapes import Links, iso, pack_summary, with_classification
from omnizap.catalog.signals import effective_nsfw_level, nsfw_level
from omnizap.catalog.summaries import catalog_markdown
from omnizap.catalog.text import fold, manual_tags, public_description, sanitize_query
from omnizap.catalog.watcher import OutboxEvent, OutboxTail
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED, PACK_UPDATED, STICKER_CLASSIFIED

logger = logging.getLogger(__name__)

PACK_KEY_MAX = 160
INTENT_LIMIT_DEFAULT = 18
INTENT_LIMIT_MAX = 50
CREATORS_LIMIT_DEFAULT = 50
CREATORS_LIMIT_MAX = 200
README_TOP_PACKS = 5
MAINTENANCE_TICK_SECONDS = 1.0
# Scope of the marketplace's database aggregates: invalidated by pack, sticker and classification
# changes, not by every open or like (those reach them within MARKETPLACE_GLOBAL_STATS_CACHE_SECONDS).
AGGREGATES_SCOPE = "\x00aggregates"
_SCORE_SORT_KEYS = {"popular": "popular", "trending": "trending", "liked": "liked", "downloads": "downloads"}


def _by_ranking(record: PackRecord) -> tuple[float, dt.datetime, str]:
    return (record.ranking_score, record.updated_at, record.id)


class CatalogService:
    """Read side of the public catalog. `start()` runs the watcher and maintenance threads.

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

    # --- entries ----------------------------------------------------------------------------------
    def _entries(self, records: Sequence[PackRecord]) -> list[dict[str, Any]]:
        """List entries (http §2.2) for records, with signals and facts from the snapshot."""
        wanted = [record.id for record in records if record.live is None]
        scores: dict[str, Any] = {}
        if wanted:
            with self.database.read() as connection:
                rows = repo.snapshot_rows(connection, wanted, with_scores=True)
            scores = {pack_id: row.get("scores_json") for pack_id, row in rows.items()}
        entries = []
        for record in records:
            if record.live is not None:
                signals: dict[str, Any] | None = record.live.signals
                facts = record.live.facts
            else:
                signals = signals_from_scores(scores.get(record.id))
                facts = facts_from_scores(scores.get(record.id)) or empty_facts(record.sticker_count)
            summary = pack_summary(
                self.links,
                pack_id=record.id,
                pack_key=record.pack_key,
                name=record.name,
                publisher=record.publisher,
                description=record.description,
                visibility=record.visibility,
                status=record.status,
                sticker_count=record.sticker_count,
                cover_sticker_id=record.cover_sticker_id,
                created_at=record.created_at,
                updated_at=record.updated_at,
                counters={
                    "open_count": record.open_count,
                    "like_count": record.like_count,
                    "dislike_count": record.dislike_count,
                    "updated_at": record.engagement_updated_at,
                },
                signals=signals,
                manual_tags=record.manual_tags,
            )
            entries.append(
                with_classification(
                    summary, facts.summary(record.manual_tags), record.tags, record.nsfw_level
                )
            )
        return entries

    def _cached(self, key: tuple[Any, ...], ttl: float, compute: Callable[[], tuple[Any, str | None]]) -> Any:
        # Load (or, without the watcher, refresh) before the cache takes its sequence number, so
        # a first body is not computed against data that is replaced a moment later.
        self._current_index()
        if not self._running:
            self._poll_if_due()
        return self._cache.get_or_compute(key, ttl, compute)

    # --- GET /api/sticker-packs -------------------------------------------------------------------
    def list_packs(
        self,
        *,
        q: str = "",
        sort: str = "",
        categories: str | Sequence[str] = (),
        intent: str = "",
        nsfw: str = "safe",
        limit: int | str | None = None,
        offset: int | str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of listed packs: {data, pagination, filters}. With `cursor`, `offset` is ignored."""
        query = parse_list_query(
            q=q,
            sort=sort,
            categories=categories,
            intent=intent,
            nsfw=nsfw,
            limit=limit,
            offset=offset,
            default_limit=self.settings.sticker_web_list_limit,
            max_limit=self.settings.sticker_web_list_max_limit,
        )
        position = None
        if cursor:
            position = self.cursors.decode(cursor, sort=query.sort, filters=query.filters_fingerprint)
        key = (
            "list",
            query.cache_key,
            query.limit,
            query.offset if position is None else None,
            cursor or None,
        )
        return self._cached(key, self._list_ttl, lambda: (self._list(query, position), None))

    def _list(self, query: ListQuery, position: Cursor | None) -> dict[str, Any]:
        index = self._current_index()
        matches = query_matcher(query)
        wanted = query.limit + 1
        skip = query.offset if position is None else 0
        found: list[tuple[int, PackRecord]] = []
        generation_id: int | None = None
        if query.sort == "new":
            after = None if position is None else (position.created_us or 0, position.pack_id or "")
            candidates: Iterable[tuple[int, PackRecord]] = enumerate(index.newest_first_from(after), start=1)
        else:
            if position is not None:
                generation_id = position.generation
                start = position.position or 0
            else:
                generation_id, start = self._generation().id, 0
            assert generation_id is not None
            order = self.rankings.order(generation_id, _SCORE_SORT_KEYS[query.sort])
            if order is None:
                raise invalid_cursor("its ranking generation expired")
            candidates = (
                (number, index.get(order[number - 1])) for number in range(start + 1, len(order) + 1)
            )
        for number, record in candidates:
            if record is None or not matches(record):
                continue
            if skip:
                skip -= 1
                continue
            found.append((number, record))
            if len(found) == wanted:
                break
        page = found[: query.limit]
        has_more = len(found) > query.limit
        next_cursor = None
        if has_more and page:
            last_number, last = page[-1]
            issued = self.cursors.now()
            fingerprint = query.filters_fingerprint
            if query.sort == "new":
                token = Cursor(
                    query.sort, fingerprint, issued, created_us=last.created_key[0], pack_id=last.id
                )
            else:
                token = Cursor(
                    query.sort, fingerprint, issued, generation=generation_id, position=last_number
                )
            next_cursor = self.cursors.encode(token)
        by_offset = position is None
        return {
            "data": self._entries([record for _, record in page]),
            "pagination": {
                "limit": query.limit,
                "offset": query.offset if by_offset else None,
                "has_more": has_more,
                "next_offset": query.offset + len(page) if by_offset and has_more else None,
                "next_cursor": next_cursor,
            },
            "filters": {
                "q": query.q,
                "visibility": "public",
                "sort": query.sort,
                "categories": list(query.categories),
                "intent": query.intent or None,
                "nsfw": query.nsfw,
            },
        }

    # --- GET /api/sticker-packs/:packKey ----------------------------------------------------------
    def pack_detail(self, pack_key: str, categories: str | Sequence[str] = ()) -> dict[str, Any] | None:
        """PackDetails of a reachable pack (public or unlisted), None otherwise. `categories` keeps
        only the items carrying one of those tags."""
        key = sanitize_query(pack_key)[:PACK_KEY_MAX].lower()
        if not key:
            given = str(pack_key or "").strip()
            message = (
                "Invalid pack key: it holds nothing but control characters; keys look like sunny-cats-a1b2c."
                if given
                else "pack_key is required (e.g. sunny-cats-a1b2c)."
            )
            raise InvalidInput(message, details={"parameter": "pack_key"})
        wanted = parse_categories(categories)
        ttl = self.settings.sticker_catalog_pack_payload_cache_seconds
        return self._cached(("detail", key, wanted), ttl, lambda: self._detail(key, wanted))

    def _detail(self, pack_key: str, categories: tuple[str, ...]) -> tuple[dict[str, Any] | None, str | None]:
        rules = self.derive_settings.tags
        now = self._clock()
        with self.database.read() as connection:
            row = repo.reachable_pack_by_key(connection, pack_key)
            if row is None:
                return None, None
            pack_id = row["id"]
            items = repo.pack_items_with_assets(connection, pack_id)
            classifications = repo.asset_classifications(connection, [item["sticker_id"] for item in items])
            if self.settings.sticker_catalog_only_classified:
                items = [item for item in items if item["sticker_id"] in classifications]
                if not items:
                    return None, pack_id
            counters = repo.engagement_rows(connection, [pack_id]).get(pack_id) or {}
            telegram = telegram_set(connection, row["pack_key"], row["version"])
            snapshot = repo.snapshot_rows(connection, [pack_id], with_scores=True).get(pack_id)
            live = current_derivations(
                connection,
                [{**row, "sticker_count": len(items)}],
                counters={pack_id: counters},
                snapshots={pack_id: snapshot} if snapshot is not None else {},
                settings=self.derive_settings,
                now=now,
                max_age=self._snapshot_max_age,
                snapshot_read=lambda subject: self.flags.is_enabled(SNAPSHOT_READ_FLAG, subject),
            ).get(pack_id)
            if live is not None:
                signals: dict[str, Any] | None = live.signals
            else:
                signals = signals_from_scores((snapshot or {}).get("scores_json"))
        shown = []
        for item in items:
            classification_row = classifications.get(item["sticker_id"])
            item_tags = sticker_tags(classification_row, rules) if classification_row else []
            if categories and not set(categories) & set(item_tags):
                continue
            shown.append((item, classification_row, item_tags))
        facts = classification_facts(len(shown), [entry[1] for entry in shown if entry[1] is not None], rules)
        manual = manual_tags(row["description"])
        level = effective_nsfw_level(
            nsfw_level(facts, self.derive_settings.signals), bool(row["is_sensitive"])
        )
        sticker_ids = [entry[0]["sticker_id"] for entry in shown]
        cover = row["cover_sticker_id"] if row["cover_sticker_id"] in sticker_ids else None
        if cover is None and sticker_ids:
            cover = sticker_ids[0]
        details = pack_summary(
            self.links,
            pack_id=pack_id,
            pack_key=row["pack_key"],
            name=row["name"],
            publisher=row["publisher"],
            description=public_description(row["description"]),
            visibility=row["visibility"],
            status=row["status"],
            sticker_count=len(shown),
            cover_sticker_id=cover,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            counters=counters,
            signals=signals,
            manual_tags=manual,
        )
        with_classification(details, facts.summary(manual), merge_tags(facts.tags, manual), level)
        details["items"] = [self._item(row["pack_key"], *entry) for entry in shown]
        # Ways onto a phone (docs/api.md): the bot chat with `/pack send` typed, the Telegram set.
        details["whatsapp_send_url"] = (details.get("whatsapp") or {}).get("url")
        details["telegram"] = telegram
        details["telegram_url"] = telegram["url"] if telegram else None
        return details, pack_id

    def _item(
        self, pack_key: str, item: dict[str, Any], classification_row: dict[str, Any] | None, tags: list[str]
    ) -> dict[str, Any]:
        sticker_id = item["sticker_id"]
        emojis = item["emojis"] if isinstance(item["emojis"], list) else []
        classification = sticker_classification(classification_row, self.derive_settings.tags)
        asset = None
        if item.get("mimetype") is not None:
            asset = {
                "id": sticker_id,
                "mimetype": item["mimetype"] or "image/webp",
                "is_animated": bool(item["is_animated"]),
                "width": item["width"],
                "height": item["height"],
                "size_bytes": item["size_bytes"],
                "classification": classification,
            }
        return {
            "id": item["id"],
            "sticker_id": sticker_id,
            "position": int(item["position"]),
            "emojis": [str(emoji) for emoji in emojis],
            "accessibility_label": item["accessibility_label"],
            "created_at": iso(item["created_at"]),
            "asset_url": self.links.asset_url(pack_key, sticker_id),
            "preview_url": self.links.preview_url(pack_key, sticker_id),
            "tags": tags,
            "is_nsfw": bool(classification_row and classification_row.get("is_nsfw")),
            "asset": asset,
        }

    # --- GET /api/sticker-packs/intents -----------------------------------------------------------
    def intents(
        self,
        *,
        limit: int | str | None = INTENT_LIMIT_DEFAULT,
        q: str = "",
        categories: str | Sequence[str] = (),
    ) -> dict[str, Any]:
        """Home collections of safe packs (em_alta, novos, crescendo_agora, mais_curtidos, …)."""
        size = parse_int("limit", limit, default=INTENT_LIMIT_DEFAULT, low=1, high=INTENT_LIMIT_MAX)
        query = parse_list_query(
            q=q,
            sort="",
            categories=categories,
            intent="",
            nsfw="safe",
            limit=1,
            offset=0,
            default_limit=1,
            max_limit=1,
        )
        key = ("intents", query.folded_q, tuple(sorted(query.categories)), size)
        return self._cached(key, self._list_ttl, lambda: (self._intents(query, size), None))

    def _intents(self, query: ListQuery, size: int) -> dict[str, Any]:
        index = self._current_index()
        matches = query_matcher(query)
        pool = [record for record in index.records.values() if matches(record)]
        lists = {
            "em_alta": heapq.nlargest(size, pool, key=_by_ranking),
            "novos": heapq.nlargest(size, pool, key=lambda record: record.created_key),
            "crescendo_agora": heapq.nlargest(
                size,
                (record for record in pool if record.trending_now),
                key=lambda record: (record.trend_score, *_by_ranking(record)),
            ),
            "mais_curtidos": heapq.nlargest(
                size,
                (record for record in pool if record.like_count > 0),
                key=lambda record: (record.like_count, *_by_ranking(record)),
            ),
            "melhor_avaliados": heapq.nlargest(
                size,
                (record for record in pool if record.like_count > record.dislike_count),
                key=lambda record: (
                    record.like_count - record.dislike_count,
                    record.like_count,
                    *_by_ranking(record),
                ),
            ),
        }
        unique = list({record.id: record for records in lists.values() for record in records}.values())
        entries = dict(zip([record.id for record in unique], self._entries(unique), strict=True))
        return {
            "data": {name: [entries[record.id] for record in records] for name, records in lists.items()},
            "filters": {
                "visibility": "public",
                "q": query.q,
                "categories": list(query.categories),
                "limit": size,
                "nsfw": "safe",
            },
        }

    # --- GET /api/sticker-packs/creators ----------------------------------------------------------
    def creators(self, *, q: str = "", limit: int | str | None = CREATORS_LIMIT_DEFAULT) -> dict[str, Any]:
        """Publishers of listed packs by creator_score (http §3); `q` filters publisher names."""
        size = parse_int("limit", limit, default=CREATORS_LIMIT_DEFAULT, low=1, high=CREATORS_LIMIT_MAX)
        text = sanitize_query(q)
        ttl = self.settings.sticker_catalog_creator_ranking_cache_seconds
        return self._cached(("creators", fold(text), size), ttl, lambda: (self._creators(text, size), None))

    def _creators(self, text: str, size: int) -> dict[str, Any]:
        index = self._current_index()
        needle = fold(text)
        groups: dict[str, list[PackRecord]] = {}
        for record in index.records.values():
            if not needle or needle in record.publisher_key:
                groups.setdefault(record.publisher_key, []).append(record)
        ranked = []
        for publisher_key, records in groups.items():
            likes = sum(record.like_count for record in records)
            opens = sum(record.open_count for record in records)
            average = sum(record.pack_score for record in records) / len(records)
            score = round(average * 0.45 + likes * 0.0008 + opens * 0.00015, 6)
            best = max(records, key=_by_ranking)
            safe = [record for record in records if record.nsfw_level == "safe"]
            top = max(safe, key=_by_ranking) if safe else None
            ranked.append((score, len(records), publisher_key, best.publisher, likes, opens, average, top))
        ranked.sort(key=lambda entry: (-entry[0], -entry[1], entry[2]))
        chosen = ranked[:size]
        tops = [entry[7] for entry in chosen if entry[7] is not None]
        top_entries = dict(zip([record.id for record in tops], self._entries(tops), strict=True))
        data = []
        for score, count, publisher_key, publisher, likes, opens, average, top in chosen:
            verified = publisher_key in self._verified
            data.append(
                {
                    "creator_score": score,
                    "publisher": publisher,
                    "verified": verified,
                    "badges": ["verified_creator"] if verified else [],
                    "stats": {
                        "packs_count": count,
                        "total_likes": likes,
                        "total_opens": opens,
                        "avg_pack_score": round(average, 6),
                    },
                    "top_pack": top_entries.get(top.id) if top is not None else None,
                }
            )
        return {"data": data, "filters": {"visibility": "public", "q": text, "limit": size}}

    # --- stats ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """GET /api/sticker-packs/stats over listed packs."""
        ttl = self.settings.home_marketplace_stats_cache_seconds

        def compute() -> tuple[dict[str, Any], None]:
            totals = self._current_index().totals
            body = {
                "data": {
                    "packs_total": totals["packs"],
                    "stickers_total": totals["stickers"],
                    "creators_total": totals["creators"],
                    "downloads_total": totals["opens"],
                },
                "filters": {"visibility": "public"},
                "meta": {"cache_seconds": ttl},
            }
            return body, None

        return self._cached(("stats",), ttl, compute)

    def marketplace_stats(self) -> dict[str, Any]:
        """GET /api/marketplace/stats: flat totals and a 7-day UTC series, listed packs only."""
        ttl = self.settings.marketplace_global_stats_cache_seconds
        return self._cached(("marketplace",), ttl, lambda: (self._marketplace(ttl), None))

    def _marketplace(self, ttl: int) -> dict[str, Any]:
        index = self._current_index()
        now = utcnow()
        today = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
        day_starts = [today - dt.timedelta(days=offset) for offset in range(6, -1, -1)]
        sticker_total, stickers_per_day, orphans, interactions = self._cache.get_or_compute(
            ("marketplace-aggregates", today), ttl, lambda: (self._aggregates(day_starts), AGGREGATES_SCOPE)
        )
        packs_per_day = [0] * len(day_starts)
        for record in index.records.values():
            if record.created_at >= day_starts[0]:
                packs_per_day[min(6, (record.created_at - day_starts[0]).days)] += 1
        series = [
            {
                "date": start.date().isoformat(),
                "packs_published": packs_per_day[number],
                "stickers_created": stickers_per_day[number],
                "clicks": interactions[number][0],
                "likes": interactions[number][1],
            }
            for number, start in enumerate(day_starts)
        ]
        totals = index.totals
        return {
            "total_packs": totals["packs"],
            "total_stickers": sticker_total,
            "total_clicks": totals["opens"],
            "total_likes": totals["likes"],
            "packs_last_7_days": sum(packs_per_day),
            "stickers_without_pack": orphans,
            "creators_total": totals["creators"],
            "clicks_last_7_days": sum(day["clicks"] for day in series),
            "likes_last_7_days": sum(day["likes"] for day in series),
            "series_last_7_days": series,
            "updated_at": iso(now),
            "cache_seconds": ttl,
        }

    def _aggregates(self, day_starts: list[dt.datetime]) -> tuple[int, list[int], int, list[tuple[int, int]]]:
        with self.database.read() as connection:
            sticker_total, stickers_per_day = repo.listed_sticker_totals(connection, day_starts)
            orphans = repo.stickers_without_pack(connection)
            interactions = repo.listed_interactions_per_day(connection, day_starts)
        return sticker_total, stickers_per_day, orphans, interactions

    # --- readme -----------------------------------------------------------------------------------
    def readme_summary(self) -> dict[str, Any]:
        """{data: {generated_at, cache_seconds, totals, top_packs, markdown}} about the listed catalog."""
        ttl = self.settings.readme_summary_cache_seconds
        return self._cached(("readme",), ttl, lambda: (self._readme(ttl), None))

    def readme_markdown(self) -> str:
        return str(self.readme_summary()["data"]["markdown"])

    def _readme(self, ttl: int) -> dict[str, Any]:
        index = self._current_index()
        totals = index.totals
        summary_totals = {
            "total_packs": totals["packs"],
            "total_stickers": totals["stickers"],
            "total_creators": totals["creators"],
            "total_downloads": totals["opens"],
            "total_likes": totals["likes"],
        }
        safe = (record for record in index.records.values() if record.nsfw_level == "safe")
        top = heapq.nlargest(README_TOP_PACKS, safe, key=_by_ranking)
        top_packs = [
            {
                "pack_key": record.pack_key,
                "name": record.name,
                "publisher": record.publisher,
                "sticker_count": record.sticker_count,
                "like_count": record.like_count,
                "open_count": record.open_count,
                "web_url": self.links.web_url(record.pack_key),
            }
            for record in top
        ]
        now = utcnow()
        markdown = catalog_markdown(
            generated_at=now,
            cache_seconds=ttl,
            totals=summary_totals,
            top_packs=top_packs,
            origin=self.settings.site_origin,
        )
        return {
            "data": {
                "generated_at": iso(now),
                "cache_seconds": ttl,
                "totals": summary_totals,
                "top_packs": top_packs,
                "markdown": markdown,
            }
        }

    # --- sitemap ----------------------------------------------------------------------------------
    def sitemap_entries(self) -> list[tuple[str, dt.datetime]]:
        """(pack_key, updated_at) of listed packs, most recently updated first, at most
        STICKER_SITEMAP_MAX_PACKS. Unlisted packs are never included."""
        ttl = self.settings.sticker_sitemap_cache_seconds

        def compute() -> tuple[list[tuple[str, dt.datetime]], None]:
            records = self._current_index().by_updated[: self.settings.sticker_sitemap_max_packs]
            return [(record.pack_key, record.updated_at) for record in records], None

        return list(self._cached(("sitemap",), ttl, compute))
