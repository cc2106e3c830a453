"""`omnizap demo seed` and the batched PackService.create_packs it uses, on every database engine."""

from __future__ import annotations

import collections
import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from omnizap.catalog.demo import seeder as seeder_module
from omnizap.catalog.demo.images import LABEL_MAX, design_sticker, render_source
from omnizap.catalog.demo.plan import TAG_MARKER_PREFIX, plan_catalog
from omnizap.catalog.demo.seeder import DemoSeeder, DemoSeedError, SeedOptions
from omnizap.catalog.demo.themes import THEMES
from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.core.errors import InvalidInput, PackLimitReached, StickerNotFound
from omnizap.core.packs import repository as pack_repository
from omnizap.core.packs.export import WhatsAppExporter
from omnizap.core.packs.service import NewPack, NewPackItem, PackService
from omnizap.core.stickers.media import validate_whatsapp_sticker
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.db.schema import (
    domain_event_outbox,
    sticker_asset,
    sticker_pack,
    sticker_pack_engagement,
    sticker_pack_interaction_event,
    sticker_pack_item,
)
from omnizap.platform.storage import local_storage

TAGS_MARKER = re.compile(r" ?\[pack-tags:([a-z0-9]+(?:-[a-z0-9]+)*(?:,[a-z0-9]+(?:-[a-z0-9]+)*){0,7})\]$")
TRENDING_THRESHOLD = 1.4  # the ranking's trending_now (pipeline §4.1)


# --- helpers ----------------------------------------------------------------------------------------
def rows(db: Database, query: Any) -> list[dict[str, Any]]:
    with db.read() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def count(db: Database, table: sa.Table) -> int:
    with db.read() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def trend(opens: list[dt.datetime], now: dt.datetime) -> float:
    last_day = sum(1 for moment in opens if moment >= now - dt.timedelta(days=1))
    last_week = sum(1 for moment in opens if moment >= now - dt.timedelta(days=7))
    return last_day / max(0.5, last_week / 7)


def add_assets(db: Database, number: int, owner: str = "demo.test") -> list[str]:
    """Sticker rows inserted directly: the create_packs tests are about packs, not conversion."""
    ids = [f"00000000-0000-4000-8000-{index:012d}" for index in range(number)]
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert(),
            [
                {
                    "id": sid,
                    "owner_jid": owner,
                    "sha256": f"{index:064d}",
                    "size_bytes": 100,
                    "storage_path": sid,
                }
                for index, sid in enumerate(ids)
            ],
        )
    return ids


# --- the seeded catalog -----------------------------------------------------------------------------
def test_seed_writes_a_realistic_consistent_catalog(db: Database, db_settings: Settings) -> None:
    storage = local_storage(db_settings)
    report = DemoSeeder(db, storage, db_settings).seed(SeedOptions(packs=12, max_stickers=4, seed=7))
    now = report.reference_time

    assert not report.interrupted
    packs = rows(db, sa.select(sticker_pack))
    assert len(packs) == report.packs_written == 12
    assert collections.Counter(pack["visibility"] for pack in packs) == {
        "public": 9,
        "unlisted": 2,
        "private": 1,
    }
    assert report.to_dict()["packs_by_visibility"] == {"public": 9, "unlisted": 2, "private": 1}

    # Same seed, same catalog: what was written is exactly the plan.
    plan = plan_catalog(
        seed=7, packs=12, max_stickers=4, max_packs_per_owner=db_settings.sticker_pack_max_packs_per_owner
    )
    planned = [plan.pack(outline, now) for outline in plan.packs]
    items = rows(db, sa.select(sticker_pack_item))
    size_of = collections.Counter(item["pack_id"] for item in items)
    assert sorted(
        (p["name"], p["publisher"], p["description"], p["visibility"], size_of[p["id"]]) for p in packs
    ) == sorted(
        (pp.name, pp.publisher, pp.description, pp.outline.visibility, pp.outline.size) for pp in planned
    )
    assert len({pack["owner_jid"] for pack in packs}) == report.to_dict()["owners"] == len(plan.owners)

    # Stickers: 3+ distinct per pack, never mixed, every file stored and a valid WhatsApp sticker.
    assets = {asset["id"]: asset for asset in rows(db, sa.select(sticker_asset))}
    assert len(assets) == report.stickers_created == len(plan.static_designs) + len(plan.animated_designs)
    for asset in assets.values():
        info = validate_whatsapp_sticker(storage.get(asset["storage_path"]))
        assert info.is_animated == bool(asset["is_animated"])
        assert asset["created_at"] < min(pack["created_at"] for pack in packs)  # older than any pack
    by_pack: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for item in items:
        by_pack[item["pack_id"]].append(item)
    animated_packs = 0
    for pack in packs:
        pack_items = sorted(by_pack[pack["id"]], key=lambda item: item["position"])
        assert 3 <= len(pack_items) <= 4
        assert [item["position"] for item in pack_items] == list(range(1, len(pack_items) + 1))
        assert len({item["sticker_id"] for item in pack_items}) == len(pack_items)
        kinds = {bool(assets[item["sticker_id"]]["is_animated"]) for item in pack_items}
        assert len(kinds) == 1, f"pack {pack['name']} mixes static and animated stickers"
        animated_packs += kinds == {True}
        assert pack["cover_sticker_id"] == pack_items[0]["sticker_id"]
        for item in pack_items:
            assert 1 <= len(item["emojis"]) <= 3
            assert item["accessibility_label"] and len(item["accessibility_label"]) <= LABEL_MAX
            assert item["created_at"] == pack["created_at"]
        marker = TAGS_MARKER.search(pack["description"])
        assert marker, pack["description"]
        assert 1 <= len(marker.group(1).split(",")) <= 8
        assert pack["version"] == 1 and pack["updated_at"] == pack["created_at"]
        assert now - dt.timedelta(days=181) < pack["created_at"] < now - dt.timedelta(days=1)
    assert animated_packs == report.animated_packs >= 1
    assert len({pack["created_at"].date() for pack in packs}) > 6  # spread over months, not one moment

    # The outbox has exactly one PACK_UPDATED "created" event per pack (same transaction as the pack).
    events = rows(
        db, sa.select(domain_event_outbox).where(domain_event_outbox.c.event_type == "PACK_UPDATED")
    )
    assert sorted(event["aggregate_id"] for event in events) == sorted(pack["id"] for pack in packs)
    assert {event["payload"]["action"] for event in events} == {"created"}

    # Engagement: counters cover the windowed events, events lie in [created, now], trends as planned.
    counters = {row["pack_id"]: row for row in rows(db, sa.select(sticker_pack_engagement))}
    interactions = rows(db, sa.select(sticker_pack_interaction_event))
    assert len(counters) == report.engagement_rows and len(interactions) == report.interaction_events > 0
    pack_by_id = {pack["id"]: pack for pack in packs}
    per_pack: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    opens: dict[str, list[dt.datetime]] = collections.defaultdict(list)
    for event in interactions:
        pack = pack_by_id[event["pack_id"]]
        assert pack["visibility"] != "private" and event["pack_id"] in counters
        assert pack["created_at"] <= event["created_at"] <= now
        assert event["created_at"] >= now - dt.timedelta(days=14)
        assert event["source"] in {"web", "whatsapp"}
        assert re.fullmatch(r"viewer:[0-9a-f]{16}", event["actor_key"])
        assert re.fullmatch(r"s:[0-9a-f]{16}", event["session_key"])
        per_pack[event["pack_id"]][event["interaction"]] += 1
        if event["interaction"] == "open":
            opens[event["pack_id"]].append(event["created_at"])
    for pack_id, counter in counters.items():
        assert counter["open_count"] >= per_pack[pack_id]["open"] and counter["open_count"] > 0
        assert counter["like_count"] >= per_pack[pack_id]["like"]
        assert counter["dislike_count"] >= per_pack[pack_id]["dislike"]
        if opens[pack_id]:
            assert counter["last_opened_at"] == max(opens[pack_id])
    # Names may repeat; name and creation time identify a planned pack.
    trending_planned = {(pp.name, pp.created_at) for pp in planned if pp.outline.trending}
    trending_found = {
        (pack_by_id[pack_id]["name"], pack_by_id[pack_id]["created_at"])
        for pack_id in opens
        if trend(opens[pack_id], now) >= TRENDING_THRESHOLD
    }
    assert trending_found == trending_planned and len(trending_planned) == report.trending_packs == 1

    # And every pack exports to WhatsApp as it is.
    exporter = WhatsAppExporter(db, storage, db_settings)
    service = PackService(db, db_settings)
    for pack in packs:
        assert exporter.problems(service.get_by_key(pack["pack_key"])) == []


def test_same_seed_plans_the_same_catalog_and_another_seed_does_not() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def catalog(seed: int) -> list[tuple[Any, ...]]:
        plan = plan_catalog(seed=seed, packs=40, max_stickers=30, max_packs_per_owner=50)
        packs = [plan.pack(outline, now) for outline in plan.packs]
        return [
            (
                p.name,
                p.publisher,
                p.tags,
                p.outline.size,
                p.outline.visibility,
                p.outline.animated,
                p.created_at,
            )
            for p in packs
        ] + [tuple(item.label for item in p.items) for p in packs]

    assert catalog(5) == catalog(5)
    assert catalog(5) != catalog(6)
    assert design_sticker(5, 3, "gatos", animated=False) == design_sticker(5, 3, "gatos", animated=False)
    assert render_source(design_sticker(5, 3, "gatos", animated=True)) == render_source(
        design_sticker(5, 3, "gatos", animated=True)
    )


def test_plan_mix_sizes_owners_and_text_at_scale() -> None:
    plan = plan_catalog(seed=1, packs=1_000, max_stickers=30, max_packs_per_owner=50)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    visibility = collections.Counter(outline.visibility for outline in plan.packs)
    assert visibility == {"public": 750, "unlisted": 150, "private": 100}
    sizes = [outline.size for outline in plan.packs]
    assert min(sizes) == 3 and max(sizes) == 30 and 50 <= sizes.count(30) <= 120  # ~8% complete
    assert 6 <= sorted(sizes)[len(sizes) // 2] <= 12
    assert sum(outline.animated for outline in plan.packs) == 120
    per_owner = collections.Counter(outline.owner for outline in plan.packs)
    assert max(per_owner.values()) <= 10 and 1000 / 10 <= len(plan.owners) <= 1000 / 5 + 1
    assert 10 <= sum(outline.trending for outline in plan.packs) <= 30  # ~2.5% of the public packs
    packs = [plan.pack(outline, now) for outline in plan.packs]
    assert len({p.name for p in packs}) > 120 and len({p.publisher for p in packs}) > 40
    assert any(not p.name.isascii() for p in packs)  # accents and emojis
    assert {p.language for p in packs} == {"pt", "en"}
    for p in packs:
        assert p.description.endswith("]") and TAG_MARKER_PREFIX in p.description
        assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", tag) for tag in p.tags) and 1 <= len(p.tags) <= 8
    # Long tail: most packs are quiet, a few are opened thousands of times.
    opens = sorted(e.open_count for p in packs if (e := plan.engagement(p, now)) is not None)
    assert opens[len(opens) // 2] < 60 and opens[-1] > 1_000
    # Captions are drawn with Pillow's bundled font, which has no accented glyphs.
    assert all(caption.isascii() for theme in THEMES for caption in theme.captions)


def test_owner_limit_is_respected_and_a_second_run_that_would_pass_it_is_refused(
    db: Database, db_settings: Settings
) -> None:
    settings = db_settings.model_copy(update={"sticker_pack_max_packs_per_owner": 2})
    seeder = DemoSeeder(db, local_storage(settings), settings)
    seeder.seed(SeedOptions(packs=5, max_stickers=3, seed=11))
    per_owner = collections.Counter(pack["owner_jid"] for pack in rows(db, sa.select(sticker_pack)))
    assert sum(per_owner.values()) == 5 and max(per_owner.values()) <= 2

    with pytest.raises(DemoSeedError, match="STICKER_PACK_MAX_PACKS_PER_OWNER=2"):
        seeder.seed(SeedOptions(packs=5, max_stickers=3, seed=11))
    assert count(db, sticker_pack) == 5


def test_interrupt_inside_a_batch_leaves_only_whole_packs(
    db: Database, db_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = pack_repository.insert_items
    calls = 0

    def insert_items_then_stop(connection: Any, item_rows: Any) -> None:
        nonlocal calls
        calls += 1
        original(connection, item_rows)
        if calls == 2:  # the second batch's packs and events are written, its transaction is open
            raise KeyboardInterrupt

    monkeypatch.setattr(pack_repository, "insert_items", insert_items_then_stop)
    report = DemoSeeder(db, local_storage(db_settings), db_settings).seed(
        SeedOptions(packs=4, max_stickers=3, seed=2, batch_size=1)
    )
    assert report.interrupted and report.packs_written == 1
    packs = rows(db, sa.select(sticker_pack))
    assert len(packs) == 1
    outbox = rows(
        db, sa.select(domain_event_outbox).where(domain_event_outbox.c.event_type == "PACK_UPDATED")
    )
    assert sorted(event["aggregate_id"] for event in outbox) == sorted(pack["id"] for pack in packs)
    assert {item["pack_id"] for item in rows(db, sa.select(sticker_pack_item))} == {
        pack["id"] for pack in packs
    }
    assert count(db, sticker_pack_item) == 3  # the 3 stickers asked for


# --- PackService.create_packs -----------------------------------------------------------------------
def test_create_packs_writes_a_batch_with_items_events_and_history(
    db: Database, db_settings: Settings
) -> None:
    service = PackService(db, db_settings)
    stickers = add_assets(db, 4)
    created_at = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    packs = service.create_packs(
        [
            NewPack(
                "demo.test",
                "Gatinhos 🐱",
                publisher="Ana",
                description="Fofos [pack-tags:gatos]",
                items=[
                    NewPackItem(stickers[0], emojis=["🐱", "😺"], accessibility_label="Gato\tlaranja"),
                    NewPackItem(stickers[1], emojis="😹"),
                    NewPackItem(stickers[0], emojis=["🙀"]),  # a repeat: kept once, at its first place
                ],
                created_at=created_at,
            ),
            NewPack("demo.test", "Sem stickers", visibility="unlisted"),
        ]
    )
    assert [pack.sticker_count for pack in packs] == [2, 0]
    first = packs[0]
    assert first.version == 1 and first.cover_sticker_id == stickers[0]
    assert first.created_at == first.updated_at == created_at and first.publisher == "Ana"
    assert packs[1].visibility == "unlisted" and packs[1].cover_sticker_id is None
    assert packs[1].publisher == db_settings.sticker_default_publisher
    items = service.items(first.id)
    assert [(item.sticker_id, item.emojis, item.accessibility_label) for item in items] == [
        (stickers[0], ["🐱", "😺"], "Gato laranja"),
        (stickers[1], ["😹"], None),
    ]
    assert all(item.created_at == created_at for item in items)
    events = rows(
        db, sa.select(domain_event_outbox).where(domain_event_outbox.c.event_type == "PACK_UPDATED")
    )
    assert sorted((event["aggregate_id"], event["payload"]["action"]) for event in events) == sorted(
        (pack.id, "created") for pack in packs
    )
    assert service.create_packs([]) == []


def test_create_packs_refuses_a_bad_batch_whole(db: Database, db_settings: Settings) -> None:
    settings = db_settings.model_copy(
        update={"sticker_pack_max_packs_per_owner": 3, "sticker_pack_max_items": 2}
    )
    service = PackService(db, settings)
    stickers = add_assets(db, 3)
    service.create_pack("demo.full", "Existing")
    with pytest.raises(PackLimitReached, match=r"has 1 packs and 3 more"):
        service.create_packs([NewPack("demo.full", f"Pack {n}") for n in range(3)])
    with pytest.raises(StickerNotFound):
        service.create_packs(
            [
                NewPack("demo.other", "Fine", items=[NewPackItem(stickers[0])]),
                NewPack("demo.other", "Bad", items=[NewPackItem("00000000-0000-4000-8000-999999999999")]),
            ]
        )
    with pytest.raises(PackLimitReached, match="at most 2 stickers"):
        service.create_packs([NewPack("demo.other", "Too big", items=[NewPackItem(sid) for sid in stickers])])
    with pytest.raises(InvalidInput, match="time zone"):
        service.create_packs([NewPack("demo.other", "Naive", created_at=dt.datetime(2025, 1, 1))])
    with pytest.raises(InvalidInput, match="future"):
        service.create_packs(
            [NewPack("demo.other", "Later", created_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))]
        )
    with pytest.raises(InvalidInput, match="visibility"):
        service.create_packs([NewPack("demo.other", "Odd", visibility="friends")])
    assert count(db, sticker_pack) == 1 and count(db, sticker_pack_item) == 0
    assert service.create_packs([NewPack("demo.full", "Two more"), NewPack("demo.full", "And another")])
    assert count(db, sticker_pack) == 3


# --- the command ------------------------------------------------------------------------------------
@pytest.fixture
def run(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Invoke `omnizap demo …` with DATABASE_URL pointing at the engine under test."""
    yield from _runner(db_settings, monkeypatch)


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo-template") / "omnizap.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    return path


@pytest.fixture
def sqlite_settings(tmp_path: Path, migrated_sqlite_file: Path) -> Settings:
    """A private, migrated SQLite database (a copy of one migrated file), for command tests where
    one engine is enough."""
    path = tmp_path / "demo.db"
    shutil.copyfile(migrated_sqlite_file, path)
    return Settings(
        _env_file=None,
        database_url=f"sqlite:///{path}",
        sticker_storage_dir=tmp_path / "stickers",
    )


@pytest.fixture
def run_sqlite(sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _runner(sqlite_settings, monkeypatch)


def _runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(settings.sticker_storage_dir))
    reset_settings_cache()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        reset_settings_cache()
        return CliRunner().invoke(cli, ["demo", *args], catch_exceptions=False)

    yield invoke
    reset_settings_cache()


def test_cli_seeds_with_worker_processes_then_if_empty_skips(
    run_sqlite: Any, sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite only: worker processes use the same ingest as the in-process path tested on every engine.
    monkeypatch.setattr(seeder_module, "PARALLEL_MIN_STICKERS", 2)  # use workers even for a tiny pool
    real_ingest_in_processes = DemoSeeder._ingest_in_processes
    worker_runs: list[int] = []

    def counting(self: DemoSeeder, tasks: Any, jobs: int, record: Any) -> None:
        worker_runs.append(jobs)
        real_ingest_in_processes(self, tasks, jobs, record)

    monkeypatch.setattr(DemoSeeder, "_ingest_in_processes", counting)
    result = run_sqlite(
        "seed", "--packs", "6", "--stickers-per-pack", "3", "--seed", "3", "--jobs", "2", "--json"
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert worker_runs == [2]
    summary = json.loads(result.stdout)
    assert summary["packs_written"] == 6 and not summary["interrupted"]
    assert summary["packs_by_visibility"] == {"public": 4, "unlisted": 1, "private": 1}
    db = Database(sqlite_settings.database_url)
    assert summary["stickers_created"] == count(db, sticker_asset) > 0
    assert summary["interaction_events"] == count(db, sticker_pack_interaction_event)
    storage = local_storage(sqlite_settings)
    for asset in rows(db, sa.select(sticker_asset)):
        validate_whatsapp_sticker(storage.get(asset["storage_path"]))

    skipped = run_sqlite("seed", "--if-empty", "--packs", "120")
    assert skipped.exit_code == 0, skipped.output
    assert "skipped" in skipped.stdout and "already has 6 packs" in skipped.stdout
    assert count(db, sticker_pack) == 6
    db.dispose()


def test_cli_prints_a_readable_summary(run_sqlite: Any) -> None:
    result = run_sqlite("seed", "--packs", "3", "--stickers-per-pack", "3", "--seed", "9", "--jobs", "1")
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("demo catalog: 3 packs in ") and lines[0].endswith("(seed 9)")
    assert "public 2, unlisted 1, private 0" in lines[1] or "public 3" in lines[1]
    assert "owners      1" in result.stdout and "pack items" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--packs", "0"], "give at least 1 pack, got 0"),
        (["--packs", "-5"], "give at least 1 pack, got -5"),
        (["--packs", "10000000"], "at most 100,000 packs per run"),
        (["--packs", "many"], "'many' is not a valid integer"),
        (["--packs", "5", "--stickers-per-pack", "0"], "holds 3 to 30 stickers, got 0"),
        (["--packs", "5", "--stickers-per-pack", "2"], "holds 3 to 30 stickers, got 2"),
        (["--packs", "5", "--stickers-per-pack", "31"], "holds 3 to 30 stickers, got 31"),
        (["--packs", "5", "--stickers-per-pack", "2.5"], "'2.5' is not a valid integer"),
        (["--packs", "5", "--jobs", "0"], "0 is not in the range 1<=x<=64"),
        ([], "Missing option '--packs'"),
    ],
)
def test_cli_refuses_bad_arguments(
    run_sqlite: Any, args: list[str], message: str, sqlite_settings: Settings
) -> None:
    result = run_sqlite("seed", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not sqlite_settings.sticker_storage_dir.exists()  # refused before any work


def test_cli_refuses_a_pack_size_above_the_configured_maximum(run_sqlite: Any) -> None:
    result = run_sqlite(
        "seed", "--packs", "5", "--stickers-per-pack", "20", env={"STICKER_PACK_MAX_ITEMS": "10"}
    )
    assert result.exit_code == 1
    assert (
        "--stickers-per-pack must be between 3 and 10 (STICKER_PACK_MAX_ITEMS is 10), got 20" in result.stderr
    )
    too_small = run_sqlite("seed", "--packs", "5", env={"STICKER_PACK_MAX_ITEMS": "2"})
    assert too_small.exit_code == 1 and "raise STICKER_PACK_MAX_ITEMS to 3 or more" in too_small.stderr


def test_seeder_refuses_bad_options_directly(db_settings: Settings, db: Database) -> None:
    seeder = DemoSeeder(db, local_storage(db_settings), db_settings)
    for options in (SeedOptions(packs=0), SeedOptions(packs=100_001), SeedOptions(packs=3, max_stickers=31)):
        with pytest.raises(DemoSeedError):
            seeder.seed(options)
    assert count(db, sticker_pack) == 0 and seeder_module.MAX_PACKS == 100_000
