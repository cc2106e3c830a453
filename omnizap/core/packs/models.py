"""What the pack service hands out: a pack row with its sticker count, and an item row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Pack:
    """One row of `sticker_pack` plus `sticker_count` (its number of items)."""

    id: str
    owner_jid: str
    name: str
    publisher: str
    description: str | None
    pack_key: str
    cover_sticker_id: str | None
    visibility: str
    status: str
    pack_status: str
    pack_theme_key: str | None
    pack_volume: int | None
    last_rebalanced_at: dt.datetime | None
    is_auto_pack: bool
    is_sensitive: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None
    sticker_count: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any], sticker_count: int) -> Pack:
        return cls(
            id=row["id"],
            owner_jid=row["owner_jid"],
            name=row["name"],
            publisher=row["publisher"],
            description=row["description"],
            pack_key=row["pack_key"],
            cover_sticker_id=row["cover_sticker_id"],
            visibility=row["visibility"],
            status=row["status"],
            pack_status=row["pack_status"],
            pack_theme_key=row["pack_theme_key"],
            pack_volume=row["pack_volume"],
            last_rebalanced_at=row["last_rebalanced_at"],
            is_auto_pack=bool(row["is_auto_pack"]),
            is_sensitive=bool(row["is_sensitive"]),
            version=int(row["version"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            sticker_count=int(sticker_count),
        )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamps as ISO 8601)."""
        data = asdict(self)
        for name in ("created_at", "updated_at", "deleted_at", "last_rebalanced_at"):
            data[name] = _iso(data[name])
        return data


@dataclass(frozen=True)
class PackItem:
    """One sticker in a pack, at `position` (1-based, contiguous)."""

    id: str
    pack_id: str
    sticker_id: str
    position: int
    emojis: list[str]
    accessibility_label: str | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PackItem:
        emojis = row["emojis"]
        return cls(
            id=row["id"],
            pack_id=row["pack_id"],
            sticker_id=row["sticker_id"],
            position=int(row["position"]),
            emojis=[str(emoji) for emoji in emojis] if isinstance(emojis, list) else [],
            accessibility_label=row["accessibility_label"],
            created_at=row["created_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = _iso(self.created_at)
        return data
