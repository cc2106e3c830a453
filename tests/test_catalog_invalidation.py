"""Caching that stays correct: outbox-driven invalidation, late commits, bounds (every engine)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from test_catalog_support import (
    OWNER,
    catalog_settings,
    listed_keys,
    make_pack,
    record_engagement,
    wait_until,
)

from omnizap.catalog.service import CatalogService
from omnizap.catalog.watcher import OutboxTail
from omnizap.core.packs.service import PackService
from omnizap.platform.db.schema import domain_event_outbox, sticker_pack, sticker_pack_engagement
from omnizap.platform.db.types import utcnow
from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED, PACK_UPDATED, publish_event


@pytest.fixture
def env(db, db_settings):
    settings = catalog_settings(db_settings)
    return SimpleNamespace(db=db, settings=settings, packs=PackService(db, settings))


@pytest.fixture
def started(env):
    catalogs: list[CatalogService] = []

    def start(**overrides: object) -> CatalogService:
        settings = catalog_settings(env.settings, **overrides) if overrides else env.settings
        catalog = CatalogService(env.db, settings)
        catalog.start()
        catalogs.append(catalog)
        return catalog

    yield start
    for catalog in catalogs:
        catalog.stop()


def _entry(catalog: CatalogService, pack_key: str, **query: object) -> dict | None:
    return next(
        (entry for entry in catalog.list_packs(**query)["data"] if entry["pack_key"] == pack_key), None
    )


def _max_outbox_id(db) -> int:
    with db.read() as connection:
        return int(connection.execute(sa.select(sa.func.max(domain_event_outbox.c.id))).scalar() or 0)


def _event_row(event_id: int, event_type: str, pack_id: str) -> dict:
    now = utcnow()
    return {
        "id": event_id,
        "event_type": event_type,
        "aggregate_type": "sticker_pack",
        "aggregate_id": pack_id,
        "payload": {"pack_id": pack_id},
        "idempotency_key": f"test:{uuid.uuid4().hex}",
        "priority": 50,
        "available_at": now,
        "status": "pending",
        "created_at": now,
        "updated_at": now,
    }


# --- changes become visible -------------------------------------------------------------------------
def test_edits_through_pack_service_show_after_the_next_poll(env, started):
    pack = make_pack(env.packs, env.db, "Before", description="plain")
    other = make_pack(env.packs, env.db, "Neighbour")
    catalog = started()
    assert _entry(catalog, pack.pack_key)["name"] == "Before"
    version = catalog.data_version()

    env.packs.rename(OWNER, pack.pack_key, "After")
    wait_until(lambda: _entry(catalog, pack.pack_key)["name"] == "After", "the rename in the list")
    assert catalog.pack_detail(pack.pack_key)["name"] == "After"
    assert catalog.data_version() > version

    env.packs.set_fields(OWNER, pack.pack_key, description="now tagged [pack-tags:fresh]")
    wait_until(lambda: listed_keys(catalog, categories=["fresh"]) == [pack.pack_key], "the new manual tag")
    assert catalog.pack_detail(pack.pack_key)["description"] == "now tagged"

    env.packs.publish(OWNER, pack.pack_key, "unlisted")
    wait_until(lambda: _entry(catalog, pack.pack_key) is None, "the pack leaving the list")
    assert catalog.pack_detail(pack.pack_key)["visibility"] == "unlisted"
    env.packs.delete(OWNER, pack.pack_key)
    wait_until(lambda: catalog.pack_detail(pack.pack_key) is None, "the deleted pack's page going away")
    assert listed_keys(catalog) == [other.pack_key]
    assert [key for key, _ in catalog.sitemap_entries()] == [other.pack_key]


def test_an_engagement_row_and_its_event_show_after_the_next_poll(env, started):
    pack = make_pack(env.packs, env.db, "Liked Later")
    catalog = started()
    assert catalog.pack_detail(pack.pack_key)["engagement"]["like_count"] == 0
    assert catalog.stats()["data"]["downloads_total"] == 0

    record_engagement(env.db, pack.id, likes=3, opens=5)
    wait_until(lambda: _entry(catalog, pack.pack_key)["engagement"]["like_count"] == 3, "likes in the list")
    assert catalog.pack_detail(pack.pack_key)["engagement"]["like_count"] == 3
    assert catalog.stats()["data"]["downloads_total"] == 5
    assert catalog.marketplace_stats()["total_likes"] == 3
    assert catalog.creators()["data"][0]["stats"]["total_likes"] == 3


def test_building_in_the_api_brings_a_new_pack_to_the_ranked_lists_after_a_debounce(env, started):
    """STICKER_CATALOG_RANKING_BUILD_IN_API: the schedule of a deployment without task poller."""
    make_pack(env.packs, env.db, "Existing")
    catalog = started(
        sticker_catalog_ranking_build_in_api=True,
        sticker_catalog_ranking_debounce_seconds=1,
        sticker_catalog_ranking_refresh_seconds=5,
    )
    generation = catalog._generation().id
    fresh = make_pack(env.packs, env.db, "Arrived Later")
    wait_until(lambda: fresh.pack_key in listed_keys(catalog, sort="new"), "the new pack in sort=new")
    wait_until(lambda: fresh.pack_key in listed_keys(catalog), "the new pack in the ranked list", timeout=60)
    assert catalog._generation().id > generation


def test_two_running_services_both_see_a_change(env, started):
    pack = make_pack(env.packs, env.db, "Shared")
    first, second = started(), started()
    assert _entry(first, pack.pack_key) and _entry(second, pack.pack_key)
    record_engagement(env.db, pack.id, likes=2)
    for catalog in (first, second):
        wait_until(lambda c=catalog: _entry(c, pack.pack_key)["engagement"]["like_count"] == 2, "likes seen")


# --- late commits -----------------------------------------------------------------------------------
def test_an_event_that_commits_after_a_higher_id_is_not_missed(env, started):
    """Simulated with explicit ids (works on every engine): id n+10 commits, then id n+5."""
    early = make_pack(env.packs, env.db, "Early")
    late = make_pack(env.packs, env.db, "Late")
    catalog = started()
    assert _entry(catalog, late.pack_key)["name"] == "Late"
    base = _max_outbox_id(env.db)

    with env.db.transaction() as connection:
        connection.execute(
            sticker_pack_engagement.insert().values(
                pack_id=early.id, like_count=4, open_count=0, dislike_count=0
            )
        )
        connection.execute(
            domain_event_outbox.insert().values(**_event_row(base + 10, ENGAGEMENT_RECORDED, early.id))
        )
    wait_until(lambda: _entry(catalog, early.pack_key)["engagement"]["like_count"] == 4, "the higher id")

    with env.db.transaction() as connection:
        connection.execute(
            sticker_pack.update()
            .where(sticker_pack.c.id == late.id)
            .values(name="Late Commit", updated_at=utcnow())
        )
        connection.execute(domain_event_outbox.insert().values(**_event_row(base + 5, PACK_UPDATED, late.id)))
    wait_until(lambda: _entry(catalog, late.pack_key)["name"] == "Late Commit", "the lower id committed late")


def test_concurrent_transactions_committing_out_of_order(env, started, engine_name):
    """Two real transactions: the one holding the lower outbox id commits second."""
    if engine_name == "sqlite":
        pytest.skip("SQLite runs one writer at a time, so its ids always commit in order")
    slow = make_pack(env.packs, env.db, "Slow Writer")
    fast = make_pack(env.packs, env.db, "Fast Writer")
    catalog = started()
    assert _entry(catalog, slow.pack_key)

    with env.db.engine.connect() as holder:
        transaction = holder.begin()
        holder.execute(
            sticker_pack.update()
            .where(sticker_pack.c.id == slow.id)
            .values(name="Slow Done", updated_at=utcnow())
        )
        publish_event(
            holder,
            event_type=PACK_UPDATED,
            aggregate_type="sticker_pack",
            aggregate_id=slow.id,
            payload={"pack_id": slow.id, "action": "updated"},
            idempotency_key=f"test-slow:{uuid.uuid4().hex}",
        )
        lower_id = holder.execute(
            sa.select(sa.func.max(domain_event_outbox.c.id)).where(
                domain_event_outbox.c.aggregate_id == slow.id
            )
        ).scalar_one()
        record_engagement(env.db, fast.id, likes=7)  # commits first, with a higher id
        wait_until(lambda: _entry(catalog, fast.pack_key)["engagement"]["like_count"] == 7, "the fast commit")
        assert catalog._tail.high_water > lower_id and lower_id in catalog._tail.gaps
        assert _entry(catalog, slow.pack_key)["name"] == "Slow Writer"
        transaction.commit()
    wait_until(lambda: _entry(catalog, slow.pack_key)["name"] == "Slow Done", "the slow commit")


def test_the_tail_tracks_gaps_expires_them_and_detects_reused_ids(env):
    now = [0.0]
    tail = OutboxTail(gap_seconds=30, clock=lambda: now[0])
    pack = make_pack(env.packs, env.db, "Tail")
    base = _max_outbox_id(env.db)
    with env.db.read() as connection:
        tail.start(connection)
    assert tail.high_water == base
    startup_gaps = set(tail.gaps)  # ids just below the start that may still be committing

    def insert(event_id: int) -> None:
        with env.db.transaction() as connection:
            connection.execute(
                domain_event_outbox.insert().values(**_event_row(event_id, PACK_UPDATED, pack.id))
            )

    def poll() -> tuple[list[int], bool]:
        with env.db.read() as connection:
            result = tail.poll(connection)
        return [event.id for event in result.events], result.overflow

    insert(base + 5)
    assert poll() == ([base + 5], False)
    assert set(tail.gaps) - startup_gaps == {base + 1, base + 2, base + 3, base + 4}
    assert poll() == ([], False)
    insert(base + 3)
    assert poll() == ([base + 3], False)
    assert set(tail.gaps) - startup_gaps == {base + 1, base + 2, base + 4}
    now[0] = 31.0
    assert poll() == ([], False)
    assert tail.gaps == {}  # never came: a rolled-back insert, or a skipped id
    insert(base + 4)
    assert poll() == ([], False)  # once expired, an id is no longer awaited

    with env.db.transaction() as connection:
        connection.execute(domain_event_outbox.delete())
    insert(base + 1)  # ids below the high-water mark again (SQLite reuses them after deletes)
    _, overflow = poll()
    assert overflow is True and tail.high_water == base + 1


# --- the cache itself -------------------------------------------------------------------------------
def test_cached_bodies_are_reused_until_their_scope_changes(env):
    first = make_pack(env.packs, env.db, "First")
    second = make_pack(env.packs, env.db, "Second")
    catalog = CatalogService(env.db, env.settings)
    listing = catalog.list_packs()
    assert catalog.list_packs() is listing
    first_detail = catalog.pack_detail(first.pack_key)
    second_detail = catalog.pack_detail(second.pack_key)
    assert catalog.pack_detail(first.pack_key) is first_detail

    record_engagement(env.db, first.id, likes=1)
    assert catalog.poll_changes() == 1
    assert catalog.pack_detail(second.pack_key) is second_detail  # another pack's page stays cached
    assert catalog.pack_detail(first.pack_key)["engagement"]["like_count"] == 1
    fresh = catalog.list_packs()
    assert fresh is not listing
    assert _entry(catalog, first.pack_key)["engagement"]["like_count"] == 1


def test_note_pack_changed_applies_without_waiting_for_a_poll(env):
    pack = make_pack(env.packs, env.db, "Noted")
    catalog = CatalogService(
        env.db, catalog_settings(env.settings, sticker_catalog_invalidation_poll_ms=60_000)
    )
    assert _entry(catalog, pack.pack_key)["engagement"]["like_count"] == 0
    with env.db.transaction() as connection:  # a change whose event the watcher has not seen yet
        connection.execute(
            sticker_pack_engagement.insert().values(
                pack_id=pack.id, like_count=9, open_count=0, dislike_count=0
            )
        )
    assert _entry(catalog, pack.pack_key)["engagement"]["like_count"] == 0
    catalog.note_pack_changed(pack.id)
    assert _entry(catalog, pack.pack_key)["engagement"]["like_count"] == 9
    assert catalog.pack_detail(pack.pack_key)["engagement"]["like_count"] == 9


def test_the_cache_is_bounded(env):
    make_pack(env.packs, env.db, "Bounded")
    catalog = CatalogService(env.db, catalog_settings(env.settings, sticker_catalog_cache_max_entries=16))
    for number in range(40):
        catalog.list_packs(q=f"query {number}")
    assert len(catalog._cache) <= 16


def test_start_and_stop_are_idempotent_and_stop_joins(env):
    make_pack(env.packs, env.db, "Lifecycle")
    catalog = CatalogService(env.db, env.settings)
    catalog.start()
    catalog.start()
    threads = list(catalog._threads)
    assert len(threads) == 2 and all(thread.is_alive() for thread in threads)
    wait_until(lambda: catalog._index is not None, "the watcher's first load")
    catalog.stop()
    assert not any(thread.is_alive() for thread in threads)
    catalog.stop()
    catalog.start()
    assert catalog.list_packs()["data"]
    catalog.stop()
