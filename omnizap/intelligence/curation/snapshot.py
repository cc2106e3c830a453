"""Reads what a cycle plans from: classification rows of unpacked assets and of auto-pack members,
and the live auto theme packs of the system owner.

The candidate pool is §2.1's "unpacked" narrowed to *shareable* stickers: an asset that is an item
of no pack at all and was at some time in a public or unlisted pack (`sticker_asset.shared_at`).
A sticker only ever kept private — taken out of a private pack, or stored when placing it in a pack
failed — never becomes a candidate. A pack that was soft-deleted still holds its items (user
deletes keep them); retired theme volumes release their items first, so theirs do become
candidates again. Assets in user or collector packs are not read. Members of the auto packs that
are not shareable (placed before the rule existed) are listed so the planners take them out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.core.packs.rules import is_theme_pack
from omnizap.intelligence.curation.planner import AutoPack, Snapshot
from omnizap.intelligence.curation.policy import CurationPolicy
from omnizap.intelligence.curation.rows import StickerRow, parse_embeddings, parse_row
from omnizap.intelligence.taxonomy import SUBTHEME_BY_KEY
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_asset_classification,
    sticker_pack,
    sticker_pack_item,
)

_MARKER = re.compile(r"\[auto-(?:theme|tag):([^\]\s]{1,160})\]", re.IGNORECASE)
_VOLUME = re.compile(r"vol\.\s*(\d{1,6})", re.IGNORECASE)
_ID_BATCH = 500


def pack_theme_key(row: Mapping[str, Any]) -> str | None:
    """`pack_theme_key`, else the marker in the description (the original's order, §2.8)."""
    key = (row.get("pack_theme_key") or "").strip()
    if key:
        return key
    found = _MARKER.search(row.get("description") or "")
    return found.group(1).lower() if found else None


def pack_volume(row: Mapping[str, Any]) -> int:
    if row.get("pack_volume"):
        return int(row["pack_volume"])
    found = _VOLUME.search(row.get("name") or "")
    return int(found.group(1)) if found else 1


def _auto_packs(connection: Connection, owner: str) -> list[AutoPack]:
    rows = connection.execute(
        sa.select(sticker_pack)
        .where(
            sticker_pack.c.owner_jid == owner,
            sticker_pack.c.deleted_at.is_(None),
            sticker_pack.c.is_auto_pack == 1,
        )
        .order_by(sticker_pack.c.id)
    ).mappings()
    theme_rows = [
        dict(row)
        for row in rows
        if is_theme_pack(row["name"], row["description"], row["pack_theme_key"]) and pack_theme_key(row)
    ]
    items: dict[str, list[str]] = {row["id"]: [] for row in theme_rows}
    ids = list(items)
    for start in range(0, len(ids), _ID_BATCH):
        query = (
            sa.select(sticker_pack_item.c.pack_id, sticker_pack_item.c.sticker_id)
            .where(sticker_pack_item.c.pack_id.in_(ids[start : start + _ID_BATCH]))
            .order_by(sticker_pack_item.c.pack_id, sticker_pack_item.c.position)
        )
        for pack_id, sticker_id in connection.execute(query):
            items[pack_id].append(sticker_id)
    return [
        AutoPack(
            id=row["id"],
            theme_key=str(pack_theme_key(row)),
            volume=pack_volume(row),
            sensitive=bool(row["is_sensitive"]),
            name=row["name"],
            description=row["description"],
            pack_status=row["pack_status"],
            status=row["status"],
            items=tuple(items[row["id"]]),
        )
        for row in theme_rows
    ]


_ROW_COLUMNS = (
    sticker_asset_classification.c.asset_id,
    sticker_asset_classification.c.theme_key,
    sticker_asset_classification.c.confidence,
    sticker_asset_classification.c.confidence_margin,
    sticker_asset_classification.c.entropy,
    sticker_asset_classification.c.ambiguous,
    sticker_asset_classification.c.nsfw_score,
    sticker_asset_classification.c.is_nsfw,
    sticker_asset_classification.c.signals,
    sticker_asset_classification.c.embedding,
    sticker_asset.c.width,
    sticker_asset.c.height,
    sticker_asset.c.size_bytes,
    sticker_asset.c.shared_at.is_not(None).label("shareable"),
)


def _unshareable(connection: Connection, asset_ids: set[str]) -> frozenset[str]:
    """Which of these assets were never in a public or unlisted pack."""
    ids = sorted(asset_ids)
    found: set[str] = set()
    for start in range(0, len(ids), _ID_BATCH):
        query = sa.select(sticker_asset.c.id).where(
            sticker_asset.c.id.in_(ids[start : start + _ID_BATCH]), sticker_asset.c.shared_at.is_(None)
        )
        found.update(row[0] for row in connection.execute(query))
    return frozenset(found)


def load_snapshot(database: Database, policy: CurationPolicy, owner: str) -> Snapshot:
    """Everything a cycle plans from, in one read transaction (the lease keeps the other cycle out)."""
    rows: dict[str, StickerRow] = {}
    skipped: dict[str, str] = {}
    candidates: set[str] = set()
    scanned_candidates = 0
    with database.read() as connection:
        packs = _auto_packs(connection, owner)
        members = {asset_id for pack in packs for asset_id in pack.items}
        unshareable = _unshareable(connection, members)
        packed = sa.exists().where(sticker_pack_item.c.sticker_id == sticker_asset_classification.c.asset_id)
        query = sa.select(*_ROW_COLUMNS, packed.label("packed")).select_from(
            sticker_asset_classification.join(
                sticker_asset, sticker_asset.c.id == sticker_asset_classification.c.asset_id
            )
        )
        limit = policy.max_scan_assets
        if limit:
            # Newest first, as the original scans, so a capped scan takes the newest stickers. Only
            # then: sorting 5 KB rows costs SQLite a temporary b-tree, and the planner orders by id.
            query = query.order_by(sticker_asset.c.created_at.desc(), sticker_asset.c.id)
        chosen: list[tuple[Mapping[str, Any], bool]] = []
        for raw in connection.execute(query).mappings():
            member = raw["asset_id"] in members
            if not member and (raw["packed"] or not raw["shareable"]):
                continue  # in a user or collector pack, or never shared: not curation's to publish
            if not member:
                if limit and scanned_candidates >= limit:
                    continue
                scanned_candidates += 1
            chosen.append((raw, member))
    scanned = len(chosen)
    embeddings = parse_embeddings([raw["embedding"] for raw, _ in chosen])
    for (raw, member), embedding in zip(chosen, embeddings, strict=True):
        asset_id = raw["asset_id"]
        parsed = parse_row(raw, SUBTHEME_BY_KEY, embedding=embedding)
        if isinstance(parsed, str):
            skipped[asset_id] = parsed
            continue
        rows[asset_id] = parsed
        if not member:
            candidates.add(asset_id)
    return Snapshot(
        rows=rows,
        candidates=frozenset(candidates),
        packs=tuple(packs),
        skipped=skipped,
        scanned=scanned,
        unshareable=unshareable,
    )
