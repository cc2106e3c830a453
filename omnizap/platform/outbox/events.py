"""Domain events written to `domain_event_outbox` (pipeline §6.1), in the caller's transaction.

Idempotency keys carry what makes an event distinct (pack version, classification version), so a
retried write is deduplicated while a later, different change is still delivered.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.platform.db.engine import insert_ignore
from omnizap.platform.db.schema import domain_event_outbox
from omnizap.platform.db.types import utcnow

STICKER_ASSET_CREATED = "STICKER_ASSET_CREATED"
STICKER_CLASSIFIED = "STICKER_CLASSIFIED"
PACK_UPDATED = "PACK_UPDATED"
ENGAGEMENT_RECORDED = "ENGAGEMENT_RECORDED"

EVENT_PRIORITIES = {
    STICKER_ASSET_CREATED: 85,
    STICKER_CLASSIFIED: 80,
    PACK_UPDATED: 70,
    ENGAGEMENT_RECORDED: 55,
}

_KEY_UNSAFE = re.compile(r"[^a-zA-Z0-9_:.-]")


def normalize_idempotency_key(key: str) -> str:
    cleaned = _KEY_UNSAFE.sub("", key)[:180]
    if not cleaned:
        raise ValueError("an idempotency key needs at least one of [a-zA-Z0-9_:.-]")
    return cleaned


def publish_event(
    connection: Connection,
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any],
    idempotency_key: str,
    priority: int | None = None,
    max_attempts: int = 10,
) -> bool:
    """Insert an event in the open transaction of `connection`; returns False if the key already exists."""
    now = utcnow()
    statement = insert_ignore(
        connection.dialect.name,
        domain_event_outbox,
        {
            "event_type": event_type,
            "aggregate_type": aggregate_type,
            "aggregate_id": str(aggregate_id)[:128],
            "payload": payload,
            "idempotency_key": normalize_idempotency_key(idempotency_key),
            "priority": max(
                1, min(100, priority if priority is not None else EVENT_PRIORITIES.get(event_type, 50))
            ),
            "max_attempts": max(1, min(30, max_attempts)),
            "available_at": now,
            "status": "pending",
            "created_at": now,
            "updated_at": now,
        },
    )
    result = connection.execute(statement)
    return bool(result.rowcount)


def asset_created(connection: Connection, asset: dict[str, Any]) -> bool:
    return publish_event(
        connection,
        event_type=STICKER_ASSET_CREATED,
        aggregate_type="sticker_asset",
        aggregate_id=asset["id"],
        payload={"asset_id": asset["id"], "owner_jid": asset["owner_jid"], "sha256": asset["sha256"]},
        idempotency_key=f"sticker_asset_created:{asset['id']}",
    )


def pack_changed(
    connection: Connection,
    *,
    pack_id: str,
    version: int,
    action: str,
    fields: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """PACK_UPDATED for one version of a pack: action is created, updated, version_bumped or deleted."""
    payload: dict[str, Any] = {"action": action, "pack_id": pack_id, "version": version}
    if fields:
        payload["fields"] = sorted(fields)[:30]
    if extra:
        payload.update(extra)
    return publish_event(
        connection,
        event_type=PACK_UPDATED,
        aggregate_type="sticker_pack",
        aggregate_id=pack_id,
        payload=payload,
        idempotency_key=f"pack:{pack_id}:v{version}",
        priority={"created": 75, "updated": 70, "deleted": 70}.get(action, 65),
    )


def pending_event_count(connection: Connection) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(domain_event_outbox)
        .where(domain_event_outbox.c.status == "pending")
    )
    return int(connection.execute(query).scalar_one())
