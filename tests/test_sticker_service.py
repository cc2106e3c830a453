"""Sticker ingest against real databases (each test runs on SQLite, PostgreSQL and MySQL/MariaDB)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
from pathlib import Path

import media_factory as mf
import pytest
import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.core.errors import InvalidInput, StickerNotFound, StorageFailure
from omnizap.core.stickers import repository
from omnizap.core.stickers import service as service_module
from omnizap.core.stickers.errors import MediaRejected
from omnizap.core.stickers.exif import read_sticker_metadata
from omnizap.core.stickers.service import IngestResult, StickerService
from omnizap.core.stickers.webp import inspect_webp
from omnizap.platform.db import Database
from omnizap.platform.db.schema import domain_event_outbox, sticker_asset
from omnizap.platform.storage import LocalStorage, StorageError, key_for_digest

OWNER = "5511999999999@s.whatsapp.net"


@pytest.fixture
def storage(db_settings: Settings) -> LocalStorage:
    return LocalStorage(db_settings.sticker_storage_dir)


@pytest.fixture
def stickers(db: Database, storage: LocalStorage, db_settings: Settings) -> StickerService:
    return StickerService(db, storage, db_settings)


def stored_files(storage: LocalStorage) -> list[Path]:
    return sorted(path for path in storage.root.rglob("*") if path.is_file())


def count_rows(db: Database, table: sa.Table) -> int:
    with db.read() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_ingest_stores_file_row_and_outbox_event(
    stickers: StickerService, storage: LocalStorage, db: Database
):
    result = stickers.ingest(mf.png_bytes(300, 200), owner_jid=OWNER, pack_name="Memes", emojis=["😂"])
    asset = result.asset
    assert result.created
    data = storage.get(asset.storage_path)
    assert hashlib.sha256(data).hexdigest() == asset.sha256
    assert asset.storage_path == key_for_digest(asset.sha256)  # a key, not a server path
    assert not asset.storage_path.startswith("/")
    assert (asset.width, asset.height, asset.size_bytes) == (512, 512, len(data))
    assert asset.mimetype == "image/webp" and asset.is_animated is False
    assert asset.owner_jid == OWNER and asset.created_at.tzinfo is not None
    assert read_sticker_metadata(data)["sticker-pack-name"] == "Memes"
    with db.read() as connection:
        events = connection.execute(sa.select(domain_event_outbox)).mappings().all()
    assert len(events) == 1
    assert events[0]["event_type"] == "STICKER_ASSET_CREATED"
    assert events[0]["aggregate_id"] == asset.id
    assert events[0]["payload"]["sha256"] == asset.sha256
    assert stickers.get(asset.id) == asset


def test_animated_ingest_records_frames_and_duration(stickers: StickerService):
    asset = stickers.ingest(mf.animated_gif(4, duration=150), owner_jid=OWNER).asset
    assert asset.is_animated and asset.frame_count == 4 and asset.duration_ms == 600
    info = inspect_webp(stickers.read_bytes(asset))
    assert info.frame_count == 4


def test_importing_the_same_file_twice_gives_one_asset(stickers: StickerService, db: Database, storage):
    data = mf.encode_image(mf.photo_like_image(320, 240), "JPEG")
    first = stickers.ingest(data, owner_jid=OWNER)
    second = stickers.ingest(data, owner_jid="someone-else")
    assert first.created and not second.created
    assert second.asset == first.asset
    assert second.asset.owner_jid == OWNER  # the first owner keeps it
    assert count_rows(db, sticker_asset) == 1
    assert count_rows(db, domain_event_outbox) == 1
    assert len(stored_files(storage)) == 1


def test_reimport_of_the_same_source_skips_conversion(stickers: StickerService, monkeypatch):
    data = mf.animated_gif(3)
    first = stickers.ingest(data, owner_jid=OWNER, pack_name="P")

    def must_not_convert(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(service_module, "convert_to_sticker", must_not_convert)
    again = stickers.ingest(data, owner_jid=OWNER, pack_name="P")
    assert again.asset.id == first.asset.id and not again.created
    assert first.asset.source_sha256 is not None


def test_same_source_with_other_metadata_is_another_sticker(stickers: StickerService):
    data = mf.png_bytes(64, 64)
    one = stickers.ingest(data, owner_jid=OWNER, pack_name="One")
    two = stickers.ingest(data, owner_jid=OWNER, pack_name="Two")
    assert one.created and two.created and one.asset.sha256 != two.asset.sha256


def test_different_sources_with_identical_result_dedupe_by_content(stickers: StickerService, db: Database):
    picture = mf.graphic_image(200, 200)
    as_png = stickers.ingest(mf.encode_image(picture, "PNG"), owner_jid=OWNER)
    as_webp = stickers.ingest(mf.encode_image(picture, "WEBP", lossless=True), owner_jid=OWNER)
    assert as_png.created and not as_webp.created
    assert as_webp.asset.id == as_png.asset.id
    assert count_rows(db, sticker_asset) == 1


@pytest.mark.parametrize("same_source", [True, False])
def test_a_missing_file_is_rewritten_on_reimport(
    stickers: StickerService, storage: LocalStorage, same_source
):
    picture = mf.graphic_image(120, 120)
    asset = stickers.ingest(mf.encode_image(picture, "PNG"), owner_jid=OWNER).asset
    original = storage.get(asset.storage_path)
    storage.delete(asset.storage_path)
    with pytest.raises(StorageFailure) as caught:
        stickers.read_bytes(asset)
    assert asset.id in caught.value.message and "import" in caught.value.message
    source = mf.encode_image(picture, "PNG" if same_source else "WEBP", lossless=True)
    again = stickers.ingest(source, owner_jid=OWNER)
    assert not again.created and again.asset.id == asset.id
    assert stickers.read_bytes(asset) == original


def test_failed_insert_leaves_no_file_and_no_row(
    stickers: StickerService, storage: LocalStorage, db, monkeypatch
):
    def broken_outbox(connection: object, row: object) -> bool:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(service_module, "asset_created", broken_outbox)
    with pytest.raises(RuntimeError, match="outbox unavailable"):
        stickers.ingest(mf.png_bytes(40, 40), owner_jid=OWNER)
    assert stored_files(storage) == []
    assert count_rows(db, sticker_asset) == 0
    assert count_rows(db, domain_event_outbox) == 0


def test_unique_key_race_returns_the_winner(stickers: StickerService, db: Database, monkeypatch):
    winner = stickers.ingest(mf.png_bytes(50, 50), owner_jid=OWNER).asset
    sticker_bytes = stickers.read_bytes(winner)
    real_lookup = repository.find_by_sha256
    calls = {"count": 0}

    def lookup_that_misses_once(connection, sha256):
        calls["count"] += 1
        return None if calls["count"] == 1 else real_lookup(connection, sha256)

    # The first lookup runs before the winner "commits": the insert then hits the unique key.
    monkeypatch.setattr(repository, "find_by_sha256", lookup_that_misses_once)
    result = stickers.ingest_webp_sticker(sticker_bytes, owner_jid="late@s.whatsapp.net")
    assert not result.created and result.asset.id == winner.id
    assert stickers.read_bytes(winner) == sticker_bytes  # the shared file was not deleted
    assert count_rows(db, sticker_asset) == 1


def test_storage_failure_is_reported_and_nothing_is_recorded(db: Database, db_settings: Settings, tmp_path):
    class FullDisk(LocalStorage):
        def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
            raise StorageError(f"could not write object {key}: No space left on device")

    service = StickerService(db, FullDisk(tmp_path / "full"), db_settings)
    with pytest.raises(StorageFailure) as caught:
        service.ingest(mf.png_bytes(), owner_jid=OWNER)
    assert "No space left" in caught.value.message
    assert count_rows(db, sticker_asset) == 0


def test_hostile_input_stores_nothing(stickers: StickerService, storage: LocalStorage, db: Database):
    for data, code in [
        (b"", "EMPTY_FILE"),
        (mf.png_bomb(), "DECOMPRESSION_BOMB"),
        (mf.truncated(mf.animated_gif(3)), "TRUNCATED_FILE"),
        (b"just text", "UNSUPPORTED_FORMAT"),
    ]:
        with pytest.raises(MediaRejected) as caught:
            stickers.ingest(data, owner_jid=OWNER)
        assert caught.value.code == code
    assert stored_files(storage) == [] and count_rows(db, sticker_asset) == 0


def test_owner_is_normalised_and_bad_owners_refused(stickers: StickerService, db: Database):
    asset = stickers.ingest(mf.png_bytes(), owner_jid=" 5511999999999:7@c.us ").asset
    assert asset.owner_jid == OWNER
    with pytest.raises(InvalidInput):
        stickers.ingest(mf.png_bytes(9, 9), owner_jid="bad owner/../x")
    assert count_rows(db, sticker_asset) == 1


def test_pack_byte_limit_bounds_animated_stickers(db: Database, storage: LocalStorage, db_settings: Settings):
    settings = db_settings.model_copy(update={"sticker_pack_max_sticker_bytes": 64 * 1024})
    service = StickerService(db, storage, settings)
    frames = [mf.noise_image(96, 96, seed).convert("RGBA") for seed in range(6)]
    gif = mf.encode_image(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    asset = service.ingest(gif, owner_jid=OWNER).asset
    assert asset.is_animated and asset.size_bytes <= 64 * 1024


def test_ready_made_sticker_is_stored_unchanged(stickers: StickerService):
    made = stickers.ingest(mf.animated_webp(3), owner_jid=OWNER)
    sticker_bytes = stickers.read_bytes(made.asset)
    forwarded = stickers.ingest_webp_sticker(sticker_bytes, owner_jid="friend@s.whatsapp.net")
    assert not forwarded.created and forwarded.asset.id == made.asset.id
    relabelled = stickers.ingest_webp_sticker(sticker_bytes, owner_jid=OWNER, pack_name="Other")
    assert relabelled.created and relabelled.asset.frame_count == made.asset.frame_count
    assert read_sticker_metadata(stickers.read_bytes(relabelled.asset))["sticker-pack-name"] == "Other"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (mf.encode_image(mf.solid_image(100, 100), "WEBP"), "INVALID_STICKER"),
        (mf.png_bytes(512, 512), "UNSUPPORTED_FORMAT"),
        (b"", "EMPTY_FILE"),
    ],
)
def test_ready_made_sticker_validation(stickers: StickerService, data: bytes, code: str):
    with pytest.raises(MediaRejected) as caught:
        stickers.ingest_webp_sticker(data, owner_jid=OWNER)
    assert caught.value.code == code


def test_get_and_get_many(stickers: StickerService):
    one = stickers.ingest(mf.png_bytes(10, 10), owner_jid=OWNER).asset
    two = stickers.ingest(mf.png_bytes(10, 20), owner_jid=OWNER).asset
    found = stickers.get_many([one.id, two.id, one.id, "00000000-0000-0000-0000-000000000000"])
    assert found == {one.id: one, two.id: two}
    assert stickers.get_many([]) == {}
    with pytest.raises(StickerNotFound):
        stickers.get("00000000-0000-0000-0000-000000000000")


def test_concurrent_imports_of_one_file_make_one_asset(stickers: StickerService, db: Database, storage):
    data = mf.encode_image(mf.graphic_image(150, 150), "PNG")
    start = threading.Barrier(4)

    def ingest_after_barrier(owner: str) -> IngestResult:
        start.wait()
        return stickers.ingest(data, owner_jid=owner)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(ingest_after_barrier, [f"user{n}@s.whatsapp.net" for n in range(4)]))
    assert len({result.asset.id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert count_rows(db, sticker_asset) == 1
    assert count_rows(db, domain_event_outbox) == 1
    assert len(stored_files(storage)) == 1
