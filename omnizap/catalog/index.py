"""The listed catalog in memory: one compact record per listed pack, with what filters need.

Each API process keeps one `CatalogIndex`. It is immutable: a change builds a new index that shares
the unchanged records, and readers keep using the one they picked up, so no read sees half an
update. Signals come from the score snapshot when the read flag allows it for the pack and the
snapshot is fresh (computed after the pack's last change, edit or interaction, younger than
STICKER_SCORE_SNAPSHOT_MAX_AGE_MS, same formula version); otherwise they are computed live.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from omnizap.catalog import repository as repo
from omnizap.catalog.classification import merge_tags
from omnizap.catalog.derive import DeriveSettings, PackDerivation, current_derivations
from omnizap.catalog.params import ListQuery
from omnizap.catalog.signals import TRENDING_THRESHOLD, classify_intent, effective_nsfw_level
from omnizap.catalog.text import fold, manual_tags, public_description, search_text

NSFW_RANK = {"safe": 0, "suggestive": 1, "explicit": 2}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def microseconds(value: dt.datetime) -> int:
    """Exact microseconds since the epoch (a float timestamp could be off by one)."""
    return (value - EPOCH) // dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class PackRecord:
    id: str
    pack_key: str
    name: str
    publisher: str
    description: str | None  # public (markers removed)
    manual_tags: tuple[str, ...]
    visibility: str
    status: str
    is_sensitive: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    sticker_count: int
    cover_sticker_id: str | None
    open_count: int
    like_count: int
    dislike_count: int
    engagement_updated_at: dt.datetime | None
    tags: tuple[str, ...]
    tag_set: frozenset[str]
    nsfw_level: str
    nsfw_rank: int
    pack_score: float
    trend_score: float
    ranking_score: float
    trending_now: bool
    intent: str
    search: str
    publisher_key: str
    created_key: tuple[int, str]
    live: PackDerivation | None  # set when the snapshot could not be trusted (or may not be read)
    snapshot_refreshed_at: dt.datetime | None  # when the snapshot the signals came from was computed
    source: tuple[Any, ...]  # what the record was built from; equal source, equal record


def always(_subject: str) -> bool:
    return True


def _source(
    row: Mapping[str, Any], counters: Mapping[str, Any] | None, snapshot: Mapping[str, Any] | None
) -> tuple[Any, ...]:
    counts = counters or {}
    return (
        tuple(row.values()),
        counts.get("open_count"),
        counts.get("like_count"),
        counts.get("dislike_count"),
        counts.get("updated_at"),
        None if snapshot is None else snapshot.get("refreshed_at"),
    )


def _record(
    row: Mapping[str, Any],
    counters: Mapping[str, Any] | None,
    snapshot: Mapping[str, Any] | None,
    live: PackDerivation | None,
) -> PackRecord:
    manual = tuple(manual_tags(row["description"]))
    description = public_description(row["description"])
    is_sensitive = bool(row["is_sensitive"])
    snapshot_time: dt.datetime | None = None
    if live is not None:
        snapshot_time = live.rescored_from  # a rescore still leans on its snapshot: it expires too
        signals = live.signals
        tags = live.tags
        level = live.nsfw_level
        pack_score, trend, ranking = signals["pack_score"], signals["trend_score"], signals["ranking_score"]
        counters = {
            "open_count": live.open_count,
            "like_count": live.like_count,
            "dislike_count": live.dislike_count,
        }
    else:
        assert snapshot is not None
        snapshot_tags = snapshot.get("tags") if isinstance(snapshot.get("tags"), list) else []
        tags = tuple(merge_tags([str(tag) for tag in snapshot_tags], manual))
        level = effective_nsfw_level(str(snapshot.get("nsfw_level") or "safe"), is_sensitive)
        pack_score = float(snapshot["pack_score"])
        trend = float(snapshot["trend_score"])
        ranking = float(snapshot["ranking_score"])
        snapshot_time = snapshot["refreshed_at"]
    source = _source(row, counters, snapshot)
    counters = counters or {}
    likes = int(counters.get("like_count") or 0)
    trending = trend >= TRENDING_THRESHOLD
    return PackRecord(
        id=row["id"],
        pack_key=row["pack_key"],
        name=row["name"],
        publisher=row["publisher"],
        description=description,
        manual_tags=manual,
        visibility=row["visibility"],
        status=row["status"],
        is_sensitive=is_sensitive,
        version=int(row["version"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sticker_count=int(row["sticker_count"]),
        cover_sticker_id=row["cover_sticker_id"],
        open_count=int(counters.get("open_count") or 0),
        like_count=likes,
        dislike_count=int(counters.get("dislike_count") or 0),
        engagement_updated_at=counters.get("updated_at"),
        tags=tags,
        tag_set=frozenset(tags),
        nsfw_level=level,
        nsfw_rank=NSFW_RANK.get(level, 2),
        pack_score=pack_score,
        trend_score=trend,
        ranking_score=ranking,
        trending_now=trending,
        intent=classify_intent(trending, pack_score, likes),
        search=search_text(
            row["name"], row["publisher"], row["description"], row["pack_key"], " ".join(tags)
        ),
        publisher_key=fold(row["publisher"]).strip(),
        created_key=(microseconds(row["created_at"]), row["id"]),
        live=live,
        snapshot_refreshed_at=snapshot_time,
        source=source,
    )


def load_records(
    connection: Connection,
    pack_ids: Sequence[str] | None,
    *,
    only_classified: bool,
    derive_settings: DeriveSettings,
    snapshot_max_age: dt.timedelta,
    now: dt.datetime,
    previous: Mapping[str, PackRecord] | None = None,
    snapshot_read: Callable[[str], bool] = always,
) -> dict[str, PackRecord]:
    """Records of the listed packs among `pack_ids` (None: all of them), in a handful of queries.

    `snapshot_read(pack_id)` says whether that pack's snapshot may be read at all (the
    `enable_ranking_snapshot_read` flag); `derive.current_derivations` decides which packs read
    theirs as is and which get live signals. A record of `previous` built from the same rows and a
    still fresh snapshot is reused as is.
    """
    rows = repo.catalog_pack_rows(connection, pack_ids, listed_only=True, only_classified=only_classified)
    if not rows:
        return {}
    ids = None if pack_ids is None else [row["id"] for row in rows]
    counters = repo.engagement_rows(connection, ids)
    snapshots = repo.snapshot_rows(connection, ids, with_scores=False)
    live = current_derivations(
        connection,
        rows,
        counters=counters,
        snapshots=snapshots,
        settings=derive_settings,
        now=now,
        max_age=snapshot_max_age,
        snapshot_read=snapshot_read,
    )
    records: dict[str, PackRecord] = {}
    for row in rows:
        pack_id = row["id"]
        known = previous.get(pack_id) if previous is not None and pack_id not in live else None
        source = _source(row, counters.get(pack_id), snapshots.get(pack_id))
        if known is not None and known.live is None and known.source == source:
            records[pack_id] = known
            continue
        records[pack_id] = _record(row, counters.get(pack_id), snapshots.get(pack_id), live.get(pack_id))
    return records


def query_matcher(query: ListQuery) -> Callable[[PackRecord], bool]:
    """The list filters as one predicate: NSFW ceiling, search text, categories (any), intent."""
    ceiling = NSFW_RANK[query.nsfw]
    needle = query.folded_q
    categories = frozenset(query.categories)
    intent = query.intent

    def matches(record: PackRecord) -> bool:
        if record.nsfw_rank > ceiling:
            return False
        if needle and needle not in record.search:
            return False
        if categories and categories.isdisjoint(record.tag_set):
            return False
        return not intent or record.intent == intent

    return matches


class CatalogIndex:
    """Immutable set of listed-pack records plus the orders derived from it (computed on first use)."""

    def __init__(self, records: dict[str, PackRecord], built_at: float) -> None:
        self.records = records
        self.built_at = built_at

    def get(self, pack_id: str) -> PackRecord | None:
        return self.records.get(pack_id)

    def __len__(self) -> int:
        return len(self.records)

    def replaced(self, changes: Mapping[str, PackRecord | None], built_at: float) -> CatalogIndex:
        """A new index where `changes` replace (record) or remove (None) the given packs."""
        records = dict(self.records)
        for pack_id, record in changes.items():
            if record is None:
                records.pop(pack_id, None)
            else:
                records[pack_id] = record
        return CatalogIndex(records, built_at)

    @functools.cached_property
    def by_created(self) -> list[PackRecord]:
        """Oldest first by (created_at, id); `new` pages walk it backwards."""
        return sorted(self.records.values(), key=lambda record: record.created_key)

    @functools.cached_property
    def created_keys(self) -> list[tuple[int, str]]:
        return [record.created_key for record in self.by_created]

    def newest_first_from(self, after: tuple[int, str] | None) -> Sequence[PackRecord]:
        """Packs newer-first, starting just after the keyset position `after` (or at the newest)."""
        records = self.by_created
        end = len(records) if after is None else bisect.bisect_left(self.created_keys, after)
        return _Reversed(records, end)

    @functools.cached_property
    def oldest_snapshot(self) -> dt.datetime | None:
        """The earliest computation time among the snapshots records were built from: when it passes
        the freshness bound, those records must be rebuilt (live, or from a newer snapshot)."""
        times = [record.snapshot_refreshed_at for record in self.records.values()]
        return min((time for time in times if time is not None), default=None)

    def snapshot_records_before(self, cutoff: dt.datetime) -> list[str]:
        """Pack ids whose signals come from a snapshot computed at or before `cutoff`."""
        return [
            record.id
            for record in self.records.values()
            if record.snapshot_refreshed_at is not None and record.snapshot_refreshed_at <= cutoff
        ]

    @functools.cached_property
    def by_updated(self) -> list[PackRecord]:
        return sorted(self.records.values(), key=lambda record: (record.updated_at, record.id), reverse=True)

    @functools.cached_property
    def totals(self) -> dict[str, int]:
        records = self.records.values()
        return {
            "packs": len(self.records),
            "stickers": sum(record.sticker_count for record in records),
            "creators": len({record.publisher_key for record in records}),
            "opens": sum(record.open_count for record in records),
            "likes": sum(record.like_count for record in records),
            "dislikes": sum(record.dislike_count for record in records),
        }


class _Reversed(Sequence[PackRecord]):
    """records[end-1], records[end-2], … without copying."""

    def __init__(self, records: list[PackRecord], end: int) -> None:
        self._records = records
        self._end = end

    def __len__(self) -> int:
        return self._end

    def __getitem__(self, index: int) -> PackRecord:  # type: ignore[override]
        if not 0 <= index < self._end:
            raise IndexError(index)
        return self._records[self._end - 1 - index]
