"""Theme curation and rebuild on every engine, against synthetic stickers with known true themes.

The data (omnizap.intelligence.curation.synthetic) has noisy labels, per-theme embedding clusters
with close sibling subthemes, near-copies, NSFW stickers, low-quality ones and hostile rows. The
tests check the packs against the ground truth, not against what the planner happens to do.
"""

from __future__ import annotations

import collections
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from omnizap.config import Settings
from omnizap.core.errors import InvalidInput, PackNotFound
from omnizap.core.packs.service import PackService
from omnizap.intelligence.curation.applier import LeaseLost
from omnizap.intelligence.curation.cycle import run_cycle
from omnizap.intelligence.curation.policy import LEASE_NAME
from omnizap.intelligence.curation.synthetic import SyntheticSet, generate, pack_purity
from omnizap.intelligence.curation.tasks import TASK_HANDLERS
from omnizap.platform import leases
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    domain_event_outbox,
    sticker_asset_classification,
    sticker_pack,
    sticker_pack_item,
)
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.metrics.curation import CurationMetrics
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.storage.local import LocalStorage

OWNER = "omnizap-auto"
THEMES = ("animals/cats", "animals/dogs", "food/meals", "food/sweets", "vehicles/cars", "sports/fitness")
HOSTILE_REASON = {
    "null_theme": "missing_theme",
    "unknown_theme": "unknown_theme",
    "garbage_embedding": "invalid_embedding",
    "short_embedding": "invalid_embedding",
    "bad_confidence": "invalid_confidence",
}


def _settings(db: Database, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        **overrides,
    )


def _dataset(db: Database, count: int = 900, seed: int = 11) -> SyntheticSet:
    data = generate(
        count,
        seed=seed,
        themes=THEMES,
        dimension=32,
        label_noise=0.2,
        nsfw_rate=0.08,
        duplicate_rate=0.06,
        hostile_rate=0.03,
        spread=1.6,
        finite_only=db.dialect == "mysql",  # MySQL cannot store NaN
    )
    data.insert(db)
    return data


def _metrics() -> CurationMetrics:
    return CurationMetrics(CollectorRegistry())


def _auto_packs(db: Database) -> dict[str, dict[str, Any]]:
    """Live packs of the system owner with their item ids, by pack id."""
    with db.read() as connection:
        packs = {
            row["id"]: {**row, "items": []}
            for row in connection.execute(
                sa.select(sticker_pack).where(
                    sticker_pack.c.owner_jid == OWNER, sticker_pack.c.deleted_at.is_(None)
                )
            ).mappings()
        }
        items = connection.execute(
            sa.select(sticker_pack_item.c.pack_id, sticker_pack_item.c.sticker_id).order_by(
                sticker_pack_item.c.pack_id, sticker_pack_item.c.position
            )
        )
        for pack_id, sticker_id in items:
            if pack_id in packs:
                packs[pack_id]["items"].append(sticker_id)
    return packs


def _state(db: Database) -> tuple[Any, ...]:
    """Everything a cycle could change: pack rows, items and outbox events."""
    with db.read() as connection:
        packs = connection.execute(sa.select(sticker_pack).order_by(sticker_pack.c.id)).all()
        items = connection.execute(
            sa.select(
                sticker_pack_item.c.pack_id, sticker_pack_item.c.sticker_id, sticker_pack_item.c.position
            ).order_by(sticker_pack_item.c.pack_id, sticker_pack_item.c.position)
        ).all()
        events = connection.execute(sa.select(sa.func.count()).select_from(domain_event_outbox)).scalar_one()
    return tuple(packs), tuple(items), events


def _embeddings(db: Database, ids: list[str]) -> dict[str, np.ndarray]:
    with db.read() as connection:
        rows = connection.execute(
            sa.select(
                sticker_asset_classification.c.asset_id, sticker_asset_classification.c.embedding
            ).where(sticker_asset_classification.c.asset_id.in_(ids))
        )
        return {asset_id: np.frombuffer(bytes(blob), dtype="<f4") for asset_id, blob in rows}


def _converge(db: Database, settings: Settings, kind: str = "curation", limit: int = 30) -> list[dict]:
    summaries = []
    for _ in range(limit):
        summary = run_cycle(kind, database=db, settings=settings, metrics=_metrics())  # type: ignore[arg-type]
        summaries.append(summary)
        if summary["status"] == "idle":
            return summaries
    raise AssertionError(f"{kind} did not settle in {limit} cycles: {summaries[-1]}")


def test_curation_fills_pure_packs_within_budget_and_settles(db: Database, tmp_path: Path) -> None:
    data = _dataset(db)
    settings = _settings(db, tmp_path, sticker_auto_pack_by_tags_max_additions_per_cycle=120)
    summaries = _converge(db, settings)
    assert len(summaries) >= 3  # the budget really limited the early cycles
    for summary in summaries:
        assert summary["added"] <= 120
        assert summary["removed"] == 0

    # Hostile rows: skipped with their reason, counted exactly, never fatal.
    expected = collections.Counter(
        HOSTILE_REASON[truth.hostile] for truth in data.truth.values() if truth.hostile is not None
    )
    assert sum(expected.values()) >= 10
    first = summaries[0]["skipped"]
    for reason, count in expected.items():
        assert first[reason] == count, (reason, first)

    packs = _auto_packs(db)
    assert len(packs) >= 12
    placed = [item for pack in packs.values() for item in pack["items"]]
    assert len(placed) == len(set(placed))  # a sticker is in one auto pack at most
    assert len(placed) >= 0.4 * len(data.truth)
    hostile_ids = {truth.asset_id for truth in data.truth.values() if truth.hostile}
    assert not hostile_ids & set(placed)
    assert not {truth.asset_id for truth in data.truth.values() if truth.low_quality} & set(placed)
    volumes: dict[tuple[str, bool], list[int]] = collections.defaultdict(list)
    for pack in packs.values():
        theme, sensitive, count = pack["pack_theme_key"], bool(pack["is_sensitive"]), len(pack["items"])
        assert pack_purity(pack["items"], theme, data.truth) >= 0.9, pack["name"]
        nsfw = {data.truth[item].nsfw for item in pack["items"]}
        assert nsfw == {sensitive}, pack["name"]  # never mixed, and the flag says which
        assert 12 <= count <= 30
        assert pack["is_auto_pack"] == 1
        assert (pack["pack_status"], pack["status"]) == (
            ("ready", "published") if count >= 20 else ("building", "draft")
        )
        assert pack["visibility"] == "public" and pack["publisher"] == "OmniZap Auto"
        assert pack["description"].startswith(f"[auto-theme:{theme}]")
        assert pack["name"].startswith("[AUTO] ") and pack["name"].endswith(f" • Vol. {pack['pack_volume']}")
        assert pack["cover_sticker_id"] == pack["items"][0]
        volumes[(theme, sensitive)].append(pack["pack_volume"])
    for found in volumes.values():
        assert sorted(found) == list(range(1, len(found) + 1))
    assert any(sensitive for _, sensitive in volumes)  # NSFW stickers got packs of their own

    # Near-duplicates stay out: no two stickers of one theme's packs are that similar.
    by_theme: dict[str, list[str]] = collections.defaultdict(list)
    for pack in packs.values():
        by_theme[pack["pack_theme_key"]].extend(pack["items"])
    vectors = _embeddings(db, placed)
    for ids in by_theme.values():
        matrix = np.stack([vectors[item] for item in ids])
        similarity = matrix @ matrix.T
        np.fill_diagonal(similarity, 0)
        assert similarity.max() < 0.985
    assert any(truth.duplicate_of in placed for truth in data.truth.values() if truth.duplicate_of)

    # A further cycle on unchanged data changes nothing at all.
    before = _state(db)
    again = run_cycle("curation", database=db, settings=settings, metrics=_metrics())
    assert again["status"] == "idle" and again["added"] == 0
    assert _state(db) == before
    rebuild = run_cycle("rebuild", database=db, settings=settings, metrics=_metrics())
    assert rebuild["status"] == "idle", rebuild
    assert _state(db) == before


def _set_rows(db: Database, ids: list[str], **values: Any) -> None:
    with db.transaction() as connection:
        connection.execute(
            sticker_asset_classification.update()
            .where(sticker_asset_classification.c.asset_id.in_(ids))
            .values(**values)
        )


def test_rebuild_removes_misfits_worst_first_within_budget_and_retires_undersized(
    db: Database, tmp_path: Path
) -> None:
    data = _dataset(db)
    settings = _settings(db, tmp_path, sticker_auto_pack_by_tags_max_removals_per_cycle=10)
    _converge(db, settings)
    packs = sorted(
        (pack for pack in _auto_packs(db).values() if not pack["is_sensitive"] and len(pack["items"]) == 30),
        key=lambda pack: (pack["pack_theme_key"], pack["pack_volume"]),  # ids are random; this is not
    )
    assert len(packs) >= 2
    doomed, flagged = packs[0], packs[1]
    other_theme = next(theme for theme in THEMES if theme != doomed["pack_theme_key"])
    _set_rows(db, doomed["items"][:20], theme_key=other_theme)  # 20 misfits: the pack will fall to 10
    _set_rows(db, flagged["items"][-3:], is_nsfw=1, nsfw_score=0.95)  # NSFW in a safe pack

    first = run_cycle("rebuild", database=db, settings=settings, metrics=_metrics())
    assert first["status"] == "ok" and first["removed"] == 10
    assert first["removed_by_reason"] == {"nsfw_mismatch": 3, "theme_changed": 7}  # NSFW goes first
    # 23 misfits were made; relabelling also moves two centroids, which may unseat a few more.
    assert first["skipped"]["removal_budget"] >= 13
    after = _auto_packs(db)
    assert not set(flagged["items"][-3:]) & set(after[flagged["id"]]["items"])
    assert len(after[doomed["id"]]["items"]) == 23

    summaries = [first, *_converge(db, settings, kind="rebuild")]
    assert all(summary["removed"] <= 10 for summary in summaries)
    assert sum(summary["packs_retired"] for summary in summaries) == 1
    final = _auto_packs(db)
    assert doomed["id"] not in final  # retired: under 12 stickers after its misfits left
    with db.read() as connection:
        retired = connection.execute(sa.select(sticker_pack).where(sticker_pack.c.id == doomed["id"])).one()
        left = connection.execute(
            sa.select(sa.func.count())
            .select_from(sticker_pack_item)
            .where(sticker_pack_item.c.pack_id == doomed["id"])
        ).scalar_one()
    assert retired.deleted_at is not None and retired.pack_status == "archived" and left == 0
    flagged_after = final[flagged["id"]]
    assert 20 <= len(flagged_after["items"]) <= 27 and flagged_after["pack_status"] == "ready"

    # The released and removed stickers are candidates again; curation places what still fits,
    # and the packs stay pure and unmixed.
    run_cycle("curation", database=db, settings=settings, metrics=_metrics())
    for pack in _auto_packs(db).values():
        assert pack_purity(pack["items"], pack["pack_theme_key"], data.truth) >= 0.9
        assert {data.truth[item].nsfw for item in pack["items"]} == {bool(pack["is_sensitive"])}
        assert not set(doomed["items"][:20]) & set(pack["items"]) or pack["pack_theme_key"] == other_theme


def test_rebuild_moves_a_volume_under_the_ready_size_back_to_building(db: Database, tmp_path: Path) -> None:
    _dataset(db)
    settings = _settings(db, tmp_path)
    _converge(db, settings)
    pack = min(
        (pack for pack in _auto_packs(db).values() if len(pack["items"]) == 30 and not pack["is_sensitive"]),
        key=lambda pack: (pack["pack_theme_key"], pack["pack_volume"]),
    )
    _set_rows(db, pack["items"][:12], is_nsfw=1, nsfw_score=0.9)
    summary = run_cycle("rebuild", database=db, settings=settings, metrics=_metrics())
    assert summary["removed_by_reason"] == {"nsfw_mismatch": 12}
    row = _auto_packs(db)[pack["id"]]
    assert len(row["items"]) == 18 and (row["pack_status"], row["status"]) == ("building", "draft")


def test_user_and_collector_packs_are_never_touched(db: Database, tmp_path: Path) -> None:
    data = _dataset(db, count=500)
    settings = _settings(db, tmp_path)
    service = PackService(db, settings)
    ids = list(data.truth)
    # A user pack that mimics a theme pack, a collector pack, and a manual pack of the system owner.
    mimic = service.create_pack(
        "someone@s.whatsapp.net",
        "[AUTO] Animals • Cats • Vol. 1",
        description="[auto-theme:animals/cats] mine",
        initial_sticker_ids=ids[:25],
    )
    collector = service.create_pack(
        "someone@s.whatsapp.net", "pack1", is_auto_pack=True, initial_sticker_ids=ids[25:40]
    )
    manual = service.create_pack(OWNER, "Operator picks", initial_sticker_ids=ids[40:55])
    with db.transaction() as connection:  # the user's pack even carries the theme columns
        connection.execute(
            sticker_pack.update()
            .where(sticker_pack.c.id == mimic.id)
            .values(pack_theme_key="animals/cats", pack_volume=1, is_auto_pack=1)
        )
    _set_rows(db, ids[:55], theme_key="no-such-theme/at-all")  # misfits everywhere, if it looked
    before = {pack_id: service.items(pack_id) for pack_id in (mimic.id, collector.id, manual.id)}
    with db.read() as connection:
        versions_before = dict(connection.execute(sa.select(sticker_pack.c.id, sticker_pack.c.version)).all())

    _converge(db, settings)
    _converge(db, settings, kind="rebuild")

    for pack_id, items in before.items():
        assert service.items(pack_id) == items
    with db.read() as connection:
        versions_after = dict(connection.execute(sa.select(sticker_pack.c.id, sticker_pack.c.version)).all())
    for pack_id in before:
        assert versions_after[pack_id] == versions_before[pack_id]
    placed = {item for pack in _auto_packs(db).values() if pack["is_auto_pack"] for item in pack["items"]}
    assert placed and not placed & set(ids[:55])  # stickers in user packs are not candidates
    with pytest.raises((InvalidInput, PackNotFound)):
        service.update_theme_pack(OWNER, manual.id, remove=[ids[40]], ready_min_items=20)
    with pytest.raises(PackNotFound):
        service.retire_theme_pack(OWNER, mimic.id)  # another owner's pack is not even found


def test_curation_and_rebuild_never_run_at_once(db: Database, tmp_path: Path) -> None:
    _dataset(db, count=400)
    settings = _settings(db, tmp_path)
    assert leases.acquire(db, LEASE_NAME, "someone-else", 60)
    before = _state(db)
    for kind in ("curation", "rebuild"):
        summary = run_cycle(kind, database=db, settings=settings, metrics=_metrics())  # type: ignore[arg-type]
        assert summary["status"] == "busy" and summary["lease_holder"] == "someone-else"
    assert _state(db) == before
    leases.release(db, LEASE_NAME, "someone-else")

    # While a curation cycle writes, a rebuild that starts is turned away (the lease is held).
    seen: list[str] = []

    def rebuild_meanwhile() -> bool:
        if not seen:
            seen.append(run_cycle("rebuild", database=db, settings=settings, metrics=_metrics())["status"])
        return True

    summary = run_cycle(
        "curation", database=db, settings=settings, heartbeat=rebuild_meanwhile, metrics=_metrics()
    )
    assert summary["status"] == "ok" and seen == ["busy"]
    assert leases.current_holder(db, LEASE_NAME) is None  # released at the end


def test_a_lost_lease_stops_the_cycle_before_its_next_write(db: Database, tmp_path: Path) -> None:
    _dataset(db, count=600)
    settings = _settings(db, tmp_path)
    calls = itertools.count()
    metrics = _metrics()
    with pytest.raises(LeaseLost):
        run_cycle(
            "curation", database=db, settings=settings, heartbeat=lambda: next(calls) < 2, metrics=metrics
        )
    assert len(_auto_packs(db)) == 2  # two writes went through, the third was never made
    assert metrics.cycles.labels("curation", "failed")._value.get() == 1
    assert leases.current_holder(db, LEASE_NAME) is None


def test_dry_run_prints_the_plan_and_writes_nothing(db: Database, tmp_path: Path) -> None:
    _dataset(db, count=500)
    settings = _settings(db, tmp_path)
    before = _state(db)
    summary = run_cycle("curation", database=db, settings=settings, dry_run=True, metrics=_metrics())
    assert summary["status"] == "dry_run"
    assert summary["plan"]["new_packs"] and summary["planned_additions"] > 0
    assert _state(db) == before
    real = run_cycle("curation", database=db, settings=settings, metrics=_metrics())
    assert real["added"] == summary["planned_additions"]


def test_task_handlers_report_and_are_idempotent(db: Database, tmp_path: Path) -> None:
    _dataset(db, count=500)
    settings = _settings(db, tmp_path, sticker_auto_pack_by_tags_max_additions_per_cycle=1000)
    context = TaskContext(
        settings=settings,
        database=db,
        storage=LocalStorage(tmp_path / "stickers"),
        flags=FeatureFlags(db, cache_ttl_ms=0),
        task_type="curation_cycle",
        task_id=41,
        worker="test-worker",
    )
    first = TASK_HANDLERS["curation_cycle"](context, {})
    assert first is not None and first["status"] == "ok" and first["added"] > 0
    state = _state(db)
    second = TASK_HANDLERS["curation_cycle"](context, {})  # a retry of the same task
    assert second is not None and second["status"] == "idle" and _state(db) == state
    rebuild = TASK_HANDLERS["rebuild_cycle"](context, {"dry_run": True})
    assert rebuild is not None and rebuild["status"] == "dry_run" and "plan" not in rebuild
    with pytest.raises(ValueError, match="dry_run"):
        TASK_HANDLERS["rebuild_cycle"](context, {"dry_run": "yes"})
    disabled = _settings(db, tmp_path, sticker_auto_pack_by_tags_rebuild_enabled=False)
    off = TASK_HANDLERS["rebuild_cycle"](
        TaskContext(settings=disabled, database=db, storage=context.storage, flags=context.flags), {}
    )
    assert off is not None and off["status"] == "disabled"


def test_cycle_metrics_count_what_changed(db: Database, tmp_path: Path) -> None:
    _dataset(db, count=500)
    settings = _settings(db, tmp_path)
    metrics = _metrics()
    summary = run_cycle("curation", database=db, settings=settings, metrics=metrics)
    run_cycle("curation", database=db, settings=settings, metrics=metrics)

    def value(counter: Any, *labels: str) -> float:
        return (counter.labels(*labels) if labels else counter)._value.get()

    assert value(metrics.cycles, "curation", "ok") == 1
    assert value(metrics.cycles, "curation", "idle") == 1
    assert value(metrics.added) == summary["added"] > 0
    assert value(metrics.packs_created) == summary["packs_created"] > 0
    assert value(metrics.scanned, "curation") == 2 * summary["scanned"]
    assert (
        value(metrics.skipped, "curation", "invalid_embedding") == 2 * summary["skipped"]["invalid_embedding"]
    )


def test_the_lease_is_confirmed_before_each_write(db: Database) -> None:
    """A renewal that finds the lease taken over (it expired and someone else acquired it) stops
    the cycle before the write it was guarding."""
    from omnizap.intelligence.curation.cycle import _LeaseKeeper

    with leases.KeptLease(db, LEASE_NAME, "cycle-a", 60.0) as lease:
        keeper = _LeaseKeeper(lease, heartbeat=None)
        assert lease.beat()
        keeper()
        assert leases.current_holder(db, LEASE_NAME)[0] == "cycle-a"  # type: ignore[index]
        leases.release(db, LEASE_NAME, "cycle-a")  # as if it had expired
        assert leases.acquire(db, LEASE_NAME, "cycle-b", 60)
        assert not lease.beat()
        with pytest.raises(LeaseLost, match="auto_theme_packs"):
            keeper()
    assert leases.current_holder(db, LEASE_NAME)[0] == "cycle-b"  # type: ignore[index]


def test_cli_curate_and_rebuild(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from omnizap.cli.common import AppContext
    from omnizap.cli.curation import curate, rebuild
    from omnizap.config import reset_settings_cache

    _dataset(db, count=400)
    monkeypatch.setenv("DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(tmp_path / "stickers"))
    reset_settings_cache()
    try:

        def invoke(command: Any, *args: str) -> Any:
            app = AppContext()
            try:
                return CliRunner().invoke(command, list(args), obj=app, catch_exceptions=False)
            finally:
                app.close()

        before = _state(db)
        dry = invoke(curate, "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "would change (dry run, nothing written)" in dry.output
        assert "create  [AUTO] " in dry.output and "stickers to add:" in dry.output
        assert _state(db) == before
        real = invoke(curate, "--json")
        summary = json.loads(real.stdout)
        assert real.exit_code == 0 and summary["status"] == "ok" and summary["added"] > 0
        again = invoke(curate)
        assert again.exit_code == 0 and "curation cycle: idle" in again.output
        assert leases.acquire(db, LEASE_NAME, "another-worker", 60)
        busy = invoke(rebuild)
        assert busy.exit_code == 2 and "another-worker" in busy.output
    finally:
        reset_settings_cache()


def test_max_scan_assets_reads_the_newest_candidates_only(db: Database, tmp_path: Path) -> None:
    data = _dataset(db, count=300)
    settings = _settings(db, tmp_path, sticker_auto_pack_by_tags_max_scan_assets=120)
    summary = run_cycle("curation", database=db, settings=settings, dry_run=True, metrics=_metrics())
    assert summary["scanned"] == 120
    newest = {asset["id"] for asset in sorted(data.assets, key=lambda a: a["created_at"])[-120:]}
    planned = {sticker for new in summary["plan"]["new_packs"] for sticker in new["stickers"]}
    assert planned and planned <= newest
