"""SQL for `sticker_asset`. Functions take the caller's connection: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.platform.db.schema import sticker_asset
from omnizap.platform.db.types import utcnow

_ID_BATCH = 500  # keeps IN (...) lists well under every engine's parameter limit


def insert_asset(connection: Connection, row: dict[str, Any]) -> None:
    """Plain INSERT: a duplicate sha256 raises IntegrityError, which the service turns into a re-read."""
    connection.execute(sticker_asset.insert().values(**row))


def find_by_sha256(connection: Connection, sha256: str) -> dict[str, Any] | None:
    query = sa.select(sticker_asset).where(sticker_asset.c.sha256 == sha256)
    row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def find_by_source_sha256(connection: Connection, source_sha256: str) -> dict[str, Any] | None:
    """The newest asset made from this exact input (bytes and metadata), if any."""
    query = (
        sa.select(sticker_asset)
        .where(sticker_asset.c.source_sha256 == source_sha256)
        .order_by(sticker_asset.c.created_at.desc(), sticker_asset.c.id)
        .limit(1)
    )
    row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def find_by_id(connection: Connection, asset_id: str) -> dict[str, Any] | None:
    row = (
        connection.execute(sa.select(sticker_asset).where(sticker_asset.c.id == asset_id)).mappings().first()
    )
    return dict(row) if row else None


def find_many(connection: Connection, asset_ids: Iterable[str]) -> list[dict[str, Any]]:
    unique_ids = list(dict.fromkeys(str(asset_id) for asset_id in asset_ids))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(unique_ids), _ID_BATCH):
        batch = unique_ids[start : start + _ID_BATCH]
        query = sa.select(sticker_asset).where(sticker_asset.c.id.in_(batch))
        rows.extend(dict(row) for row in connection.execute(query).mappings())
    return rows


def count_rows_using_key(connection: Connection, storage_key: str) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(sticker_asset)
        .where(sticker_asset.c.storage_path == storage_key)
    )
    return int(connection.execute(query).scalar_one())


def set_storage_key(connection: Connection, asset_id: str, storage_key: str) -> None:
    connection.execute(
        sticker_asset.update()
        .where(sticker_asset.c.id == asset_id)
        .values(storage_path=storage_key, updated_at=utcnow())
    )
