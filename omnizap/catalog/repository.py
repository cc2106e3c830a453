"""Set-based reads of the catalog: every function loads many packs in a few statements.

`pack_ids=None` means every pack the condition admits; a list restricts the read to those packs (in
batches that stay under every engine's parameter limit). Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from omnizap.catalog.visibility import listed_condition, reachable_condition
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_asset_classification,
    sticker_pack,
    sticker_pack_engagement,
    sticker_pack_interaction_event,
    sticker_pack_item,
    sticker_pack_score_snapshot,
)

ID_BATCH = 500
pack = sticker_pack
item = sticker_pack_item
asset = sticker_asset
classification = sticker_asset_classification
engagement = sticker_pack_engagement
snapshot = sticker_pack_score_snapshot
events = sticker_pack_interaction_event


class FastUtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Reads a UtcDateTime column in bulk reads: `datetime.fromisoformat` on SQLite's text (several
    times cheaper than the generic parser), the driver's datetime elsewhere; aware UTC either way."""

    impl = sa.String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)


def fast_time(column: Any) -> ColumnElement[Any]:
    return sa.type_coerce(column, FastUtcDateTime()).label(column.name)


# Every classification column except the embedding (binary, large, never shown).
CLASSIFICATION_COLUMNS = [column for column in classification.c if column.name != "embedding"]


def batches(ids: Sequence[str] | None) -> Iterator[list[str] | None]:
    """None once (no restriction), else the ids in chunks; nothing for an empty list."""
    if ids is None:
        yield None
        return
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), ID_BATCH):
        yield unique[start : start + ID_BATCH]


def _restricted(query: sa.Select[Any], column: Any, chunk: list[str] | None) -> sa.Select[Any]:
    return query if chunk is None else query.where(column.in_(chunk))


def has_classified_item(pack_table: sa.Table = pack) -> ColumnElement[bool]:
    """EXISTS: at least one of the pack's stickers is classified."""
    return sa.exists(
        sa.select(1)
        .select_from(item.join(classification, classification.c.asset_id == item.c.sticker_id))
        .where(item.c.pack_id == pack_table.c.id)
    )


def _item_count() -> ColumnElement[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(item)
        .where(item.c.pack_id == pack.c.id)
        .scalar_subquery()
        .label("sticker_count")
    )


def _first_sticker() -> ColumnElement[Any]:
    return (
        sa.select(item.c.sticker_id)
        .where(item.c.pack_id == pack.c.id)
        .order_by(item.c.position)
        .limit(1)
        .scalar_subquery()
    )


PACK_COLUMNS = (
    pack.c.id,
    pack.c.pack_key,
    pack.c.name,
    pack.c.publisher,
    pack.c.description,
    pack.c.visibility,
    pack.c.status,
    pack.c.is_sensitive,
    pack.c.version,
    fast_time(pack.c.created_at),
    fast_time(pack.c.updated_at),
)


def catalog_pack_rows(
    connection: Connection,
    pack_ids: Sequence[str] | None,
    *,
    listed_only: bool,
    only_classified: bool,
) -> list[dict[str, Any]]:
    """Non-empty packs that are listed (or merely reachable), with sticker count and cover.

    `cover_sticker_id` falls back to the first item when the pack has no cover of its own.
    """
    condition = listed_condition() if listed_only else reachable_condition()
    # CASE, not COALESCE: SQLite evaluates CASE lazily, so the first item is looked up only when
    # the pack has no cover of its own.
    cover = sa.case(
        (pack.c.cover_sticker_id.is_(None), _first_sticker()), else_=pack.c.cover_sticker_id
    ).label("cover_sticker_id")
    has_items = sa.exists(sa.select(1).where(item.c.pack_id == pack.c.id))
    query = sa.select(*PACK_COLUMNS, _item_count(), cover).where(condition, has_items)
    if only_classified:
        query = query.where(has_classified_item())
    rows: list[dict[str, Any]] = []
    for chunk in batches(pack_ids):
        statement = _restricted(query, pack.c.id, chunk)
        rows.extend(dict(row) for row in connection.execute(statement).mappings())
    return rows


def classified_pack_ids(connection: Connection, pack_ids: Sequence[str] | None) -> set[str]:
    query = (
        sa.select(item.c.pack_id)
        .select_from(item.join(classification, classification.c.asset_id == item.c.sticker_id))
        .distinct()
    )
    found: set[str] = set()
    for chunk in batches(pack_ids):
        found.update(row[0] for row in connection.execute(_restricted(query, item.c.pack_id, chunk)))
    return found


def engagement_rows(connection: Connection, pack_ids: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    query = sa.select(
        engagement.c.pack_id,
        engagement.c.open_count,
        engagement.c.like_count,
        engagement.c.dislike_count,
        fast_time(engagement.c.updated_at),
    )
    found: dict[str, dict[str, Any]] = {}
    for chunk in batches(pack_ids):
        for pack_id, opens, likes, dislikes, updated in connection.execute(
            _restricted(query, engagement.c.pack_id, chunk)
        ):
            found[pack_id] = {
                "open_count": opens,
                "like_count": likes,
                "dislike_count": dislikes,
                "updated_at": updated,
            }
    return found


SNAPSHOT_INDEX_COLUMNS = (
    snapshot.c.pack_id,
    snapshot.c.ranking_score,
    snapshot.c.pack_score,
    snapshot.c.trend_score,
    snapshot.c.nsfw_level,
    snapshot.c.tags,
    snapshot.c.source_version,
    fast_time(snapshot.c.refreshed_at),
)


def snapshot_rows(
    connection: Connection, pack_ids: Sequence[str] | None, *, with_scores: bool
) -> dict[str, dict[str, Any]]:
    columns = (*SNAPSHOT_INDEX_COLUMNS, snapshot.c.scores_json) if with_scores else SNAPSHOT_INDEX_COLUMNS
    query = sa.select(*columns)
    found: dict[str, dict[str, Any]] = {}
    for chunk in batches(pack_ids):
        for row in connection.execute(_restricted(query, snapshot.c.pack_id, chunk)).mappings():
            found[row["pack_id"]] = dict(row)
    return found


def snapshot_times(connection: Connection, pack_ids: Sequence[str] | None) -> dict[str, dt.datetime]:
    """refreshed_at of the snapshot rows present."""
    query = sa.select(snapshot.c.pack_id, fast_time(snapshot.c.refreshed_at))
    found: dict[str, dt.datetime] = {}
    for chunk in batches(pack_ids):
        found.update(
            (pack_id, refreshed)
            for pack_id, refreshed in connection.execute(_restricted(query, snapshot.c.pack_id, chunk))
        )
    return found


def stale_snapshot(*, stale_before: dt.datetime, source_version: str) -> ColumnElement[bool]:
    """SQL condition over pack ⟕ snapshot ⟕ engagement: the pack's snapshot cannot be read, being
    missing, of another formula version, computed before the pack's last edit or interaction, or
    at/before `stale_before` (the freshness bound). The rule of `derive.snapshot_is_fresh`."""
    return sa.or_(
        snapshot.c.pack_id.is_(None),
        snapshot.c.source_version != source_version,
        snapshot.c.refreshed_at < pack.c.updated_at,
        sa.and_(engagement.c.updated_at.is_not(None), snapshot.c.refreshed_at < engagement.c.updated_at),
        snapshot.c.refreshed_at <= stale_before,
    )


def _with_snapshot_and_engagement() -> Any:
    return pack.outerjoin(snapshot, snapshot.c.pack_id == pack.c.id).outerjoin(
        engagement, engagement.c.pack_id == pack.c.id
    )


def snapshot_pending_count(connection: Connection, *, stale_before: dt.datetime, source_version: str) -> int:
    """Reachable, non-empty packs whose snapshot cannot be read (`stale_snapshot`)."""
    has_items = sa.exists(sa.select(1).where(item.c.pack_id == pack.c.id))
    query = (
        sa.select(sa.func.count())
        .select_from(_with_snapshot_and_engagement())
        .where(
            reachable_condition(),
            has_items,
            stale_snapshot(stale_before=stale_before, source_version=source_version),
        )
    )
    return int(connection.execute(query).scalar_one())


OrderRow = tuple[str, dt.datetime, float | None, float | None, int, int, int]


def order_rows(
    connection: Connection, *, only_classified: bool, stale_before: dt.datetime, source_version: str
) -> list[OrderRow]:
    """Every listed pack with what a ranking order needs and its snapshot holds, as plain tuples:
    (id, updated_at, ranking score, trend score, likes, opens, 1 if the snapshot is stale else 0).
    One joined read, so a targeted refresh does not load whole snapshot rows to rank 10,000 packs."""
    has_items = sa.exists(sa.select(1).where(item.c.pack_id == pack.c.id))
    stale = stale_snapshot(stale_before=stale_before, source_version=source_version)
    query = (
        sa.select(
            pack.c.id,
            fast_time(pack.c.updated_at),
            snapshot.c.ranking_score,
            snapshot.c.trend_score,
            sa.func.coalesce(engagement.c.like_count, 0),
            sa.func.coalesce(engagement.c.open_count, 0),
            sa.case((stale, 1), else_=0),
        )
        .select_from(_with_snapshot_and_engagement())
        .where(listed_condition(), has_items)
    )
    if only_classified:
        query = query.where(has_classified_item())
    return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def quality_bases(connection: Connection, pack_ids: Sequence[str] | None) -> dict[str, float]:
    """Mean per-item quality from sticker size (pipeline §4.1): area and byte scores, in SQL."""
    area_ratio = (asset.c.width * asset.c.height) / 262144.0
    area_score = sa.case(
        (
            sa.and_(asset.c.width > 0, asset.c.height > 0),
            sa.case((area_ratio < 0.2, 0.2), (area_ratio > 1, 1.0), else_=area_ratio),
        ),
        else_=0.45,
    )
    size_ratio = asset.c.size_bytes / 18432.0
    size_score = sa.case(
        (asset.c.size_bytes > 0, sa.case((size_ratio < 0.25, 0.25), (size_ratio > 1, 1.0), else_=size_ratio)),
        else_=0.5,
    )
    query = (
        sa.select(item.c.pack_id, sa.func.avg(0.65 * area_score + 0.35 * size_score))
        .select_from(item.join(asset, asset.c.id == item.c.sticker_id))
        .group_by(item.c.pack_id)
    )
    found: dict[str, float] = {}
    for chunk in batches(pack_ids):
        for pack_id, value in connection.execute(_restricted(query, item.c.pack_id, chunk)):
            found[pack_id] = float(value) if value is not None else 0.0
    return found


def classification_stamps(connection: Connection, pack_ids: Sequence[str] | None) -> dict[str, str]:
    """Per pack, "<classified items>:<newest classification change>": equal stamps, equal facts."""
    query = (
        sa.select(item.c.pack_id, sa.func.count(), sa.func.max(classification.c.updated_at))
        .select_from(item.join(classification, classification.c.asset_id == item.c.sticker_id))
        .group_by(item.c.pack_id)
    )
    found: dict[str, str] = {}
    for chunk in batches(pack_ids):
        for pack_id, count, newest in connection.execute(_restricted(query, item.c.pack_id, chunk)):
            stamp = newest.isoformat() if hasattr(newest, "isoformat") else str(newest)
            found[pack_id] = f"{int(count)}:{stamp}"
    return found


def item_classifications(connection: Connection, pack_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The classification rows of each pack's items, in item order."""
    query = (
        sa.select(item.c.pack_id, *CLASSIFICATION_COLUMNS)
        .select_from(item.join(classification, classification.c.asset_id == item.c.sticker_id))
        .order_by(item.c.pack_id, item.c.position)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for chunk in batches(pack_ids):
        for row in connection.execute(_restricted(query, item.c.pack_id, chunk)).mappings():
            found.setdefault(row["pack_id"], []).append(dict(row))
    return found


def interaction_windows(
    connection: Connection, pack_ids: Sequence[str] | None, now: dt.datetime, *, horizon_hours: int = 24
) -> dict[str, tuple[int, int]]:
    """Per pack (opens in the last 24 h, opens in the last 7 days), from interaction events."""
    horizon = now - dt.timedelta(hours=horizon_hours)
    baseline = now - dt.timedelta(days=7)
    query = (
        sa.select(
            events.c.pack_id,
            sa.func.sum(sa.case((events.c.created_at >= horizon, 1), else_=0)),
            sa.func.count(),
        )
        .where(events.c.interaction == "open", events.c.created_at >= baseline)
        .group_by(events.c.pack_id)
    )
    found: dict[str, tuple[int, int]] = {}
    for chunk in batches(pack_ids):
        for pack_id, recent, week in connection.execute(_restricted(query, events.c.pack_id, chunk)):
            found[pack_id] = (int(recent or 0), int(week or 0))
    return found


def category_counts(connection: Connection, now: dt.datetime) -> tuple[dict[str, int], dict[str, int]]:
    """Classification categories changed in the last 7 days and in the last 30 days (drift inputs)."""
    recent_since = now - dt.timedelta(days=7)
    query = (
        sa.select(
            classification.c.category,
            sa.func.sum(sa.case((classification.c.updated_at >= recent_since, 1), else_=0)),
            sa.func.count(),
        )
        .where(
            classification.c.updated_at >= now - dt.timedelta(days=30), classification.c.category.is_not(None)
        )
        .group_by(classification.c.category)
    )
    recent: dict[str, int] = {}
    baseline: dict[str, int] = {}
    for category, recent_count, total in connection.execute(query):
        recent[str(category)] = int(recent_count or 0)
        baseline[str(category)] = int(total or 0)
    return recent, baseline


def packs_holding_assets(connection: Connection, asset_ids: Sequence[str]) -> set[str]:
    query = sa.select(item.c.pack_id).distinct()
    found: set[str] = set()
    for chunk in batches(asset_ids):
        if chunk:
            found.update(row[0] for row in connection.execute(query.where(item.c.sticker_id.in_(chunk))))
    return found


def reachable_pack_by_key(connection: Connection, pack_key: str) -> dict[str, Any] | None:
    query = sa.select(*PACK_COLUMNS, pack.c.cover_sticker_id).where(
        pack.c.pack_key == pack_key, reachable_condition()
    )
    row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def pack_items_with_assets(connection: Connection, pack_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(
            item.c.id,
            item.c.sticker_id,
            item.c.position,
            item.c.emojis,
            item.c.accessibility_label,
            item.c.created_at,
            asset.c.mimetype,
            asset.c.is_animated,
            asset.c.width,
            asset.c.height,
            asset.c.size_bytes,
        )
        .select_from(item.outerjoin(asset, asset.c.id == item.c.sticker_id))
        .where(item.c.pack_id == pack_id)
        .order_by(item.c.position, item.c.id)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def asset_classifications(connection: Connection, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    query = sa.select(*CLASSIFICATION_COLUMNS)
    found: dict[str, dict[str, Any]] = {}
    for chunk in batches(asset_ids):
        if chunk:
            statement = query.where(classification.c.asset_id.in_(chunk))
            for row in connection.execute(statement).mappings():
                found[row["asset_id"]] = dict(row)
    return found


def _day_number(column: Any, day_starts: Sequence[dt.datetime]) -> ColumnElement[Any]:
    """0..len-1: which of the consecutive days starting at `day_starts` the time falls in; -1 before."""
    whens = [(column >= start, number) for number, start in reversed(list(enumerate(day_starts)))]
    return sa.case(*whens, else_=-1)


def listed_sticker_totals(connection: Connection, day_starts: Sequence[dt.datetime]) -> tuple[int, list[int]]:
    """Distinct stickers in listed packs, and how many of them were created on each UTC day."""
    in_listed_pack = asset.c.id.in_(
        sa.select(item.c.sticker_id)
        .select_from(item.join(pack, pack.c.id == item.c.pack_id))
        .where(listed_condition())
    )
    day = _day_number(asset.c.created_at, day_starts).label("day")  # -1: before the first day
    query = sa.select(day, sa.func.count()).where(in_listed_pack).group_by(day)
    total = 0
    per_day = [0] * len(day_starts)
    for number, count in connection.execute(query):
        total += int(count)
        if 0 <= int(number) < len(per_day):
            per_day[int(number)] = int(count)
    return total, per_day


def stickers_without_pack(connection: Connection) -> int:
    """Shareable stickers in no pack (curation's pool). Stickers never in a public or unlisted pack
    are not counted: they are their owners' private business."""
    in_a_pack = sa.exists(sa.select(1).where(item.c.sticker_id == asset.c.id))
    query = sa.select(sa.func.count()).select_from(asset).where(~in_a_pack, asset.c.shared_at.is_not(None))
    return int(connection.execute(query).scalar_one())


def listed_interactions_per_day(
    connection: Connection, day_starts: Sequence[dt.datetime]
) -> list[tuple[int, int]]:
    """(opens, likes) of listed packs on each UTC day, from interaction events."""
    day = _day_number(events.c.created_at, day_starts).label("day")
    query = (
        sa.select(day, events.c.interaction, sa.func.count())
        .select_from(events.join(pack, pack.c.id == events.c.pack_id))
        .where(
            events.c.created_at >= day_starts[0],
            events.c.interaction.in_(("open", "like")),
            listed_condition(),
        )
        .group_by(day, events.c.interaction)
    )
    counts = [[0, 0] for _ in day_starts]
    for number, interaction, count in connection.execute(query):
        if 0 <= int(number) < len(counts):
            counts[int(number)][0 if interaction == "open" else 1] = int(count)
    return [(opens, likes) for opens, likes in counts]
