"""SQL for `sticker_pack` and `sticker_pack_item`. Functions take the caller's connection, so the
caller owns the transaction (and writes the outbox event in it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.platform.db.schema import sticker_asset, sticker_pack, sticker_pack_item

_ID_BATCH = 500  # keeps IN (...) lists well under every engine's parameter limit

_item_count = (
    sa.select(sa.func.count())
    .select_from(sticker_pack_item)
    .where(sticker_pack_item.c.pack_id == sticker_pack.c.id)
    .scalar_subquery()
    .label("sticker_count")
)
_newest_first = (sticker_pack.c.updated_at.desc(), sticker_pack.c.created_at.desc(), sticker_pack.c.id)


def _split_count(row: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    values = dict(row)
    return values, int(values.pop("sticker_count") or 0)


def pack_with_count(connection: Connection, pack_id: str) -> tuple[dict[str, Any], int] | None:
    query = sa.select(sticker_pack, _item_count).where(sticker_pack.c.id == pack_id)
    row = connection.execute(query).mappings().first()
    return _split_count(row) if row else None


def lock_pack(connection: Connection, pack_id: str) -> dict[str, Any] | None:
    """Read one pack row and hold a write lock on it until the transaction ends.

    Mutations of a pack start with this statement. On PostgreSQL and MySQL the row lock makes
    concurrent changes of the same pack wait for each other; because it is the transaction's first
    read, MySQL's repeatable-read snapshot is taken after the wait, so later reads see the other
    writer's items. SQLite transactions are already exclusive (BEGIN IMMEDIATE).
    """
    query = sa.select(sticker_pack).where(sticker_pack.c.id == pack_id)
    if connection.dialect.name != "sqlite":
        query = query.with_for_update()
    row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def pack_by_key(
    connection: Connection, pack_key: str, *, include_deleted: bool
) -> tuple[dict[str, Any], int] | None:
    query = sa.select(sticker_pack, _item_count).where(sticker_pack.c.pack_key == pack_key)
    if not include_deleted:
        query = query.where(sticker_pack.c.deleted_at.is_(None))
    row = connection.execute(query).mappings().first()
    return _split_count(row) if row else None


def owner_packs(
    connection: Connection, owner_jid: str, *, limit: int | None = None
) -> list[tuple[dict[str, Any], int]]:
    """The owner's live packs with their item counts, most recently updated first."""
    query = (
        sa.select(sticker_pack, _item_count)
        .where(sticker_pack.c.owner_jid == owner_jid, sticker_pack.c.deleted_at.is_(None))
        .order_by(*_newest_first)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_split_count(row) for row in connection.execute(query).mappings()]


def owner_pack_references(connection: Connection, owner_jid: str) -> list[dict[str, Any]]:
    """id, key and name of the owner's live packs, most recently updated first (for resolving)."""
    query = (
        sa.select(sticker_pack.c.id, sticker_pack.c.pack_key, sticker_pack.c.name)
        .where(sticker_pack.c.owner_jid == owner_jid, sticker_pack.c.deleted_at.is_(None))
        .order_by(*_newest_first)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def count_live_packs(connection: Connection, owner_jid: str) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(sticker_pack)
        .where(sticker_pack.c.owner_jid == owner_jid, sticker_pack.c.deleted_at.is_(None))
    )
    return int(connection.execute(query).scalar_one())


def key_taken(connection: Connection, pack_key: str) -> bool:
    """Keys of deleted packs stay reserved, so this looks at every row."""
    query = sa.select(sticker_pack.c.id).where(sticker_pack.c.pack_key == pack_key).limit(1)
    return connection.execute(query).first() is not None


def insert_pack(connection: Connection, row: Mapping[str, Any]) -> None:
    connection.execute(sticker_pack.insert().values(**row))


def update_pack(connection: Connection, pack_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(sticker_pack.update().where(sticker_pack.c.id == pack_id).values(**values))


def item_rows(connection: Connection, pack_id: str) -> list[dict[str, Any]]:
    query = (
        sa.select(sticker_pack_item)
        .where(sticker_pack_item.c.pack_id == pack_id)
        .order_by(sticker_pack_item.c.position, sticker_pack_item.c.id)
    )
    return [dict(row) for row in connection.execute(query).mappings()]


def insert_items(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        connection.execute(sticker_pack_item.insert(), [dict(row) for row in rows])


def delete_item(connection: Connection, item_id: str) -> None:
    connection.execute(sticker_pack_item.delete().where(sticker_pack_item.c.id == item_id))


def delete_items(connection: Connection, item_ids: Sequence[str]) -> None:
    for start in range(0, len(item_ids), _ID_BATCH):
        batch = list(item_ids[start : start + _ID_BATCH])
        connection.execute(sticker_pack_item.delete().where(sticker_pack_item.c.id.in_(batch)))


def stickers_in_any_pack(connection: Connection, sticker_ids: Iterable[str]) -> set[str]:
    """Which of these stickers are an item of some pack (live or soft-deleted)."""
    unique_ids = list(dict.fromkeys(sticker_ids))
    found: set[str] = set()
    for start in range(0, len(unique_ids), _ID_BATCH):
        batch = unique_ids[start : start + _ID_BATCH]
        query = (
            sa.select(sticker_pack_item.c.sticker_id)
            .where(sticker_pack_item.c.sticker_id.in_(batch))
            .distinct()
        )
        found.update(row[0] for row in connection.execute(query))
    return found


def update_item(connection: Connection, item_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(sticker_pack_item.update().where(sticker_pack_item.c.id == item_id).values(**values))


def move_items(connection: Connection, moves: Mapping[str, int], now: Any) -> None:
    """Give items new positions without ever breaking the unique (pack_id, position) key.

    Every moving item first parks at the negative of its target (real positions are ≥ 1, and the
    targets are distinct), then takes its target. Items that keep their place are not touched, and
    the targets of the moving ones are exactly the positions they free, so no step collides — on
    any engine, whatever order it checks rows of a multi-row UPDATE in.
    """
    if not moves:
        return
    statement = (
        sticker_pack_item.update()
        .where(sticker_pack_item.c.id == sa.bindparam("item_id"))
        .values(position=sa.bindparam("new_position"), updated_at=now)
    )
    connection.execute(
        statement, [{"item_id": item, "new_position": -position} for item, position in moves.items()]
    )
    connection.execute(
        statement, [{"item_id": item, "new_position": position} for item, position in moves.items()]
    )


def existing_asset_ids(connection: Connection, asset_ids: Iterable[str]) -> set[str]:
    unique_ids = list(dict.fromkeys(asset_ids))
    found: set[str] = set()
    for start in range(0, len(unique_ids), _ID_BATCH):
        batch = unique_ids[start : start + _ID_BATCH]
        query = sa.select(sticker_asset.c.id).where(sticker_asset.c.id.in_(batch))
        found.update(row[0] for row in connection.execute(query))
    return found


def packs_containing(connection: Connection, pack_ids: Sequence[str], sticker_id: str) -> list[str]:
    """Which of these packs already hold the sticker."""
    if not pack_ids:
        return []
    query = sa.select(sticker_pack_item.c.pack_id).where(
        sticker_pack_item.c.sticker_id == sticker_id, sticker_pack_item.c.pack_id.in_(list(pack_ids))
    )
    return [row[0] for row in connection.execute(query)]


def mark_shared(connection: Connection, sticker_ids: Iterable[str], now: Any) -> None:
    """Record that these stickers sit in a public or unlisted pack (the first time only)."""
    unique_ids = list(dict.fromkeys(sticker_ids))
    for start in range(0, len(unique_ids), _ID_BATCH):
        batch = unique_ids[start : start + _ID_BATCH]
        connection.execute(
            sticker_asset.update()
            .where(sticker_asset.c.id.in_(batch), sticker_asset.c.shared_at.is_(None))
            .values(shared_at=now)
        )


def mark_pack_items_shared(connection: Connection, pack_id: str, now: Any) -> None:
    """`mark_shared` for every item of the pack."""
    items = sa.select(sticker_pack_item.c.sticker_id).where(sticker_pack_item.c.pack_id == pack_id)
    connection.execute(
        sticker_asset.update()
        .where(sticker_asset.c.id.in_(items), sticker_asset.c.shared_at.is_(None))
        .values(shared_at=now)
    )


def shareable_ids(connection: Connection, sticker_ids: Iterable[str]) -> set[str]:
    """Which of these stickers were ever in a public or unlisted pack (`shared_at` set)."""
    unique_ids = list(dict.fromkeys(sticker_ids))
    found: set[str] = set()
    for start in range(0, len(unique_ids), _ID_BATCH):
        batch = unique_ids[start : start + _ID_BATCH]
        query = sa.select(sticker_asset.c.id).where(
            sticker_asset.c.id.in_(batch), sticker_asset.c.shared_at.is_not(None)
        )
        found.update(row[0] for row in connection.execute(query))
    return found
