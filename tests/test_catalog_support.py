"""Helpers shared by the catalog tests (no tests here): settings, stickers, packs, engagement."""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from omnizap.catalog.service import CatalogService
from omnizap.config import Settings
from omnizap.core.packs.models import Pack
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_asset_classification,
    sticker_pack,
    sticker_pack_engagement,
    sticker_pack_interaction_event,
)
from omnizap.platform.db.types import utcnow
from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED, publish_event

OWNER = "5511999999999@s.whatsapp.net"
DEADLINE_SECONDS = 20.0


def catalog_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sticker_pack_auto_collect_enabled": False,
        "sticker_catalog_invalidation_poll_ms": 50,
        "sticker_pack_max_packs_per_owner": None,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def numbered_key_suffixes() -> Callable[[], str]:
    """Pack-key suffixes `00001`, `00002`, … for a PackService under test: digits only, so a search
    assertion never matches a pack through its random key (`…-6mpze` once matched the query "ze")."""
    counter = itertools.count(1)
    return lambda: f"{next(counter):05d}"


def add_assets(
    db: Database, count: int, *, width: int = 512, height: int = 512, size: int = 20_000
) -> list[str]:
    """Sticker rows inserted directly (the packs around them are made through PackService)."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert(),
            [
                {
                    "id": sticker_id,
                    "owner_jid": OWNER,
                    "sha256": uuid.uuid4().hex * 2,
                    "size_bytes": size,
                    "width": width,
                    "height": height,
                    "storage_path": f"ab/{sticker_id}.webp",
                }
                for sticker_id in ids
            ],
        )
    return ids


def make_pack(
    packs: PackService,
    db: Database,
    name: str,
    *,
    stickers: int = 3,
    publisher: str = "Ana",
    description: str | None = None,
    visibility: str = "public",
) -> Pack:
    sticker_ids = add_assets(db, stickers) if stickers else []
    return packs.create_pack(
        OWNER,
        name,
        publisher=publisher,
        description=description,
        visibility=visibility,
        initial_sticker_ids=sticker_ids,
    )


def record_engagement(
    db: Database,
    pack_id: str,
    *,
    opens: int = 0,
    likes: int = 0,
    dislikes: int = 0,
    opened_at: Iterable[dt.datetime] = (),
) -> None:
    """What the interactions service does: counters, interaction events and ENGAGEMENT_RECORDED,
    all in one transaction."""
    now = utcnow()
    with db.transaction() as connection:
        row = connection.execute(
            sa.select(sticker_pack_engagement.c.pack_id).where(sticker_pack_engagement.c.pack_id == pack_id)
        ).first()
        if row is None:
            connection.execute(sticker_pack_engagement.insert().values(pack_id=pack_id))
        connection.execute(
            sticker_pack_engagement.update()
            .where(sticker_pack_engagement.c.pack_id == pack_id)
            .values(
                open_count=sticker_pack_engagement.c.open_count + opens,
                like_count=sticker_pack_engagement.c.like_count + likes,
                dislike_count=sticker_pack_engagement.c.dislike_count + dislikes,
                updated_at=now,
            )
        )
        events = [{"pack_id": pack_id, "interaction": "open", "created_at": at} for at in opened_at]
        events += [{"pack_id": pack_id, "interaction": "like", "created_at": now} for _ in range(likes)]
        if events:
            connection.execute(sticker_pack_interaction_event.insert(), events)
        publish_event(
            connection,
            event_type=ENGAGEMENT_RECORDED,
            aggregate_type="sticker_pack",
            aggregate_id=pack_id,
            payload={"pack_id": pack_id, "action": "like" if likes else "open"},
            idempotency_key=f"engagement_recorded:{pack_id}:{uuid.uuid4().hex}",
        )


def classify(
    db: Database, asset_id: str, *, category: str, scores: dict[str, float], nsfw: float = 0.0
) -> None:
    now = utcnow()
    with db.transaction() as connection:
        connection.execute(
            sticker_asset_classification.insert().values(
                asset_id=asset_id,
                provider="test",
                model_name="fixture",
                classification_version="v1",
                category=category,
                confidence=max(scores.values()),
                entropy=0.5,
                confidence_margin=0.2,
                nsfw_score=nsfw,
                is_nsfw=1 if nsfw >= 0.6 else 0,
                all_scores=scores,
                top_labels=[{"label": label, "score": value} for label, value in scores.items()],
                classified_at=now,
            )
        )


def set_pack_columns(db: Database, pack_id: str, **values: Any) -> None:
    with db.transaction() as connection:
        connection.execute(sticker_pack.update().where(sticker_pack.c.id == pack_id).values(**values))


def wait_until(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_SECONDS) -> Any:
    """Poll `condition` until it returns something truthy; fail after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def listed_keys(catalog: CatalogService, **query: Any) -> list[str]:
    return [entry["pack_key"] for entry in catalog.list_packs(**query)["data"]]


def all_pages(
    catalog: CatalogService, between: Callable[[int], None] | None = None, **query: Any
) -> list[str]:
    """Every pack key, following next_cursor; `between(page_number)` runs before each next page."""
    keys: list[str] = []
    page = catalog.list_packs(**query)
    number = 1
    while True:
        keys.extend(entry["pack_key"] for entry in page["data"])
        cursor = page["pagination"]["next_cursor"]
        if cursor is None:
            return keys
        if between is not None:
            between(number)
        number += 1
        page = catalog.list_packs(**{**query, "cursor": cursor})
