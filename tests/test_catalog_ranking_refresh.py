"""The ranking_refresh task and the snapshot read path (issue 5), on every engine.

Time is moved by fake clocks or by dating rows back; nothing here waits for a timer.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from test_catalog_support import (
    OWNER,
    catalog_settings,
    listed_keys,
    make_pack,
    record_engagement,
)

from omnizap.catalog import tasks
from omnizap.catalog.derive import SNAPSHOT_READ_FLAG
from omnizap.catalog.metrics import RankingGenerationCollector, snapshot_pending, snapshot_pending_depth
from omnizap.catalog.service import CatalogService
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    sticker_catalog_generation,
    sticker_pack_score_snapshot,
    sticker_worker_task_queue,
)
from omnizap.platform.db.types import utcnow
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.metrics import QueueDepthCollector
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.storage import local_storage

TAMPERED_TREND = 19.5  # a value no real pack here reaches: seeing it means the snapshot was read


class Clock:
    """A settable clock: datetimes for the catalog, floats for the flag cache."""

    def __init__(self, start: dt.datetime | float) -> None:
        self.now = start

    def __call__(self) -> Any:
        return self.now


@pytest.fixture
def env(db, db_settings):
    settings = catalog_settings(db_settings)
    flags = FeatureFlags(db, cache_ttl_ms=0)
    return SimpleNamespace(db=db, settings=settings, packs=PackService(db, settings), flags=flags)


def refresh(env, payload: dict, flags: FeatureFlags | None = None) -> dict:
    """One run of the task handler, as the task runner would call it."""
    context = TaskContext(
        settings=env.settings,
        database=env.db,
        storage=local_storage(env.settings),
        flags=flags or env.flags,
        task_type=tasks.RANKING_REFRESH,
    )
    return dict(tasks.TASK_HANDLERS["ranking_refresh"](context, payload))


def reader(env, **options) -> CatalogService:
    """An API process's catalog: adopts generations, never builds one while one exists."""
    return CatalogService(env.db, env.settings, flags=options.pop("flags", env.flags), **options)


def age_generations(db, seconds: float) -> None:
    """Date every generation back, as if it was published `seconds` ago (past a debounce window)."""
    with db.transaction() as connection:
        connection.execute(
            sticker_catalog_generation.update().values(
                started_at=utcnow() - dt.timedelta(seconds=seconds + 1),
                finished_at=utcnow() - dt.timedelta(seconds=seconds),
            )
        )


def generation_ids(db) -> list[int]:
    with db.read() as connection:
        return [
            row[0]
            for row in connection.execute(
                sa.select(sticker_catalog_generation.c.id)
                .where(sticker_catalog_generation.c.status == "ready")
                .order_by(sticker_catalog_generation.c.id)
            )
        ]


def tamper_snapshots(db, *, refreshed_at: dt.datetime, pack_id: str | None = None) -> None:
    """Give snapshot rows a trend no pack has, so a read shows whether it used them."""
    with db.transaction() as connection:
        query = sa.select(sticker_pack_score_snapshot.c.pack_id, sticker_pack_score_snapshot.c.scores_json)
        if pack_id is not None:
            query = query.where(sticker_pack_score_snapshot.c.pack_id == pack_id)
        for row_id, scores in connection.execute(query).all():
            connection.execute(
                sticker_pack_score_snapshot.update()
                .where(sticker_pack_score_snapshot.c.pack_id == row_id)
                .values(
                    trend_score=TAMPERED_TREND,
                    scores_json={**scores, "trend_score": TAMPERED_TREND},
                    refreshed_at=refreshed_at,
                )
            )


def trends(catalog: CatalogService) -> dict[str, float]:
    return {entry["pack_key"]: entry["signals"]["trend_score"] for entry in catalog.list_packs()["data"]}


def opens_over_the_week(days: int = 7) -> list[dt.datetime]:
    now = utcnow()
    return [now - dt.timedelta(days=day, hours=1) for day in range(days)]


# --- acceptance: an engagement burst moves the pack within one refresh ------------------------------
def test_an_engagement_burst_moves_the_pack_to_the_top_of_trending_within_one_refresh(env):
    steady = [make_pack(env.packs, env.db, f"Steady {number}") for number in range(4)]
    for pack in steady:  # one open a day for a week: trend 1 each
        record_engagement(env.db, pack.id, opens=7, opened_at=opens_over_the_week())
    rising = make_pack(env.packs, env.db, "Rising")
    assert refresh(env, {})["generation"] == "published"
    catalog = reader(env)
    assert listed_keys(catalog, sort="trending")[-1] == rising.pack_key
    built = generation_ids(env.db)

    now = utcnow()
    burst = [now - dt.timedelta(minutes=minute) for minute in range(1, 41)]
    record_engagement(env.db, rising.id, opens=40, likes=12, opened_at=burst)
    catalog.poll_changes()
    # The order of a score sort is the generation's: it moves when a refresh publishes one.
    assert listed_keys(catalog, sort="trending")[0] != rising.pack_key

    # Likes only reorder: a generation may follow the previous one after the refresh period.
    age_generations(env.db, env.settings.sticker_catalog_ranking_refresh_seconds)
    summary = refresh(env, {"pack_ids": [rising.id]})
    assert summary["mode"] == "targeted" and summary["generation"] == "published"
    assert summary["window"] == "order"
    assert summary["derived"] == 1  # the other packs entered the order with their snapshots
    catalog.poll_changes()
    assert generation_ids(env.db)[-1] > built[-1]
    assert listed_keys(catalog, sort="trending")[0] == rising.pack_key
    assert listed_keys(catalog, sort="popular")[0] == rising.pack_key
    assert listed_keys(catalog, sort="liked")[0] == rising.pack_key
    assert listed_keys(catalog, sort="downloads")[0] == rising.pack_key
    intents = catalog.intents()["data"]
    assert intents["crescendo_agora"][0]["pack_key"] == rising.pack_key
    assert intents["em_alta"][0]["pack_key"] == rising.pack_key
    assert intents["mais_curtidos"][0]["pack_key"] == rising.pack_key
    entry = catalog.list_packs(sort="trending")["data"][0]
    assert entry["signals"]["trending_now"] is True and entry["signals"]["trend_score"] > 1.4

    with env.db.read() as connection:
        snapshot = (
            connection.execute(
                sa.select(sticker_pack_score_snapshot).where(
                    sticker_pack_score_snapshot.c.pack_id == rising.id
                )
            )
            .mappings()
            .one()
        )
    assert snapshot["trend_score"] == pytest.approx(entry["signals"]["trend_score"])


def test_a_started_api_process_adopts_what_the_task_publishes_and_builds_nothing(env):
    make_pack(env.packs, env.db, "First")
    refresh(env, {})
    catalog = reader(env)
    catalog.start()
    try:
        first = catalog._generation().id
        newcomer = make_pack(env.packs, env.db, "Newcomer")
        catalog.poll_changes()
        assert newcomer.pack_key in listed_keys(catalog, sort="new")
        assert newcomer.pack_key not in listed_keys(catalog)  # not in the ranked order yet
        # A pack joining the listing needs only the short debounce.
        age_generations(env.db, env.settings.sticker_catalog_ranking_debounce_seconds)
        summary = refresh(env, {"pack_ids": [newcomer.id]})
        catalog.poll_changes()
        assert summary["generation"] == "published" and summary["window"] == "listing"
        assert catalog._generation().id == summary["generation_id"]
        assert newcomer.pack_key in listed_keys(catalog)
    finally:
        catalog.stop()
    with env.db.read() as connection:
        builders = [row[0] for row in connection.execute(sa.select(sticker_catalog_generation.c.built_by))]
    assert len(builders) == 2 and all(builder.endswith(":tasks") for builder in builders)
    assert summary["generation_id"] > first


# --- debounce and follow-ups ------------------------------------------------------------------------
def _queued_follow_ups(db) -> list[dict]:
    with db.read() as connection:
        return [
            dict(row)
            for row in connection.execute(
                sa.select(sticker_worker_task_queue).where(
                    sticker_worker_task_queue.c.task_type == tasks.RANKING_REFRESH
                )
            ).mappings()
        ]


def test_a_refresh_inside_the_debounce_window_defers_to_one_follow_up(env):
    packs = [make_pack(env.packs, env.db, f"Pack {number}") for number in range(3)]
    refresh(env, {})
    latest = generation_ids(env.db)[-1]
    with env.db.read() as connection:
        finished = connection.execute(
            sa.select(sticker_catalog_generation.c.finished_at).where(
                sticker_catalog_generation.c.id == latest
            )
        ).scalar_one()
    for number, pack in enumerate(packs):  # oldest pack most liked: every order differs from the first
        record_engagement(env.db, pack.id, likes=len(packs) - number)
        summary = refresh(env, {"pack_ids": [pack.id]})
        assert summary["generation"] == "deferred" and summary["snapshots_written"] == 1
        assert summary["window"] == "order" and summary["listed"] == 0  # orders not even computed
    follow_ups = _queued_follow_ups(env.db)
    assert len(follow_ups) == 1  # three deferrals in one window, one follow-up
    assert follow_ups[0]["payload"] == {"pack_ids": [], "follow_up": True}
    assert follow_ups[0]["idempotency_key"].endswith(f"after-generation-{latest}:order")
    reorder = dt.timedelta(seconds=env.settings.sticker_catalog_ranking_refresh_seconds)
    assert follow_ups[0]["scheduled_at"] == finished + reorder

    newcomer = make_pack(env.packs, env.db, "Newcomer")  # joins the listing: the short window
    summary = refresh(env, {"pack_ids": [newcomer.id]})
    assert summary["generation"] == "deferred" and summary["window"] == "listing"
    follow_ups = sorted(_queued_follow_ups(env.db), key=lambda row: row["scheduled_at"])
    debounce = dt.timedelta(seconds=env.settings.sticker_catalog_ranking_debounce_seconds)
    assert [row["scheduled_at"] for row in follow_ups] == [finished + debounce, finished + reorder]
    assert generation_ids(env.db)[-1] == latest

    summary = refresh(env, follow_ups[0]["payload"])  # the first follow-up, when its window ended
    assert summary["generation"] == "published" and summary["derived"] == 0
    catalog = reader(env)
    assert listed_keys(catalog, sort="liked") == [pack.pack_key for pack in [*packs, newcomer]]
    assert refresh(env, follow_ups[1]["payload"])["generation"] == "unchanged"  # nothing left to do


def test_unchanged_orders_publish_no_generation(env):
    make_pack(env.packs, env.db, "Quiet")
    refresh(env, {})
    age_generations(env.db, 60)
    assert refresh(env, {"full": True})["generation"] == "unchanged"
    assert refresh(env, {})["generation"] == "unchanged"
    assert len(generation_ids(env.db)) == 1


def test_targeted_refresh_drops_packs_that_left_the_catalog(env):
    stays = make_pack(env.packs, env.db, "Stays")
    leaves = make_pack(env.packs, env.db, "Leaves")
    hidden = make_pack(env.packs, env.db, "Hidden")
    refresh(env, {})
    env.packs.delete(OWNER, leaves.pack_key)
    env.packs.publish(OWNER, hidden.pack_key, "unlisted")
    age_generations(env.db, 60)
    summary = refresh(env, {"pack_ids": [leaves.id, hidden.id, "no-such-pack"]})
    assert summary["snapshots_deleted"] == 1 and summary["generation"] == "published"
    with env.db.read() as connection:
        kept = {row[0] for row in connection.execute(sa.select(sticker_pack_score_snapshot.c.pack_id))}
    assert kept == {stays.id, hidden.id}  # unlisted packs keep signals: their pages show them
    catalog = reader(env)
    assert listed_keys(catalog) == [stays.pack_key]


def test_payloads_are_checked():
    assert tasks.parse_payload({}) == (None, False)
    assert tasks.parse_payload({"full": True, "pack_ids": ["a"]}) == (None, False)
    assert tasks.parse_payload({"pack_ids": ["a", " b ", "a"]}) == (["a", "b"], False)
    assert tasks.parse_payload({"pack_ids": [], "follow_up": True}) == ([], True)
    for bad in ({"pack_ids": "abc"}, {"pack_ids": [None]}, {"pack_ids": [""]}, {"pack_ids": [True]}):
        with pytest.raises(ValueError, match="pack_ids"):
            tasks.parse_payload(bad)
    with pytest.raises(ValueError, match="object"):
        tasks.parse_payload(["not", "an", "object"])  # type: ignore[arg-type]


# --- acceptance: stale snapshots are not served -----------------------------------------------------
def test_a_snapshot_past_the_freshness_bound_is_not_served(env):
    pack = make_pack(env.packs, env.db, "Aging")
    refresh(env, {})
    max_age = dt.timedelta(milliseconds=env.settings.sticker_score_snapshot_max_age_ms)
    tamper_snapshots(env.db, refreshed_at=utcnow())
    assert trends(reader(env))[pack.pack_key] == TAMPERED_TREND  # fresh: served

    tamper_snapshots(env.db, refreshed_at=utcnow() - max_age - dt.timedelta(seconds=1))
    catalog = reader(env)
    assert trends(catalog)[pack.pack_key] == 0.0  # past the bound: live signals
    assert catalog.pack_detail(pack.pack_key)["signals"]["trend_score"] == 0.0
    assert catalog.intents()["data"]["crescendo_agora"] == []


def test_a_snapshot_older_than_the_packs_last_change_is_not_served(env):
    edited = make_pack(env.packs, env.db, "Edited")
    liked = make_pack(env.packs, env.db, "Liked")
    refresh(env, {})
    tamper_snapshots(env.db, refreshed_at=utcnow())
    env.packs.rename(OWNER, edited.pack_key, "Edited Again")
    record_engagement(env.db, liked.id, likes=1)
    catalog = reader(env)
    assert trends(catalog) == {edited.pack_key: 0.0, liked.pack_key: 0.0}
    assert catalog.pack_detail(liked.pack_key)["signals"]["engagement_score"] == 0.02
    assert catalog.pack_detail(edited.pack_key)["signals"]["trend_score"] == 0.0


def test_after_a_like_the_snapshot_is_rescored_as_the_refresh_would_compute_it(env):
    pack = make_pack(env.packs, env.db, "Rescored", description="tagged [pack-tags:cats,dogs]")
    record_engagement(env.db, pack.id, opens=9, opened_at=opens_over_the_week())
    refresh(env, {})
    now = utcnow()
    record_engagement(env.db, pack.id, opens=6, likes=4, opened_at=[now - dt.timedelta(minutes=5)] * 6)
    catalog = reader(env)
    rescored = catalog.pack_detail(pack.pack_key)["signals"]
    listed = catalog.list_packs()["data"][0]["signals"]
    record = catalog._current_index().get(pack.id)
    assert record is not None and record.live is not None and record.live.rescored_from is not None
    refresh(env, {"pack_ids": [pack.id]})
    computed = reader(env).pack_detail(pack.pack_key)["signals"]  # from the new snapshot
    assert computed["engagement_score"] > 0.08 and computed["trend_score"] > 1
    for signals in (rescored, listed):
        assert signals.keys() == computed.keys()
        for key, value in computed.items():
            if isinstance(value, float):
                assert signals[key] == pytest.approx(value, abs=1e-5), key
            else:
                assert signals[key] == value, key


def test_a_loaded_snapshot_is_dropped_from_memory_when_it_passes_the_bound(env):
    pack = make_pack(env.packs, env.db, "In Memory")
    refresh(env, {})
    refreshed = utcnow()
    tamper_snapshots(env.db, refreshed_at=refreshed)
    clock = Clock(refreshed + dt.timedelta(seconds=1))
    catalog = reader(env, clock=clock)
    assert trends(catalog)[pack.pack_key] == TAMPERED_TREND
    max_age = dt.timedelta(milliseconds=env.settings.sticker_score_snapshot_max_age_ms)

    clock.now = refreshed + max_age - dt.timedelta(seconds=1)
    catalog.poll_changes()
    assert trends(catalog)[pack.pack_key] == TAMPERED_TREND  # still inside the bound
    clock.now = refreshed + max_age
    catalog.poll_changes()
    assert trends(catalog)[pack.pack_key] == 0.0  # no event, no reload: the bound alone
    assert catalog.pack_detail(pack.pack_key)["signals"]["trend_score"] == 0.0


# --- acceptance: the flag switches the read path ----------------------------------------------------
def test_the_flag_switches_between_snapshots_and_live_signals(env):
    packs = [make_pack(env.packs, env.db, f"Flagged {number}") for number in range(2)]
    refresh(env, {})
    tamper_snapshots(env.db, refreshed_at=utcnow())
    catalog = reader(env)
    assert set(trends(catalog).values()) == {TAMPERED_TREND}

    with env.db.transaction() as connection:  # the runbook's emergency SQL
        connection.exec_driver_sql(
            "UPDATE feature_flag SET is_enabled = 0, rollout_percent = 0, updated_by = 'ops' "
            f"WHERE flag_name = '{SNAPSHOT_READ_FLAG}'"
        )
    catalog.poll_changes()
    assert set(trends(catalog).values()) == {0.0}
    assert catalog.pack_detail(packs[0].pack_key)["signals"]["trend_score"] == 0.0
    assert catalog.intents()["data"]["em_alta"][0]["signals"]["trend_score"] == 0.0

    env.flags.set_flag(SNAPSHOT_READ_FLAG, enabled=True, rollout_percent=100, updated_by="test")
    catalog.poll_changes()
    assert set(trends(catalog).values()) == {TAMPERED_TREND}
    assert catalog.pack_detail(packs[0].pack_key)["signals"]["trend_score"] == TAMPERED_TREND


def test_a_flag_change_takes_effect_within_the_flag_cache_ttl(env):
    pack = make_pack(env.packs, env.db, "Cached Flag")
    refresh(env, {})
    tamper_snapshots(env.db, refreshed_at=utcnow())
    ticks = Clock(1000.0)
    flags = FeatureFlags(env.db, cache_ttl_ms=30_000, clock=ticks)
    catalog = reader(env, flags=flags)
    assert trends(catalog)[pack.pack_key] == TAMPERED_TREND
    env.flags.set_flag(SNAPSHOT_READ_FLAG, enabled=False, updated_by="ops")
    ticks.now += 29
    catalog.poll_changes()
    assert trends(catalog)[pack.pack_key] == TAMPERED_TREND  # the cached flag row
    ticks.now += 2
    catalog.poll_changes()
    assert trends(catalog)[pack.pack_key] == 0.0


def test_a_partial_rollout_decides_per_pack_everywhere(env):
    packs = [make_pack(env.packs, env.db, f"Canary {number}") for number in range(6)]
    refresh(env, {})
    tamper_snapshots(env.db, refreshed_at=utcnow())
    env.flags.set_flag(SNAPSHOT_READ_FLAG, enabled=True, rollout_percent=50, updated_by="ops")
    catalog = reader(env)
    seen = trends(catalog)
    for pack in packs:
        reads_snapshot = env.flags.is_enabled(SNAPSHOT_READ_FLAG, pack.id)
        expected = TAMPERED_TREND if reads_snapshot else 0.0
        assert seen[pack.pack_key] == expected
        assert catalog.pack_detail(pack.pack_key)["signals"]["trend_score"] == expected


def test_with_the_flag_off_a_targeted_refresh_computes_every_pack(env):
    packs = [make_pack(env.packs, env.db, f"Live {number}") for number in range(4)]
    refresh(env, {})
    age_generations(env.db, 3600)  # past every window: the refresh computes the orders
    assert refresh(env, {"pack_ids": [packs[0].id]})["derived"] == 1
    age_generations(env.db, 3600)
    env.flags.set_flag(SNAPSHOT_READ_FLAG, enabled=False, updated_by="ops")
    summary = refresh(env, {"pack_ids": [packs[0].id]})
    assert summary["mode"] == "full" and summary["derived"] == len(packs)


# --- fresh install ----------------------------------------------------------------------------------
def test_a_fresh_install_without_any_task_still_lists_packs(env):
    pack = make_pack(env.packs, env.db, "Day One")
    catalog = reader(env)
    assert listed_keys(catalog) == [pack.pack_key]
    assert listed_keys(catalog, sort="trending") == [pack.pack_key]
    assert len(generation_ids(env.db)) == 1  # the one fallback build
    second = reader(env)  # another process: adopts it
    assert listed_keys(second) == [pack.pack_key] and len(generation_ids(env.db)) == 1


# --- the pending gauge ------------------------------------------------------------------------------
def _gauges(*collectors) -> dict[str, float]:
    found: dict[str, float] = {}
    for collector in collectors:
        for family in collector.collect():
            for sample in family.samples:
                label = sample.labels.get("queue")
                found[f"{sample.name}{{{label}}}" if label else sample.name] = sample.value
    return found


PENDING = "omnizap_queue_depth{sticker_pack_score_snapshot_pending}"
AGE = "omnizap_ranking_generation_age_seconds"


def test_the_pending_gauge_counts_snapshots_that_cannot_be_read(env):
    packs = [make_pack(env.packs, env.db, f"Gauge {number}") for number in range(3)]
    make_pack(env.packs, env.db, "Private", visibility="private")
    clock = Clock(utcnow())
    depths = QueueDepthCollector(env.db, [snapshot_pending_depth(env.db, env.settings, clock)])
    generations = RankingGenerationCollector(env.db, clock)
    gauges = _gauges(depths, generations)
    assert gauges[PENDING] == 3 and gauges["omnizap_queue_depth_scrape_ok"] == 1
    assert gauges["omnizap_queue_depth{sticker_worker_tasks_pending}"] == 0  # one family for both
    assert AGE not in gauges

    refresh(env, {})
    clock.now = utcnow()
    assert _gauges(depths)[PENDING] == 0
    record_engagement(env.db, packs[0].id, likes=1)  # newer than its snapshot
    env.packs.rename(OWNER, packs[1].pack_key, "Gauge Renamed")
    clock.now = utcnow()
    assert snapshot_pending(env.db, env.settings, clock.now) == 2
    refresh(env, {"pack_ids": [packs[0].id, packs[1].id]})
    clock.now = utcnow()
    gauges = _gauges(depths, generations)
    assert gauges[PENDING] == 0 and gauges[AGE] >= 0
    clock.now += dt.timedelta(milliseconds=env.settings.sticker_score_snapshot_max_age_ms)
    gauges = _gauges(depths, generations)
    assert gauges[PENDING] == 3  # all past the bound
    assert gauges[AGE] >= env.settings.sticker_score_snapshot_max_age_ms / 1000


def test_the_gauges_report_an_unreadable_database(tmp_path, settings):
    broken = Database(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    gauges = _gauges(
        QueueDepthCollector(broken, [snapshot_pending_depth(broken, settings)]),
        RankingGenerationCollector(broken),
    )
    assert gauges == {"omnizap_queue_depth_scrape_ok": 0}
