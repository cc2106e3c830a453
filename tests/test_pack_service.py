"""PackService against real databases (each test runs on SQLite, PostgreSQL and MySQL/MariaDB)."""

from __future__ import annotations

import concurrent.futures
import itertools
import random
import threading
import uuid
from typing import Any

import hypothesis
import pytest
import sqlalchemy as sa
from hypothesis import strategies as st

from omnizap.config import Settings
from omnizap.core.errors import (
    DuplicateSticker,
    InvalidInput,
    PackLimitReached,
    PackNotFound,
    StickerNotFound,
    StickerPackError,
)
from omnizap.core.packs import internals as pack_internals
from omnizap.core.packs.rules import COLLECTOR_DESCRIPTION, is_valid_pack_key
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import domain_event_outbox, sticker_asset, sticker_pack, sticker_pack_item

OWNER = "5511999999999@s.whatsapp.net"
OTHER = "5511888888888@s.whatsapp.net"


# --- helpers ----------------------------------------------------------------------------------------
def add_assets(db: Database, count: int, owner: str = OWNER) -> list[str]:
    """Sticker rows inserted directly, so these tests do not depend on the sticker pipeline."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert(),
            [
                {
                    "id": sid,
                    "owner_jid": owner,
                    "sha256": uuid.uuid4().hex * 2,
                    "size_bytes": 100,
                    "storage_path": sid,
                }
                for sid in ids
            ],
        )
    return ids


def make_service(db: Database, settings: Settings, **overrides: Any) -> PackService:
    key_suffix = overrides.pop("key_suffix", None)
    changed = settings.model_copy(update=overrides)
    if key_suffix is not None:
        return PackService(db, changed, key_suffix=key_suffix)
    return PackService(db, changed)


def events(db: Database, pack_id: str) -> list[tuple[int, str, list[str]]]:
    """(version, action, fields) of the pack's outbox events, oldest first."""
    query = sa.select(domain_event_outbox.c.payload).where(domain_event_outbox.c.aggregate_id == pack_id)
    with db.read() as connection:
        payloads = [row[0] for row in connection.execute(query)]
    return sorted((p["version"], p["action"], p.get("fields", [])) for p in payloads)


def order(db: Database, pack_id: str) -> list[tuple[int, str]]:
    query = (
        sa.select(sticker_pack_item.c.position, sticker_pack_item.c.sticker_id)
        .where(sticker_pack_item.c.pack_id == pack_id)
        .order_by(sticker_pack_item.c.position)
    )
    with db.read() as connection:
        return [(row[0], row[1]) for row in connection.execute(query)]


def count(db: Database, table: sa.Table) -> int:
    with db.read() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.fixture
def packs(db: Database, db_settings: Settings) -> PackService:
    return PackService(db, db_settings)


# --- create -----------------------------------------------------------------------------------------
def test_create_pack_starts_at_version_one_with_its_event(packs: PackService, db: Database):
    pack = packs.create_pack("5511999999999:3@c.us", "Meus memes 😂", description="  daily\nfun ")
    assert pack.owner_jid == OWNER  # normalised
    assert pack.name == "Meus memes 😂" and pack.description == "daily\nfun"  # descriptions keep lines
    assert pack.publisher == "OmniZap" and pack.visibility == "public" and pack.status == "published"
    assert pack.version == 1 and pack.sticker_count == 0 and pack.cover_sticker_id is None
    assert is_valid_pack_key(pack.pack_key) and pack.pack_key.startswith("meus-memes-")
    assert not pack.is_auto_pack and pack.deleted_at is None
    assert events(db, pack.id) == [(1, "created", [])]
    with db.read() as connection:
        payload = connection.execute(sa.select(domain_event_outbox.c.payload)).scalar_one()
    assert payload["pack_key"] == pack.pack_key and payload["visibility"] == "public"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " \u200b\t "}, "pack name is required"),
        ({"name": "ok", "visibility": "everyone"}, "private, public or unlisted"),
        ({"name": "ok", "publisher": "\u2800 "}, "publisher is required"),
        ({"name": "ok", "publisher": "\x00 "}, r"U\+0000 \(NULL\)"),
        ({"name": "x" * 121}, "at most 120"),
        ({"name": "ok", "description": "x" * 1025}, "at most 1024"),
        ({"name": "ok", "status": "live"}, "Invalid pack status"),
        ({"name": "ok", "owner_jid": "not an owner!"}, "invalid owner"),
    ],
)
def test_create_refuses_bad_input_and_stores_nothing(packs: PackService, db: Database, kwargs, message):
    arguments = {"owner_jid": OWNER, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        packs.create_pack(arguments.pop("owner_jid"), arguments.pop("name"), **arguments)
    assert count(db, sticker_pack) == 0 and count(db, domain_event_outbox) == 0


def test_create_takes_text_up_to_the_limits_counted_in_characters(packs: PackService):
    pack = packs.create_pack(OWNER, "🙂" * 120, publisher="p" * 120, description="d\n" * 512)
    assert pack.name == "🙂" * 120 and pack.publisher == "p" * 120
    assert pack.description == "\n".join(["d"] * 512)  # 1023 characters: lines are kept
    assert is_valid_pack_key(pack.pack_key) and pack.pack_key.startswith("pack-")
    for too_long in ({"name": "🙂" * 121}, {"name": "ok", "publisher": "p" * 121}):
        with pytest.raises(InvalidInput, match="at most 120 are allowed"):
            packs.create_pack(OWNER, **too_long)


def test_owner_pack_limit_counts_auto_packs_but_not_deleted_ones(db: Database, db_settings: Settings):
    packs = make_service(db, db_settings, sticker_pack_max_packs_per_owner=2)
    first = packs.create_pack(OWNER, "Mine")
    packs.create_pack(OWNER, "pack1", description=COLLECTOR_DESCRIPTION, is_auto_pack=True)
    with pytest.raises(PackLimitReached, match=r"Pack limit reached \(2\)"):
        packs.create_pack(OWNER, "Third")
    packs.create_pack(OTHER, "Someone else's")  # the limit is per owner
    packs.delete(OWNER, first.pack_key)
    assert packs.create_pack(OWNER, "Third").name == "Third"

    unlimited = make_service(db, db_settings, sticker_pack_max_packs_per_owner=None)
    for index in range(3):
        unlimited.create_pack(OWNER, f"More {index}")
    assert len(unlimited.list_packs(OWNER)) == 5


def test_clone_counts_against_the_pack_limit(db: Database, db_settings: Settings):
    packs = make_service(db, db_settings, sticker_pack_max_packs_per_owner=1)
    source = packs.create_pack(OWNER, "Only one")
    with pytest.raises(PackLimitReached):
        packs.clone(OWNER, source.pack_key, "Copy")
    assert [pack.name for pack in packs.list_packs(OWNER)] == ["Only one"]
    assert count(db, domain_event_outbox) == 1


def test_deleted_keys_stay_reserved_and_key_generation_gives_up_after_24_tries(
    db: Database, db_settings: Settings
):
    suffixes = iter(["aaaaa", "aaaaa", "bbbbb"])
    packs = make_service(db, db_settings, key_suffix=lambda: next(suffixes))
    first = packs.create_pack(OWNER, "Memes")
    packs.delete(OWNER, first.pack_key)
    second = packs.create_pack(OWNER, "Memes")
    assert first.pack_key == "memes-aaaaa" and second.pack_key == "memes-bbbbb"
    assert packs.get_by_key("memes-aaaaa", include_deleted=True).id == first.id

    calls = itertools.count(1)

    def always_taken() -> str:
        next(calls)
        return "aaaaa"

    stuck = make_service(db, db_settings, key_suffix=always_taken)
    with pytest.raises(StickerPackError) as refused:
        stuck.create_pack(OWNER, "Memes")
    assert refused.value.code == "INTERNAL_ERROR"
    assert next(calls) == 25  # 24 tries were made
    assert len(packs.list_packs(OWNER)) == 1


# --- items ------------------------------------------------------------------------------------------
def test_add_appends_sets_the_cover_first_then_bumps(packs: PackService, db: Database):
    pack = packs.create_pack(OWNER, "Memes")
    stickers = add_assets(db, 3)
    item = packs.add_sticker(OWNER, "memes", stickers[0], emojis="😀, 😂", accessibility_label="a\tcat")
    assert (item.position, item.emojis, item.accessibility_label) == (1, ["😀", "😂"], "a cat")
    packs.add_sticker(OWNER, pack.pack_key, stickers[1])
    packs.add_sticker(OWNER, pack.id, stickers[2])
    after = packs.resolve(OWNER, pack.pack_key)
    assert after.version == 4 and after.sticker_count == 3 and after.cover_sticker_id == stickers[0]
    assert order(db, pack.id) == [(1, stickers[0]), (2, stickers[1]), (3, stickers[2])]
    assert events(db, pack.id) == [
        (1, "created", []),
        (2, "updated", ["cover_sticker_id", "items"]),
        (3, "version_bumped", ["items"]),
        (4, "version_bumped", ["items"]),
    ]
    assert [entry.emojis for entry in packs.items(pack.id)] == [["😀", "😂"], [], []]


def test_add_refusals_change_nothing(db: Database, db_settings: Settings):
    packs = make_service(db, db_settings, sticker_pack_max_items=2)
    pack = packs.create_pack(OWNER, "Small")
    first, second, third = add_assets(db, 3)
    packs.add_sticker(OWNER, pack.pack_key, first)
    packs.add_sticker(OWNER, pack.pack_key, second)
    # Duplicate is reported even though the pack is also full: that check comes first.
    with pytest.raises(DuplicateSticker, match="position 1"):
        packs.add_sticker(OWNER, pack.pack_key, first)
    with pytest.raises(PackLimitReached, match="limit of 2 stickers"):
        packs.add_sticker(OWNER, pack.pack_key, third)
    with pytest.raises(StickerNotFound, match="import it first"):
        packs.add_sticker(OWNER, pack.pack_key, str(uuid.uuid4()))
    with pytest.raises(StickerNotFound):
        packs.add_sticker(OWNER, pack.pack_key, "'; DROP TABLE sticker_pack; --")
    with pytest.raises(InvalidInput):
        packs.add_sticker(OWNER, pack.pack_key, "  ")
    with pytest.raises(PackNotFound):
        packs.add_sticker(OTHER, pack.pack_key, third)  # someone else's pack
    assert packs.resolve(OWNER, pack.pack_key).version == 3
    assert len(events(db, pack.id)) == 3


def test_remove_closes_the_gap_and_moves_the_cover(packs: PackService, db: Database):
    pack = packs.create_pack(OWNER, "Memes")
    stickers = add_assets(db, 4)
    for sticker in stickers:
        packs.add_sticker(OWNER, pack.pack_key, sticker)
    removed = packs.remove_sticker(OWNER, pack.pack_key, 1)  # the cover
    assert removed.sticker_id == stickers[0] and removed.position == 1
    after = packs.resolve(OWNER, pack.pack_key)
    assert after.cover_sticker_id == stickers[1] and after.version == 6
    assert order(db, pack.id) == [(1, stickers[1]), (2, stickers[2]), (3, stickers[3])]
    packs.remove_sticker(OWNER, pack.pack_key, stickers[2])  # by sticker id
    assert order(db, pack.id) == [(1, stickers[1]), (2, stickers[3])]
    assert events(db, pack.id)[-2:] == [
        (6, "updated", ["cover_sticker_id", "items"]),
        (7, "version_bumped", ["items"]),
    ]
    for selector in ("9", "0", "-1", stickers[0], "nope"):
        with pytest.raises(StickerNotFound):
            packs.remove_sticker(OWNER, pack.pack_key, selector)
    with pytest.raises(InvalidInput):
        packs.remove_sticker(OWNER, pack.pack_key, " ")
    packs.remove_sticker(OWNER, pack.pack_key, "2")
    packs.remove_sticker(OWNER, pack.pack_key, "1")
    empty = packs.resolve(OWNER, pack.pack_key)
    assert empty.cover_sticker_id is None and empty.sticker_count == 0 and empty.version == 9
    assert count(db, sticker_asset) == 4  # stickers are never deleted with their item


def test_reorder_by_positions_or_ids_bumps_only_on_change(packs: PackService, db: Database):
    pack = packs.create_pack(OWNER, "Memes")
    a, b, c, d = add_assets(db, 4)
    for sticker in (a, b, c, d):
        packs.add_sticker(OWNER, pack.pack_key, sticker)
    changed = packs.reorder(OWNER, pack.pack_key, "4 1 99")
    assert [sid for _, sid in order(db, pack.id)] == [d, a, b, c]
    assert changed.version == 6 and events(db, pack.id)[-1] == (6, "version_bumped", ["items"])
    packs.reorder(OWNER, pack.pack_key, [c, b, c, "unknown-id"])
    assert [sid for _, sid in order(db, pack.id)] == [c, b, d, a]
    unchanged = packs.reorder(OWNER, pack.pack_key, ["1", "2"])
    assert unchanged.version == 7 and len(events(db, pack.id)) == 7
    for bad in ([], "", " , ", ["99", "0"], ["not-a-sticker"]):
        with pytest.raises(InvalidInput):
            packs.reorder(OWNER, pack.pack_key, bad)
    single = packs.create_pack(OWNER, "Single")
    packs.add_sticker(OWNER, single.pack_key, a)
    with pytest.raises(InvalidInput, match="2 or more"):
        packs.reorder(OWNER, single.pack_key, "1")


# --- fields -----------------------------------------------------------------------------------------
def test_rename_keeps_the_key_and_every_change_is_one_version(packs: PackService, db: Database):
    pack = packs.create_pack(OWNER, "Memes", description="old")
    renamed = packs.rename(OWNER, "Memes", "Best\tmemes")
    assert renamed.name == "Best memes" and renamed.pack_key == pack.pack_key and renamed.version == 2
    same = packs.rename(OWNER, pack.pack_key, "Best memes")  # same value still a change, like the original
    assert same.version == 3
    with pytest.raises(InvalidInput, match="pack name is required"):
        packs.rename(OWNER, pack.pack_key, "\u200b")
    a, b = add_assets(db, 2)
    packs.add_sticker(OWNER, pack.pack_key, a)
    packs.add_sticker(OWNER, pack.pack_key, b)
    updated = packs.set_fields(
        OWNER,
        pack.pack_key,
        publisher="Ana",
        description="clear",
        visibility="UNLISTED",
        cover=2,
        item=b,
        emojis=["🐱"],
        accessibility_label="cat",
    )
    assert (updated.publisher, updated.description, updated.visibility) == ("Ana", None, "unlisted")
    assert updated.cover_sticker_id == b and updated.version == 6
    assert [(i.emojis, i.accessibility_label) for i in packs.items(pack.id)] == [([], None), (["🐱"], "cat")]
    assert events(db, pack.id)[-1] == (
        6,
        "updated",
        ["cover_sticker_id", "description", "items", "publisher", "visibility"],
    )
    cleared = packs.set_fields(OWNER, pack.pack_key, cover=None)
    assert cleared.cover_sticker_id is None and cleared.version == 7


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, InvalidInput),
        ({"visibility": "world"}, InvalidInput),
        ({"publisher": "  "}, InvalidInput),
        ({"cover": 5}, StickerNotFound),
        ({"emojis": "😀"}, InvalidInput),  # which item?
        ({"item": 1}, InvalidInput),  # item without anything to change
        ({"item": 9, "emojis": "😀"}, StickerNotFound),
        ({"publisher": "New", "visibility": "nope"}, InvalidInput),  # all or nothing
    ],
)
def test_set_fields_refusals_change_nothing(packs: PackService, db: Database, kwargs, error):
    pack = packs.create_pack(OWNER, "Memes")
    packs.add_sticker(OWNER, pack.pack_key, add_assets(db, 1)[0])
    with pytest.raises(error):
        packs.set_fields(OWNER, pack.pack_key, **kwargs)
    after = packs.resolve(OWNER, pack.pack_key)
    assert after.version == 2 and after.publisher == "OmniZap" and after.visibility == "public"
    assert len(events(db, pack.id)) == 2


def test_publish_validates_before_looking_up(packs: PackService):
    pack = packs.create_pack(OWNER, "Memes", visibility="private")
    assert packs.publish(OWNER, pack.pack_key).visibility == "public"
    assert packs.publish(OWNER, pack.pack_key, "Private").visibility == "private"
    with pytest.raises(InvalidInput):
        packs.publish(OWNER, "no such pack", "galaxy")


def test_clone_copies_items_and_starts_its_own_versions(packs: PackService, db: Database):
    source = packs.create_pack(OWNER, "Memes", publisher="Ana", description="desc", visibility="unlisted")
    stickers = add_assets(db, 3)
    for sticker in stickers:
        packs.add_sticker(OWNER, source.pack_key, sticker, emojis="😀", accessibility_label="x")
    packs.set_fields(OWNER, source.pack_key, cover=3)
    copy = packs.clone(OWNER, source.pack_key, "Memes copy")
    assert copy.id != source.id and copy.pack_key != source.pack_key and copy.version == 1
    assert (copy.name, copy.publisher, copy.description) == ("Memes copy", "Ana", "desc")
    assert copy.visibility == "public" and copy.cover_sticker_id == stickers[2] and copy.sticker_count == 3
    assert [(i.position, i.sticker_id, i.emojis, i.accessibility_label) for i in packs.items(copy.id)] == [
        (position, sticker, ["😀"], "x") for position, sticker in enumerate(stickers, 1)
    ]
    assert events(db, copy.id) == [(1, "created", [])]
    default_name = packs.clone(OWNER, copy.pack_key)
    assert default_name.name == "Memes copy (copy)"

    private = packs.create_pack(OWNER, "Secret " + "s" * 113, visibility="private")
    private_copy = packs.clone(OWNER, private.pack_key)
    assert private_copy.visibility == "private"  # copying never widens who can see it
    assert len(private_copy.name) == 120 and private_copy.name.endswith(" (copy)")
    auto = packs.create_pack(OWNER, "pack1", description=COLLECTOR_DESCRIPTION, is_auto_pack=True)
    assert not packs.clone(OWNER, auto.pack_key, "Mine now").is_auto_pack
    with pytest.raises(InvalidInput):
        packs.clone(OWNER, source.pack_key, "\t")


def test_delete_is_soft_and_hides_the_pack(packs: PackService, db: Database):
    pack = packs.create_pack(OWNER, "Memes")
    packs.add_sticker(OWNER, pack.pack_key, add_assets(db, 1)[0])
    deleted = packs.delete(OWNER, "memes")
    assert deleted.deleted_at is not None and deleted.version == 3
    assert events(db, pack.id)[-1] == (3, "deleted", ["deleted_at"])
    for lookup in (lambda: packs.resolve(OWNER, pack.pack_key), lambda: packs.get_by_key(pack.pack_key)):
        with pytest.raises(PackNotFound):
            lookup()
    with pytest.raises(PackNotFound):
        packs.add_sticker(OWNER, pack.pack_key, add_assets(db, 1)[0])
    with pytest.raises(PackNotFound):
        packs.delete(OWNER, pack.pack_key)
    assert packs.list_packs(OWNER) == []
    assert packs.get_by_key(pack.pack_key, include_deleted=True).version == 3
    assert len(packs.items(pack.id)) == 1  # items are kept


# --- finding packs ----------------------------------------------------------------------------------
def test_resolve_by_name_key_id_and_link(packs: PackService):
    older = packs.create_pack(OWNER, "Memes")
    newer = packs.create_pack(OWNER, "memes")
    mine = packs.create_pack(OWNER, "Gatos fofos")
    packs.create_pack(OTHER, "Cats")
    assert packs.resolve(OWNER, "MEMES").id == newer.id  # most recently updated wins
    packs.rename(OWNER, older.pack_key, "Memes")
    assert packs.resolve(OWNER, "memes").id == older.id
    for ref in (
        mine.pack_key,
        mine.pack_key.upper(),
        mine.pack_key.replace("-", "_"),
        mine.id,
        f"https://example.org/stickers/{mine.pack_key}?utm=x",
        f"{mine.pack_key}).",
        "  gatos   FOFOS ",
        "gatos\nfofos",
    ):
        assert packs.resolve(OWNER, ref).id == mine.id, ref
    with pytest.raises(PackNotFound, match="omnizap pack list --owner"):
        packs.resolve(OWNER, "Cats")  # exists, but not this owner's
    with pytest.raises(InvalidInput):
        packs.resolve(OWNER, " \n ")
    with pytest.raises(InvalidInput, match="invalid owner"):
        packs.resolve("x y", "Memes")


def test_list_packs_newest_first_and_without_auto(packs: PackService):
    packs.create_pack(OWNER, "First")
    packs.create_pack(
        OWNER, "pack1", description=COLLECTOR_DESCRIPTION, is_auto_pack=True, visibility="unlisted"
    )
    packs.create_pack(OWNER, "[auto] Cats")
    third = packs.create_pack(OWNER, "Third")
    packs.rename(OWNER, "First", "First again")
    names = [p.name for p in packs.list_packs(OWNER)]
    assert names == ["First again", "Third", "[auto] Cats", "pack1"]
    assert [p.name for p in packs.list_packs(OWNER, include_auto=False)] == ["First again", "Third"]
    assert [p.name for p in packs.list_packs(OWNER, include_auto=False, limit=1)] == ["First again"]
    assert len(packs.list_packs(OWNER, limit=3)) == 3
    assert packs.list_packs(OTHER) == []
    with pytest.raises(InvalidInput):
        packs.list_packs(OWNER, limit=0)
    assert third.sticker_count == 0


# --- transactions -----------------------------------------------------------------------------------
def test_event_and_change_roll_back_together(packs: PackService, db: Database, monkeypatch):
    pack = packs.create_pack(OWNER, "Memes")
    sticker = add_assets(db, 1)[0]
    real = pack_internals.pack_changed

    def write_then_fail(connection: Any, **kwargs: Any) -> bool:
        real(connection, **kwargs)  # the event row is written, then the transaction fails
        raise RuntimeError("simulated crash after the event insert")

    monkeypatch.setattr(pack_internals, "pack_changed", write_then_fail)
    with pytest.raises(RuntimeError):
        packs.create_pack(OWNER, "Never")
    with pytest.raises(RuntimeError):
        packs.add_sticker(OWNER, pack.pack_key, sticker)
    with pytest.raises(RuntimeError):
        packs.delete(OWNER, pack.pack_key)
    monkeypatch.setattr(pack_internals, "pack_changed", real)

    assert [p.name for p in packs.list_packs(OWNER)] == ["Memes"]
    after = packs.resolve(OWNER, pack.pack_key)
    assert after.version == 1 and after.sticker_count == 0 and after.cover_sticker_id is None
    assert count(db, domain_event_outbox) == 1 and count(db, sticker_pack_item) == 0


def test_concurrent_adds_never_share_a_position(packs: PackService, db: Database):
    pack = packs.create_pack(OWNER, "Busy")
    stickers = add_assets(db, 8)
    start = threading.Barrier(len(stickers))

    def add(sticker: str) -> int:
        start.wait()
        return packs.add_sticker(OWNER, pack.pack_key, sticker).position

    with concurrent.futures.ThreadPoolExecutor(len(stickers)) as pool:
        positions = sorted(pool.map(add, stickers))
    assert positions == list(range(1, 9))
    assert [position for position, _ in order(db, pack.id)] == list(range(1, 9))
    after = packs.resolve(OWNER, pack.pack_key)
    assert after.version == 9 and [version for version, *_ in events(db, pack.id)] == list(range(1, 10))


def test_random_operations_keep_positions_contiguous_and_versions_exact(db: Database, db_settings: Settings):
    """A seeded random walk of adds, removes, reorders and cover changes against a simple model."""
    packs = make_service(db, db_settings, sticker_pack_max_items=6)
    pack = packs.create_pack(OWNER, "Walk")
    pool = add_assets(db, 10)
    model: list[str] = []
    version = 1
    rng = random.Random(20240611)
    for _ in range(40):
        action = rng.choice(["add", "add", "remove", "reorder", "cover"])
        if action == "add":
            sticker = rng.choice(pool)
            if sticker in model:
                with pytest.raises(DuplicateSticker):
                    packs.add_sticker(OWNER, pack.pack_key, sticker)
            elif len(model) >= 6:
                with pytest.raises(PackLimitReached):
                    packs.add_sticker(OWNER, pack.pack_key, sticker)
            else:
                packs.add_sticker(OWNER, pack.pack_key, sticker)
                model.append(sticker)
                version += 1
        elif action == "remove" and model:
            victim = rng.choice(model)
            packs.remove_sticker(OWNER, pack.pack_key, rng.choice([victim, str(model.index(victim) + 1)]))
            model.remove(victim)
            version += 1
        elif action == "reorder" and len(model) >= 2:
            requested = rng.sample(model, rng.randint(1, len(model)))
            new_model = requested + [sticker for sticker in model if sticker not in requested]
            packs.reorder(OWNER, pack.pack_key, requested)
            version += new_model != model
            model = new_model
        elif action == "cover" and model:
            packs.set_fields(OWNER, pack.pack_key, cover=rng.choice(model))
            version += 1
        assert order(db, pack.id) == list(enumerate(model, 1))
        current = packs.resolve(OWNER, pack.pack_key)
        assert current.version == version and current.sticker_count == len(model)
        assert current.cover_sticker_id is None or current.cover_sticker_id in model
    assert [v for v, *_ in events(db, pack.id)] == list(range(1, version + 1))


@pytest.mark.parametrize(
    "hostile", ["", "   ", "memes\x00-aaaaa", "../../etc/passwd", "x" * 10_000, "memes aaaaa"]
)
def test_get_by_key_refuses_hostile_keys_with_a_clear_error(packs: PackService, hostile: str):
    packs.create_pack(OWNER, "Memes")
    with pytest.raises(PackNotFound, match="keys look like"):
        packs.get_by_key(hostile)


# --- limits under any sequence of operations (Hypothesis) -----------------------------------------
limit_operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from([OWNER, OTHER])),
        st.tuples(st.just("add"), st.integers(0, 20), st.integers(0, 20)),
        st.tuples(st.just("remove"), st.integers(0, 20), st.integers(0, 20)),
        st.tuples(st.just("clone"), st.integers(0, 20)),
        st.tuples(st.just("delete"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=18,
)


@hypothesis.settings(
    max_examples=12, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(ops=limit_operations)
def test_limits_hold_and_refusals_change_nothing_under_any_sequence(
    db: Database, db_settings: Settings, ops: list[tuple[Any, ...]]
):
    """With 3 stickers per pack and 2 packs per owner, no sequence of creates, adds, removes, clones
    and deletes gets past a limit, and a refused operation leaves every pack exactly as it was."""
    from conftest import reset_database

    reset_database(db)
    packs = make_service(db, db_settings, sticker_pack_max_items=3, sticker_pack_max_packs_per_owner=2)
    assets = add_assets(db, 5)
    live: list[tuple[str, str]] = []  # (owner, pack id)

    def snapshot() -> dict[str, tuple[int, tuple[str, ...]]]:
        with db.read() as connection:
            rows = connection.execute(sa.select(sticker_pack.c.id, sticker_pack.c.version)).all()
            items = connection.execute(
                sa.select(sticker_pack_item.c.pack_id, sticker_pack_item.c.sticker_id).order_by(
                    sticker_pack_item.c.pack_id, sticker_pack_item.c.position
                )
            ).all()
        return {
            pack_id: (version, tuple(sid for pid, sid in items if pid == pack_id))
            for pack_id, version in rows
        }

    for op in ops:
        before = snapshot()
        try:
            if op[0] == "create":
                live.append((op[1], packs.create_pack(op[1], "Pack").id))
            elif not live:
                continue
            elif op[0] == "add":
                owner, pack_id = live[op[1] % len(live)]
                packs.add_sticker(owner, pack_id, assets[op[2] % len(assets)])
            elif op[0] == "remove":
                owner, pack_id = live[op[1] % len(live)]
                packs.remove_sticker(owner, pack_id, str(op[2] % 4 + 1))
            elif op[0] == "clone":
                owner, pack_id = live[op[1] % len(live)]
                live.append((owner, packs.clone(owner, pack_id).id))
            elif op[0] == "delete":
                owner, pack_id = live.pop(op[1] % len(live))
                packs.delete(owner, pack_id)
        except (PackLimitReached, DuplicateSticker, StickerNotFound):
            assert snapshot() == before  # a refusal writes nothing
        for owner in (OWNER, OTHER):
            owned = packs.list_packs(owner)
            assert len(owned) <= 2
            for pack in owned:
                assert pack.sticker_count <= 3
                assert [item.position for item in packs.items(pack.id)] == list(
                    range(1, pack.sticker_count + 1)
                )
