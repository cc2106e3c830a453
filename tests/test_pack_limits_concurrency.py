"""The per-owner pack limit and the per-pack item limit under concurrent writers, with real threads on
every engine: the count and the insert are atomic, so a crowd of writers fills up to the limit and
never past it (20 concurrent creates for an owner with 36 packs used to leave 56)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.core.errors import PackLimitReached
from omnizap.core.packs.autocollect import AutoCollector
from omnizap.core.packs.service import NewPack, NewPackItem, PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset, sticker_pack, sticker_pack_item

OWNER = "5511955554444@s.whatsapp.net"
CROWD = 20


def _settings(db: Database, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
    )


@pytest.fixture
def crowd_service(db: Database, tmp_path: Path) -> Iterator[PackService]:
    """A PackService whose pool holds a connection for every writer of the crowd."""
    database = Database(db.url.render_as_string(hide_password=False), pool_size=CROWD + 2)
    try:
        yield PackService(database, _settings(db, tmp_path))
    finally:
        database.dispose()


def _together(count: int, action: Callable[[int], Any]) -> list[Any]:
    """`action(i)` in `count` threads released at once; a PackLimitReached is returned, not raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(index)
        except PackLimitReached as refused:
            results[index] = refused
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _live_packs(db: Database, owner: str) -> int:
    with db.read() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count())
                .select_from(sticker_pack)
                .where(sticker_pack.c.owner_jid == owner, sticker_pack.c.deleted_at.is_(None))
            ).scalar_one()
        )


def _assets(db: Database, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert(),
            [
                {"id": sid, "owner_jid": OWNER, "sha256": uuid.uuid4().hex * 2, "size_bytes": 100}
                | {"storage_path": f"ab/{sid}.webp"}
                for sid in ids
            ],
        )
    return ids


@pytest.mark.parametrize("operation", ["create_pack", "clone", "create_packs"])
def test_concurrent_new_packs_stop_exactly_at_the_owner_limit(
    db: Database, crowd_service: PackService, operation: str
) -> None:
    service = crowd_service
    limit = service.settings.sticker_pack_max_packs_per_owner
    assert limit == 50
    existing = service.create_packs([NewPack(OWNER, f"Old {n}") for n in range(36)])
    source = existing[0]

    def make(n: int) -> Any:
        if operation == "clone":
            return service.clone(OWNER, source.id, f"Clone {n}")
        if operation == "create_packs":
            return service.create_packs([NewPack(OWNER, f"Batch {n}")])
        return service.create_pack(OWNER, f"New {n}")

    results = _together(CROWD, make)

    refused = [result for result in results if isinstance(result, PackLimitReached)]
    assert _live_packs(db, OWNER) == limit
    assert len(refused) == CROWD - (limit - 36)
    assert all("Pack limit reached (50)" in str(result) for result in refused)


def test_concurrent_adds_stop_exactly_at_the_item_limit(db: Database, crowd_service: PackService) -> None:
    service = crowd_service
    stickers = _assets(db, 25 + CROWD)
    pack = service.create_pack(OWNER, "Nearly full", initial_sticker_ids=stickers[:25])

    results = _together(CROWD, lambda n: service.add_sticker(OWNER, pack.id, stickers[25 + n]))

    refused = [result for result in results if isinstance(result, PackLimitReached)]
    with db.read() as connection:
        positions = sorted(
            row[0]
            for row in connection.execute(
                sa.select(sticker_pack_item.c.position).where(sticker_pack_item.c.pack_id == pack.id)
            )
        )
    assert positions == list(range(1, service.max_items + 1))
    assert len(refused) == CROWD - (service.max_items - 25)
    assert service.resolve(OWNER, pack.id).version == 1 + (service.max_items - 25)


def test_concurrent_collector_packs_stop_exactly_at_the_owner_limit(db: Database, tmp_path: Path) -> None:
    """Every pack of the owner is full (1 sticker each here), so each collect makes a new collector
    pack: with one pack left under the limit, exactly one of the crowd gets it."""
    settings = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_max_items=1,
    )
    database = Database(settings.database_url, pool_size=CROWD + 2)
    try:
        service = PackService(database, settings)
        limit = settings.sticker_pack_max_packs_per_owner
        assert limit == 50
        stickers = _assets(db, limit - 1 + CROWD)
        service.create_packs(
            [NewPack(OWNER, f"Full {n}", items=[NewPackItem(stickers[n])]) for n in range(limit - 1)]
        )
        collector = AutoCollector(service, settings)

        results = _together(CROWD, lambda n: collector.collect(OWNER, stickers[limit - 1 + n]))
    finally:
        database.dispose()

    placed = [result for result in results if not isinstance(result, PackLimitReached)]
    assert [result.status for result in placed] == ["added"]
    assert _live_packs(db, OWNER) == limit
