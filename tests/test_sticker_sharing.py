"""Shareable stickers (`sticker_asset.shared_at`) on every engine: only a sticker that was once in a
public or unlisted pack may be published by theme curation; one that was only ever private — taken
out of a private pack, or stored when placing it with `--pack` failed — never is, and one already
sitting in an `[AUTO]` pack without being shareable is taken out by the next cycle."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import media_factory as mf
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.core.errors import PackLimitReached
from omnizap.core.packs.autocollect import AutoCollector
from omnizap.core.packs.service import NewPack, NewPackItem, PackService, ThemePackSpec
from omnizap.intelligence.curation.cycle import run_cycle
from omnizap.intelligence.curation.planner import NOT_SHAREABLE
from omnizap.intelligence.curation.policy import CurationPolicy
from omnizap.intelligence.curation.snapshot import load_snapshot
from omnizap.intelligence.curation.synthetic import SyntheticSet, generate
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import _alembic_config, upgrade
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_asset_classification,
    sticker_pack,
    sticker_pack_item,
)
from omnizap.platform.metrics.curation import CurationMetrics

SYSTEM_OWNER = "omnizap-auto"
USER = "5511977776666@s.whatsapp.net"
THEMES = ("animals/cats", "food/meals")


def _settings(db: Database, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        **overrides,
    )


def _clean_set(db: Database, count: int) -> SyntheticSet:
    """Classified stickers that curation would gladly publish (no noise, no hostile rows), stored as
    they are after an upload: in no pack and never shared."""
    data = generate(
        count,
        seed=23,
        themes=THEMES,
        dimension=32,
        label_noise=0.0,
        nsfw_rate=0.0,
        duplicate_rate=0.0,
        low_quality_rate=0.0,
        hostile_rate=0.0,
        spread=1.0,
        shared=False,
    )
    data.insert(db)
    return data


def _shared_at(db: Database, ids: list[str]) -> dict[str, dt.datetime | None]:
    with db.read() as connection:
        rows = connection.execute(
            sa.select(sticker_asset.c.id, sticker_asset.c.shared_at).where(sticker_asset.c.id.in_(ids))
        )
        return dict(rows.all())


def _auto_items(db: Database) -> set[str]:
    """Every sticker in a live pack of the system owner."""
    with db.read() as connection:
        rows = connection.execute(
            sa.select(sticker_pack_item.c.sticker_id)
            .select_from(
                sticker_pack_item.join(sticker_pack, sticker_pack.c.id == sticker_pack_item.c.pack_id)
            )
            .where(sticker_pack.c.owner_jid == SYSTEM_OWNER, sticker_pack.c.deleted_at.is_(None))
        )
        return {row[0] for row in rows}


def _cycle(db: Database, settings: Settings, kind: str = "curation") -> dict[str, Any]:
    metrics = CurationMetrics(CollectorRegistry())
    return run_cycle(kind, database=db, settings=settings, metrics=metrics)  # type: ignore[arg-type]


def _converge(db: Database, settings: Settings, kind: str = "curation") -> list[dict[str, Any]]:
    summaries = []
    for _ in range(20):
        summaries.append(_cycle(db, settings, kind))
        if summaries[-1]["status"] == "idle":
            return summaries
    raise AssertionError(f"{kind} did not settle: {summaries[-1]}")


def _through_pack_and_out(service: PackService, ids: list[str], visibility: str) -> None:
    """Put the stickers in packs of the user with this visibility, then take every one out again."""
    for start in range(0, len(ids), service.max_items):
        chunk = ids[start : start + service.max_items]
        pack = service.create_pack(
            USER, f"{visibility} {start}", visibility=visibility, initial_sticker_ids=chunk
        )
        for sticker_id in chunk:
            service.remove_sticker(USER, pack.id, sticker_id)


# --- the scenario -------------------------------------------------------------------------
def test_stickers_taken_out_of_a_private_pack_are_never_curated(db: Database, tmp_path: Path) -> None:
    settings = _settings(db, tmp_path)
    data = _clean_set(db, 120)
    ids = sorted(data.truth)
    private, shareable = ids[::2], ids[1::2]
    service = PackService(db, settings)
    _through_pack_and_out(service, private, "private")
    _through_pack_and_out(service, shareable, "public")
    assert set(_shared_at(db, private).values()) == {None}
    assert None not in _shared_at(db, shareable).values()

    _converge(db, settings)
    _converge(db, settings, kind="rebuild")

    placed = _auto_items(db)
    assert not placed & set(private)
    # The control: stickers once in a public pack are still curated, into volumes of 12 or more.
    assert placed <= set(shareable) and len(placed) >= 24


def test_a_sticker_whose_pack_placement_failed_is_not_a_candidate(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(db, tmp_path)
    service = PackService(db, settings)
    filler = _clean_set(db, settings.sticker_pack_max_items + 1)
    filler_ids = sorted(filler.truth)
    full = service.create_pack(
        USER, "Full", visibility="public", initial_sticker_ids=filler_ids[: service.max_items]
    )
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(settings.sticker_storage_dir))
    reset_settings_cache()
    picture = tmp_path / "cat.png"
    picture.write_bytes(mf.encode_image(mf.photo_like_image(300, 300), "PNG"))
    try:
        result = CliRunner().invoke(
            cli,
            ["sticker", "import", str(picture), "--owner", USER, "--pack", full.pack_key],
            catch_exceptions=False,
        )
    finally:
        reset_settings_cache()
    (line,) = [json.loads(text) for text in result.output.splitlines() if text.startswith("{")]
    assert line["error"]["code"] == PackLimitReached.code  # stored, but not placed
    with db.read() as connection:
        stored = connection.execute(
            sa.select(sticker_asset.c.id, sticker_asset.c.shared_at).where(
                sticker_asset.c.id.not_in(filler_ids)
            )
        ).one()
    assert (
        stored.id == line["sticker_id"] and stored.shared_at is None
    )  # placing it in the (public) pack failed: never shared
    # Give it a classification row a curator would accept (the spare synthetic one's).
    row = dict(next(r for r in filler.classifications if r["asset_id"] == filler_ids[-1]))
    with db.transaction() as connection:
        connection.execute(sticker_asset_classification.insert().values({**row, "asset_id": stored.id}))
    policy = CurationPolicy.from_settings(settings)

    assert stored.id not in load_snapshot(db, policy, SYSTEM_OWNER).candidates
    assert filler_ids[-1] not in load_snapshot(db, policy, SYSTEM_OWNER).candidates  # never packed
    _through_pack_and_out(service, [stored.id], "unlisted")  # an unlisted pack shares it too
    assert stored.id in load_snapshot(db, policy, SYSTEM_OWNER).candidates


def test_unshareable_members_of_auto_packs_leave_at_the_next_cycle(db: Database, tmp_path: Path) -> None:
    settings = _settings(db, tmp_path, sticker_auto_pack_by_tags_max_removals_per_cycle=0)
    data = _clean_set(db, 80)
    with db.transaction() as connection:  # every sticker was shared once
        connection.execute(sticker_asset.update().values(shared_at=sa.func.now()))
    _converge(db, settings)
    placed = sorted(_auto_items(db))
    assert len(placed) >= 24
    # Stickers published before shareability existed: the migration leaves them unshareable.
    leaked = placed[:3]
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.update().where(sticker_asset.c.id.in_(leaked)).values(shared_at=None)
        )

    summary = _cycle(db, settings)  # even with no removal budget at all

    assert summary["status"] == "ok"
    assert summary["removed_by_reason"] == {NOT_SHAREABLE: 3}
    assert not _auto_items(db) & set(leaked)
    assert _cycle(db, settings)["status"] == "idle"  # and they do not come back
    assert set(data.truth) >= _auto_items(db)

    # The rebuild cycle takes them out just the same.
    member = sorted(_auto_items(db))[0]
    with db.transaction() as connection:
        connection.execute(sticker_asset.update().where(sticker_asset.c.id == member).values(shared_at=None))
    rebuilt = _cycle(db, settings, kind="rebuild")
    assert rebuilt["removed_by_reason"].get(NOT_SHAREABLE) == 1
    assert member not in _auto_items(db)


# --- where shared_at is set -----------------------------------------------------------------------
def test_every_way_into_a_public_or_unlisted_pack_shares_the_sticker(db: Database, tmp_path: Path) -> None:
    settings = _settings(db, tmp_path)
    ids = sorted(_clean_set(db, 12).truth)
    service = PackService(db, settings)

    private = service.create_pack(USER, "Mine", visibility="private", initial_sticker_ids=ids[0:2])
    service.add_sticker(USER, private.id, ids[2])
    service.clone(USER, private.id)  # a clone of a private pack stays private
    assert set(_shared_at(db, ids[0:3]).values()) == {None}

    service.create_pack(USER, "Public", visibility="public", initial_sticker_ids=[ids[3]])
    unlisted = service.create_pack(USER, "Link only", visibility="unlisted")
    service.add_sticker(USER, unlisted.id, ids[4])
    service.create_packs([NewPack(USER, "Bulk", visibility="public", items=[NewPackItem(ids[5])])])
    service.create_packs([NewPack(USER, "Bulk private", visibility="private", items=[NewPackItem(ids[6])])])
    shared = _shared_at(db, ids)
    assert [shared[sticker] is not None for sticker in ids[3:7]] == [True, True, True, False]

    service.publish(USER, private.id, "unlisted")  # publishing shares what the pack holds
    assert None not in _shared_at(db, ids[0:3]).values()

    collector_settings = _settings(db, tmp_path, sticker_pack_auto_collect_enabled=True)
    outcome = AutoCollector(PackService(db, collector_settings), collector_settings).collect(
        "someone-else@s.whatsapp.net", ids[7]
    )
    assert outcome.pack is not None and outcome.pack.visibility == "unlisted"
    assert _shared_at(db, [ids[7]])[ids[7]] is not None


def test_theme_packs_take_only_shareable_stickers_and_never_share_one(db: Database, tmp_path: Path) -> None:
    settings = _settings(db, tmp_path)
    ids = sorted(_clean_set(db, 6).truth)
    service = PackService(db, settings)
    _through_pack_and_out(service, ids[:3], "public")
    spec = ThemePackSpec(
        owner_jid=SYSTEM_OWNER,
        name="[AUTO] Animals • Cats • Vol. 1",
        publisher="OmniZap Auto",
        description="[auto-theme:animals/cats]",
        visibility="public",
        theme_key="animals/cats",
        volume=1,
        sensitive=False,
    )
    assert service.create_theme_pack(spec, ids[3:], min_items=1, ready_min_items=1, pack_limit=None) is None
    pack = service.create_theme_pack(spec, [ids[0], ids[3]], min_items=1, ready_min_items=1, pack_limit=None)
    assert pack is not None and [item.sticker_id for item in service.items(pack.id)] == [ids[0]]
    change = service.update_theme_pack(SYSTEM_OWNER, pack.id, add=[ids[1], ids[4]], ready_min_items=1)
    assert change.added == (ids[1],)
    assert set(_shared_at(db, ids[3:]).values()) == {None}


# --- the migration's backfill ---------------------------------------------------------------------
@pytest.fixture
def at_previous_revision(db: Database) -> Iterator[str]:
    """The database moved back to just before the shared_at migration (empty, as `db` leaves it);
    upgraded again after. Found by its file name, whatever number the chain gives it."""
    config = _alembic_config()
    (migration,) = [
        script
        for script in ScriptDirectory.from_config(config).walk_revisions()
        if script.path.endswith("_sticker_shared_at.py")
    ]
    previous = migration.down_revision
    assert isinstance(previous, str)
    with db.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, previous)
        connection.commit()
    try:
        yield previous
    finally:
        upgrade(db)


def test_migration_backfills_shared_at_from_todays_packs(db: Database, at_previous_revision: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stickers = ["in-public", "in-unlisted", "in-private", "in-deleted-public", "in-theme-pack", "loose"]
    packs = [
        # (id, visibility, is_auto_pack, theme key, description, deleted)
        ("p-public", "public", 0, None, None, False),
        ("p-unlisted", "unlisted", 1, None, "auto collector", False),  # a collector pack
        ("p-private", "private", 0, None, None, False),
        ("p-deleted", "public", 0, None, None, True),
        ("p-theme", "public", 1, "animals/cats", "[auto-theme:animals/cats]", False),
    ]
    with db.transaction() as connection:
        for sticker in stickers:
            connection.execute(
                sa.text(
                    "INSERT INTO sticker_asset (id, owner_jid, sha256, size_bytes, storage_path, created_at, "
                    "updated_at) VALUES (:id, 'ana', :sha, 100, :path, :now, :now)"
                ),
                {"id": sticker, "sha": sticker.ljust(64, "0"), "path": f"ab/{sticker}.webp", "now": now},
            )
        for (pack_id, visibility, auto, theme, description, deleted), sticker in zip(
            packs, stickers, strict=False
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO sticker_pack (id, owner_jid, name, publisher, description, pack_key, "
                    "visibility, is_auto_pack, pack_theme_key, created_at, updated_at, deleted_at) "
                    "VALUES (:id, 'ana', :id, 'Ana', :description, :id, :visibility, :auto, :theme, "
                    ":now, :now, :deleted)"
                ),
                {
                    "id": pack_id,
                    "description": description,
                    "visibility": visibility,
                    "auto": auto,
                    "theme": theme,
                    "now": now,
                    "deleted": now if deleted else None,
                },
            )
            connection.execute(
                sa.text(
                    "INSERT INTO sticker_pack_item (id, pack_id, sticker_id, position, created_at, "
                    "updated_at) VALUES (:id, :pack, :sticker, 1, :now, :now)"
                ),
                {"id": f"i-{pack_id}", "pack": pack_id, "sticker": sticker, "now": now},
            )

    upgrade(db)

    shared = {sticker: value is not None for sticker, value in _shared_at(db, stickers).items()}
    assert shared == {
        "in-public": True,
        "in-unlisted": True,
        "in-private": False,
        "in-deleted-public": False,
        "in-theme-pack": False,  # curation's own packs confer nothing: they may hold leaked stickers
        "loose": False,
    }
