"""The auto-collector against real databases (each test runs on SQLite, PostgreSQL and MySQL/MariaDB)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.core.errors import PackLimitReached, StickerNotFound
from omnizap.core.packs.autocollect import AutoCollector, CollectResult
from omnizap.core.packs.rules import COLLECTOR_DESCRIPTION
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset, sticker_pack

OWNER = "5511999999999@s.whatsapp.net"


def add_assets(db: Database, count: int) -> list[str]:
    """Sticker rows inserted directly, so these tests do not depend on the sticker pipeline."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = [
        {
            "id": sid,
            "owner_jid": OWNER,
            "sha256": uuid.uuid4().hex * 2,
            "size_bytes": 100,
            "storage_path": sid,
        }
        for sid in ids
    ]
    with db.transaction() as connection:
        connection.execute(sticker_asset.insert(), rows)
    return ids


def build(db: Database, settings: Settings, **overrides: Any) -> tuple[PackService, AutoCollector]:
    changed = settings.model_copy(update=overrides)
    packs = PackService(db, changed)
    return packs, AutoCollector(packs, changed)


def sizes(packs: PackService) -> dict[str, int]:
    return {pack.name: pack.sticker_count for pack in packs.list_packs(OWNER)}


def test_disabled_collector_skips(db: Database, db_settings: Settings):
    packs, collector = build(db, db_settings, sticker_pack_auto_collect_enabled=False)
    result = collector.collect(OWNER, add_assets(db, 1)[0])
    assert result == CollectResult("skipped", None, "disabled")
    assert packs.list_packs(OWNER) == []
    _, enabled = build(db, db_settings)
    assert enabled.collect(OWNER, "  ").status == "skipped"


def test_first_sticker_creates_an_unlisted_collector_pack(db: Database, db_settings: Settings):
    packs, collector = build(db, db_settings)
    first, second = add_assets(db, 2)
    result = collector.collect("5511999999999:7@c.us", first, sender_name="Ana\nBeatriz")
    assert result.status == "added" and result.pack is not None
    pack = result.pack
    assert (pack.name, pack.visibility, pack.is_auto_pack) == ("pack1", "unlisted", True)
    assert pack.description == COLLECTOR_DESCRIPTION and pack.publisher == "Ana Beatriz"
    assert pack.owner_jid == OWNER and pack.sticker_count == 1 and pack.cover_sticker_id == first
    again = collector.collect(OWNER, second)
    assert again.status == "added" and again.pack is not None and again.pack.id == pack.id
    assert again.pack.sticker_count == 2
    duplicate = collector.collect(OWNER, first)
    assert duplicate.status == "duplicate" and duplicate.pack is not None and duplicate.pack.id == pack.id
    assert sizes(packs) == {"pack1": 2}


def test_user_pack_with_room_wins_and_keeps_its_visibility(db: Database, db_settings: Settings):
    packs, collector = build(db, db_settings)
    packs.create_pack(
        OWNER, "pack1", description=COLLECTOR_DESCRIPTION, is_auto_pack=True, visibility="unlisted"
    )
    mine = packs.create_pack(OWNER, "Mine", visibility="private")
    result = collector.collect(OWNER, add_assets(db, 1)[0])
    assert result.pack is not None and result.pack.id == mine.id
    assert result.pack.visibility == "private" and result.pack.sticker_count == 1


def test_full_user_pack_then_70_stickers_fill_30_30_10(db: Database, db_settings: Settings):
    """The original made 70 one-sticker packs here (chat §5.4 item 5)."""
    packs, collector = build(db, db_settings)
    packs.create_pack(OWNER, "Mine", publisher="Ana", initial_sticker_ids=add_assets(db, 30))
    for sticker in add_assets(db, 70):
        result = collector.collect(OWNER, sticker)
        assert result.status == "added"
    assert sizes(packs) == {"Mine": 30, "pack1": 30, "pack2": 30, "pack3": 10}
    overflow = {pack.name: pack for pack in packs.list_packs(OWNER)}
    assert overflow["pack3"].publisher == "Ana"  # no sender name: the full pack's publisher
    assert all(
        overflow[name].visibility == "unlisted" and overflow[name].is_auto_pack for name in ("pack1", "pack3")
    )


def test_sticker_already_collected_while_user_pack_is_full_is_a_duplicate(
    db: Database, db_settings: Settings
):
    packs, collector = build(db, db_settings, sticker_pack_max_items=2)
    packs.create_pack(OWNER, "Mine", initial_sticker_ids=add_assets(db, 2))
    first, second, third = add_assets(db, 3)
    assert collector.collect(OWNER, first).status == "added"
    assert collector.collect(OWNER, second).status == "added"
    assert collector.collect(OWNER, third).status == "added"  # pack1 full → pack2
    result = collector.collect(OWNER, first)
    assert result.status == "duplicate" and result.pack is not None and result.pack.name == "pack1"
    assert sizes(packs) == {"Mine": 2, "pack1": 2, "pack2": 1}


def test_public_collector_is_used_but_never_forced_back_to_unlisted(db: Database, db_settings: Settings):
    packs, collector = build(db, db_settings)
    first = collector.collect(OWNER, add_assets(db, 1)[0]).pack
    assert first is not None
    packs.publish(OWNER, first.pack_key, "public")
    result = collector.collect(OWNER, add_assets(db, 1)[0])
    assert result.pack is not None and result.pack.id == first.id
    assert (
        result.pack.visibility == "public" and result.pack.version == 3
    )  # created, published, added: nothing else


def test_unlisted_collector_with_room_is_preferred(db: Database, db_settings: Settings):
    packs, collector = build(db, db_settings)
    unlisted = packs.create_pack(
        OWNER, "pack1", description=COLLECTOR_DESCRIPTION, is_auto_pack=True, visibility="unlisted"
    )
    packs.create_pack(
        OWNER, "pack2", description=COLLECTOR_DESCRIPTION, is_auto_pack=True, visibility="public"
    )
    result = collector.collect(OWNER, add_assets(db, 1)[0])
    assert result.pack is not None and result.pack.id == unlisted.id


def test_theme_packs_are_never_targets_and_legacy_collectors_are_recognised(
    db: Database, db_settings: Settings
):
    packs, collector = build(db, db_settings)
    packs.create_pack(OWNER, "[auto] Cats", description="[auto-theme:cats]")
    result = collector.collect(OWNER, add_assets(db, 1)[0])
    assert result.pack is not None and result.pack.name == "pack1"

    legacy_owner = "5511777777777@s.whatsapp.net"
    legacy = packs.create_pack(
        legacy_owner, "minhas", description="Coleção automática de figurinhas criadas pelo usuário."
    )
    collected = collector.collect(legacy_owner, add_assets(db, 1)[0])
    assert collected.pack is not None and collected.pack.id == legacy.id

    # A user's own "Pack 2" is a user pack, not a collector: it is preferred as such.
    named_owner = "5511666666666@s.whatsapp.net"
    users_pack = packs.create_pack(named_owner, "Pack 2")
    collected = collector.collect(named_owner, add_assets(db, 1)[0])
    assert collected.pack is not None and collected.pack.id == users_pack.id


def test_base_name_comes_from_settings(db: Database, db_settings: Settings):
    _, collector = build(db, db_settings, sticker_pack_auto_pack_name="Minhas Figurinhas!")
    result = collector.collect(OWNER, add_assets(db, 1)[0])
    assert result.pack is not None and result.pack.name == "minhasfigurinhas1"


def test_pack_limit_refuses_a_new_collector_and_keeps_the_sticker(db: Database, db_settings: Settings):
    packs, collector = build(db, db_settings, sticker_pack_max_packs_per_owner=1, sticker_pack_max_items=1)
    packs.create_pack(OWNER, "Mine", initial_sticker_ids=add_assets(db, 1))
    sticker = add_assets(db, 1)[0]
    with pytest.raises(PackLimitReached, match="Pack limit reached"):
        collector.collect(OWNER, sticker)
    assert sizes(packs) == {"Mine": 1}
    with db.read() as connection:
        assert connection.execute(sa.select(sticker_asset.c.id).where(sticker_asset.c.id == sticker)).first()


def test_unknown_sticker_creates_no_pack(db: Database, db_settings: Settings):
    _, collector = build(db, db_settings)
    with pytest.raises(StickerNotFound):
        collector.collect(OWNER, str(uuid.uuid4()))
    with db.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(sticker_pack)).scalar_one() == 0
