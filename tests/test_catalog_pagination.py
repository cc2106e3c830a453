"""Stable pagination and shared ranking generations (each test runs on every engine)."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from test_catalog_support import (
    OWNER,
    add_assets,
    all_pages,
    catalog_settings,
    make_pack,
    record_engagement,
)

from omnizap.catalog.cursor import CursorCodec
from omnizap.catalog.service import CatalogService
from omnizap.core.errors import InvalidInput
from omnizap.core.packs.service import PackService
from omnizap.platform.db.schema import (
    sticker_catalog_generation,
    sticker_catalog_ranking,
    sticker_pack,
    sticker_pack_engagement,
    sticker_pack_item,
    sticker_pack_score_snapshot,
)
from omnizap.platform.db.types import utcnow


@pytest.fixture
def env(db, db_settings):
    settings = catalog_settings(db_settings)
    return SimpleNamespace(db=db, settings=settings, packs=PackService(db, settings))


def _seed(env, count: int, seed: int = 3) -> list:
    rng = random.Random(seed)
    packs = []
    now = utcnow()
    for number in range(count):
        pack = make_pack(env.packs, env.db, f"Pack {number:02d}", publisher=f"P{number % 4}")
        opens = rng.randint(0, 40)
        record_engagement(
            env.db,
            pack.id,
            opens=opens,
            likes=rng.randint(0, 9),
            opened_at=[now - dt.timedelta(hours=rng.uniform(0, 150)) for _ in range(opens // 4)],
        )
        packs.append(pack)
    return packs


def _generation_count(db) -> int:
    with db.read() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(sticker_catalog_generation)).scalar()
        )


@pytest.mark.parametrize("sort", ["popular", "trending", "liked", "downloads", "new"])
def test_cursor_pages_never_skip_or_repeat_while_data_changes(env, sort):
    initial = _seed(env, 22)
    catalog = CatalogService(env.db, env.settings)
    catalog.refresh_rankings()
    deleted: set[str] = set()
    created: set[str] = set()
    by_position = {pack.pack_key: pack for pack in initial}

    def change(page_number: int) -> None:
        if page_number == 1:  # the last pack of the order gets popular: a new ranking would move it up
            last = catalog.list_packs(sort=sort, limit=60)["data"][-1]
            record_engagement(env.db, last["id"], likes=200, opens=300)
        elif page_number == 2:
            created.add(make_pack(env.packs, env.db, "Brand New Pack").pack_key)
        elif page_number == 3:
            victim = initial[7]
            env.packs.delete(OWNER, victim.pack_key)
            deleted.add(victim.pack_key)
        elif page_number == 4:
            catalog.refresh_rankings()  # a new generation between pages
        elif page_number == 5:
            env.packs.rename(OWNER, initial[3].pack_key, "Renamed Meanwhile")
        catalog.poll_changes()

    keys = all_pages(catalog, between=change, sort=sort, limit=4)
    assert len(keys) == len(set(keys)), "a pack was repeated"
    existed_throughout = set(by_position) - deleted
    assert existed_throughout <= set(keys), f"missing: {existed_throughout - set(keys)}"
    assert set(keys) <= set(by_position) | created
    assert len(keys) >= len(existed_throughout)


def test_offset_pagination_still_works_for_old_clients(env):
    _seed(env, 9)
    catalog = CatalogService(env.db, env.settings)
    keys: list[str] = []
    offset = 0
    while True:
        page = catalog.list_packs(limit=4, offset=offset)
        assert page["pagination"]["offset"] == offset
        keys += [entry["pack_key"] for entry in page["data"]]
        if page["pagination"]["next_offset"] is None:
            assert page["pagination"]["has_more"] is False
            break
        offset = page["pagination"]["next_offset"]
    assert len(keys) == 9 == len(set(keys))
    assert keys == [entry["pack_key"] for entry in catalog.list_packs(limit=60)["data"]]
    by_cursor = catalog.list_packs(limit=4, cursor=catalog.list_packs(limit=4)["pagination"]["next_cursor"])
    assert by_cursor["pagination"]["offset"] is None and by_cursor["pagination"]["next_offset"] is None
    assert [entry["pack_key"] for entry in by_cursor["data"]] == keys[4:8]


def test_bad_cursors_are_refused_with_invalid_cursor(env):
    _seed(env, 6)
    catalog = CatalogService(env.db, env.settings)
    cursor = catalog.list_packs(limit=2)["pagination"]["next_cursor"]
    new_cursor = catalog.list_packs(limit=2, sort="new")["pagination"]["next_cursor"]
    assert catalog.list_packs(limit=2, cursor=cursor)["data"]
    body, _, signature = cursor.partition(".")
    middle = len(body) // 2  # not the last character: its low bits may be padding
    flipped = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
    candidates = [
        flipped + "." + signature,
        body + "." + signature[::-1],
        body,
        "not-a-cursor",
        "é.é",
        "a" * 5000,
        "....",
        cursor + "x",
    ]
    for bad in candidates:
        with pytest.raises(InvalidInput) as raised:
            catalog.list_packs(limit=2, cursor=bad)
        assert raised.value.code == "INVALID_CURSOR", bad
        assert "first page" in raised.value.message
    with pytest.raises(InvalidInput, match="sort") as raised:
        catalog.list_packs(limit=2, sort="trending", cursor=cursor)
    assert raised.value.code == "INVALID_CURSOR"
    with pytest.raises(InvalidInput) as raised:
        catalog.list_packs(limit=2, q="pack", cursor=cursor)
    assert raised.value.code == "INVALID_CURSOR"
    with pytest.raises(InvalidInput) as raised:
        catalog.list_packs(limit=2, cursor=new_cursor)
    assert raised.value.code == "INVALID_CURSOR"

    elsewhere = CatalogService(env.db, catalog_settings(env.settings, sticker_catalog_cursor_secret="other"))
    with pytest.raises(InvalidInput) as raised:
        elsewhere.list_packs(limit=2, cursor=cursor)
    assert raised.value.code == "INVALID_CURSOR"

    retention = env.settings.sticker_catalog_ranking_retention_seconds
    later = CursorCodec(catalog.cursors._key, retention, clock=lambda: time.time() + retention + 5)
    catalog.cursors = later
    with pytest.raises(InvalidInput, match="expired") as raised:
        catalog.list_packs(limit=2, cursor=cursor)
    assert raised.value.code == "INVALID_CURSOR"


def test_a_cursor_into_a_pruned_generation_says_to_restart(env):
    _seed(env, 5)
    catalog = CatalogService(env.db, env.settings)
    cursor = catalog.list_packs(limit=2)["pagination"]["next_cursor"]
    old_generation = catalog._latest.id
    catalog.refresh_rankings()
    other = CatalogService(env.db, env.settings)  # another process: no orders in memory
    with env.db.transaction() as connection:
        connection.execute(
            sticker_catalog_ranking.delete().where(sticker_catalog_ranking.c.generation_id == old_generation)
        )
        connection.execute(
            sticker_catalog_generation.delete().where(sticker_catalog_generation.c.id == old_generation)
        )
    with pytest.raises(InvalidInput, match="generation expired") as raised:
        other.list_packs(limit=2, cursor=cursor)
    assert raised.value.code == "INVALID_CURSOR"


# --- generations ------------------------------------------------------------------------------------
def test_two_services_share_one_generation(env):
    _seed(env, 4)
    first = CatalogService(env.db, env.settings)
    second = CatalogService(env.db, env.settings)
    generation = first.refresh_rankings()
    assert second.list_packs()["data"]
    assert second.intents()["data"]["novos"]
    assert _generation_count(env.db) == 1
    first_page = first.list_packs(limit=2)
    second_page = second.list_packs(limit=2)
    assert first_page["data"] == second_page["data"]
    # a cursor from one process works on the other
    following = second.list_packs(limit=2, cursor=first_page["pagination"]["next_cursor"])
    assert (
        following["data"] == first.list_packs(limit=2, cursor=first_page["pagination"]["next_cursor"])["data"]
    )
    assert second.refresh_rankings() > generation


def test_only_one_of_concurrent_claimers_builds(env):
    _seed(env, 3)
    services = [CatalogService(env.db, env.settings) for _ in range(3)]
    services[0].refresh_rankings()
    for _ in range(4):
        barrier = threading.Barrier(len(services))
        claimed: list[int | None] = []

        def claim(
            service: CatalogService, results: list = claimed, gate: threading.Barrier = barrier
        ) -> None:
            gate.wait()
            results.append(service.rankings.claim(min_interval=None))  # list.append is atomic

        threads = [threading.Thread(target=claim, args=(service,)) for service in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [value for value in claimed if value is not None]
        assert len(winners) == 1, claimed
        built = services[0].rankings.build(winners[0])
        assert built is not None and built.id == winners[0]
    # with a young generation, a scheduled claim does nothing
    assert services[1].rankings.claim(min_interval=dt.timedelta(seconds=60)) is None


def test_a_dead_builder_does_not_block_and_a_live_one_is_respected(env):
    _seed(env, 3)
    catalog = CatalogService(env.db, env.settings)
    timeout = dt.timedelta(seconds=env.settings.sticker_catalog_ranking_build_timeout_seconds)
    with env.db.transaction() as connection:
        dead = connection.execute(
            sticker_catalog_generation.insert().values(
                status="building", built_by="crashed", started_at=utcnow() - 2 * timeout
            )
        ).inserted_primary_key[0]
    generation = catalog.refresh_rankings()
    with env.db.read() as connection:
        status = connection.execute(
            sa.select(sticker_catalog_generation.c.status).where(sticker_catalog_generation.c.id == dead)
        ).scalar_one()
    assert status == "failed" and generation > dead
    with env.db.transaction() as connection:
        connection.execute(
            sticker_catalog_generation.insert().values(
                status="building", built_by="alive", started_at=utcnow()
            )
        )
    assert catalog.rankings.claim(min_interval=None) is None


def test_old_generations_are_pruned_and_the_newest_stays(env):
    _seed(env, 3)
    catalog = CatalogService(env.db, env.settings)
    ids = [catalog.refresh_rankings() for _ in range(3)]
    retention = dt.timedelta(seconds=env.settings.sticker_catalog_ranking_retention_seconds)
    old = utcnow() - 2 * retention
    with env.db.transaction() as connection:
        connection.execute(
            sticker_catalog_generation.update()
            .where(sticker_catalog_generation.c.id.in_(ids))
            .values(started_at=old, finished_at=old)
        )
    assert catalog.rankings.prune() == 2
    with env.db.read() as connection:
        left = connection.execute(sa.select(sticker_catalog_generation.c.id)).scalars().all()
        ranked = set(
            connection.execute(sa.select(sticker_catalog_ranking.c.generation_id).distinct()).scalars()
        )
    assert left == [ids[-1]] and ranked == {ids[-1]}
    assert catalog.list_packs()["data"]


def test_a_fresh_database_answers_its_first_request(env):
    catalog = CatalogService(env.db, env.settings)
    body = catalog.list_packs()
    assert body["data"] == [] and body["pagination"]["has_more"] is False
    assert _generation_count(env.db) == 1
    assert catalog.stats()["data"]["packs_total"] == 0
    assert catalog.marketplace_stats()["total_packs"] == 0
    assert catalog.sitemap_entries() == []


def test_bulk_catalog_ranks_and_pages_every_listed_pack_once(env):
    """1,300 packs inserted directly: batched reads and writes, and a full walk by cursor."""
    now = utcnow()
    assets = add_assets(env.db, 40)
    rng = random.Random(11)
    packs, items, counters = [], [], []
    for number in range(1300):
        pack_id = str(uuid.uuid4())
        created = now - dt.timedelta(days=rng.uniform(0, 90))
        packs.append(
            {
                "id": pack_id,
                "owner_jid": OWNER,
                "name": f"Bulk {number}",
                "publisher": f"Bulk P{number % 50}",
                "pack_key": f"bulk-{number:05d}-{uuid.uuid4().hex[:5]}",
                "visibility": "unlisted" if number % 13 == 0 else "public",
                "status": "published",
                "pack_status": "ready",
                "cover_sticker_id": assets[number % 40],
                "created_at": created,
                "updated_at": created,
            }
        )
        for position, sticker in enumerate(rng.sample(assets, 3), start=1):
            items.append(
                {"id": str(uuid.uuid4()), "pack_id": pack_id, "sticker_id": sticker, "position": position}
            )
        counters.append(
            {"pack_id": pack_id, "open_count": rng.randint(0, 999), "like_count": rng.randint(0, 99)}
        )
    with env.db.transaction() as connection:
        connection.execute(sticker_pack.insert(), packs)
        connection.execute(sticker_pack_item.insert(), items)
        connection.execute(sticker_pack_engagement.insert(), counters)
    listed = {pack["pack_key"] for pack in packs if pack["visibility"] == "public"}

    catalog = CatalogService(env.db, env.settings)
    generation = catalog.refresh_rankings()
    with env.db.read() as connection:
        ranked = connection.execute(
            sa.select(sa.func.count())
            .select_from(sticker_catalog_ranking)
            .where(sticker_catalog_ranking.c.generation_id == generation)
        ).scalar_one()
        snapshots = connection.execute(
            sa.select(sa.func.count()).select_from(sticker_pack_score_snapshot)
        ).scalar()
    assert ranked == 4 * len(listed)
    assert snapshots == len(packs)  # unlisted packs get signals too (their pages show them)
    for sort in ("popular", "downloads", "new"):
        keys = all_pages(catalog, sort=sort, limit=60)
        assert len(keys) == len(set(keys)) == len(listed) and set(keys) == listed
    downloads = catalog.list_packs(sort="downloads", limit=60)["data"]
    opens = [entry["engagement"]["open_count"] for entry in downloads]
    assert opens == sorted(opens, reverse=True)
    assert catalog.stats()["data"]["packs_total"] == len(listed)
