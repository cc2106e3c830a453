"""SQL of classification: pending assets, the upsert with its STICKER_CLASSIFIED event, status counts."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.intelligence.classification.results import INVALID_IMAGE_LABEL, ClassificationResult
from omnizap.platform.db.engine import excluded, upsert
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_asset_classification,
    sticker_asset_reprocess_queue,
)
from omnizap.platform.outbox.events import STICKER_CLASSIFIED, publish_event

ASSET_COLUMNS = (
    sticker_asset.c.id,
    sticker_asset.c.sha256,
    sticker_asset.c.mimetype,
    sticker_asset.c.storage_path,
    sticker_asset.c.created_at,
)
_UPDATED_COLUMNS = (
    "provider",
    "model_name",
    "classification_version",
    "category",
    "theme_key",
    "confidence",
    "entropy",
    "confidence_margin",
    "nsfw_score",
    "is_nsfw",
    "ambiguous",
    "all_scores",
    "top_labels",
    "signals",
    "image_hash",
    "embedding",
    "classified_at",
    "updated_at",
)


def pending_assets(
    connection: Connection, *, limit: int, after: tuple[dt.datetime, str] | None = None
) -> list[dict[str, Any]]:
    """Assets without a classification row, oldest first, after the keyset cursor `after`."""
    c = sticker_asset_classification.c
    query = (
        sa.select(*ASSET_COLUMNS)
        .select_from(sticker_asset.outerjoin(sticker_asset_classification, c.asset_id == sticker_asset.c.id))
        .where(c.asset_id.is_(None))
        .order_by(sticker_asset.c.created_at.asc(), sticker_asset.c.id.asc())
        .limit(limit)
    )
    if after is not None:
        created, asset_id = after
        query = query.where(
            sa.or_(
                sticker_asset.c.created_at > created,
                sa.and_(sticker_asset.c.created_at == created, sticker_asset.c.id > asset_id),
            )
        )
    return [dict(row) for row in connection.execute(query).mappings()]


def assets_by_id(connection: Connection, asset_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = list(dict.fromkeys(asset_ids))
    if not ids:
        return {}
    rows = connection.execute(sa.select(*ASSET_COLUMNS).where(sticker_asset.c.id.in_(ids))).mappings()
    return {row["id"]: dict(row) for row in rows}


def _outcome_digest(result: ClassificationResult) -> str:
    """What a consumer of STICKER_CLASSIFIED acts on; a retry writes the same digest (deduplicated),
    a reclassification that changes the answer writes a new one (delivered)."""
    text = "|".join(
        str(part)
        for part in (
            result.category,
            result.theme_key,
            result.is_nsfw,
            None if result.confidence is None else round(result.confidence, 2),
            None if result.nsfw_score is None else round(result.nsfw_score, 2),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def save_result(
    connection: Connection, asset_id: str, result: ClassificationResult, now: dt.datetime
) -> bool:
    """Upsert the row and publish STICKER_CLASSIFIED in the caller's transaction.

    Returns False (and writes nothing) when the asset was deleted meanwhile."""
    exists = connection.execute(sa.select(sticker_asset.c.id).where(sticker_asset.c.id == asset_id)).first()
    if exists is None:
        return False
    values = {
        "asset_id": asset_id,
        **result.columns(),
        "classified_at": now,
        "created_at": now,
        "updated_at": now,
    }
    connection.execute(
        upsert(
            connection.dialect.name,
            sticker_asset_classification,
            values,
            conflict_columns=["asset_id"],
            update={column: excluded(column) for column in _UPDATED_COLUMNS},
        )
    )
    publish_event(
        connection,
        event_type=STICKER_CLASSIFIED,
        aggregate_type="sticker_asset",
        aggregate_id=asset_id,
        payload={
            "asset_id": asset_id,
            "category": result.category,
            "theme_key": result.theme_key,
            "confidence": result.confidence,
            "nsfw_score": result.nsfw_score,
            "is_nsfw": result.is_nsfw,
            "classification_version": result.classification_version,
        },
        idempotency_key=(
            f"sticker_classified:{asset_id}:"
            f"{hashlib.sha256(result.classification_version.encode()).hexdigest()[:12]}:{_outcome_digest(result)}"
        ),
    )
    return True


def classification_row(connection: Connection, asset_id: str) -> dict[str, Any] | None:
    row = (
        connection.execute(
            sa.select(sticker_asset_classification).where(sticker_asset_classification.c.asset_id == asset_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def status_counts(connection: Connection, current_version: str) -> dict[str, Any]:
    """Numbers for `omnizap intel status`."""
    c = sticker_asset_classification.c
    assets = connection.execute(sa.select(sa.func.count()).select_from(sticker_asset)).scalar_one()
    classified = connection.execute(
        sa.select(sa.func.count()).select_from(sticker_asset_classification)
    ).scalar_one()
    current = connection.execute(
        sa.select(sa.func.count()).where(c.classification_version == current_version)
    ).scalar_one()
    fallback = connection.execute(
        sa.select(sa.func.count()).where(c.category == INVALID_IMAGE_LABEL)
    ).scalar_one()
    nsfw = connection.execute(sa.select(sa.func.count()).where(c.is_nsfw == 1)).scalar_one()
    themes = connection.execute(
        sa.select(c.theme_key, sa.func.count())
        .where(c.theme_key.is_not(None))
        .group_by(c.theme_key)
        .order_by(sa.func.count().desc(), c.theme_key)
    ).all()
    q = sticker_asset_reprocess_queue.c
    queue: dict[str, dict[str, int]] = {}
    for reason, status, count in connection.execute(
        sa.select(q.reason, q.status, sa.func.count()).group_by(q.reason, q.status)
    ):
        queue.setdefault(str(reason), {})[str(status)] = int(count)
    return {
        "assets": int(assets),
        "classified": int(classified),
        "pending": int(assets) - int(classified),
        "current_version": int(current),
        "older_versions": int(classified) - int(current),
        "fallback_rows": int(fallback),
        "nsfw": int(nsfw),
        "themes": {str(key): int(count) for key, count in themes},
        "reprocess": queue,
    }
