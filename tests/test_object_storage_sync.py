"""Uploading to the object store: the sync task, resumable backfill, verify and repair, the CLI.

Real stickers on local disk, a real S3 server (rclone serve s3) and every database engine.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import media_factory as mf
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from s3_server import RcloneS3

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.core.stickers.service import StickerService
from omnizap.delivery.sync import UNAVAILABLE_PREFIX, ObjectSync
from omnizap.delivery.tasks import OBJECT_STORAGE_SYNC, TASK_HANDLERS
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.storage import StoreUnavailable
from omnizap.platform.storage.s3 import IMMUTABLE_CACHE_CONTROL
from omnizap.runtime import Runtime

OWNER = "5511966665555@s.whatsapp.net"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3]:
    s3 = RcloneS3(tmp_path_factory.mktemp("s3") / "root")
    s3.start()
    yield s3
    s3.stop()


def make_settings(db: Database, tmp_path: Path, server: RcloneS3, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
        **server.settings_overrides(**extra),
    )


def build(db: Database, tmp_path: Path, server: RcloneS3, count: int = 6, **extra: Any) -> SimpleNamespace:
    server.empty_bucket()
    settings = make_settings(db, tmp_path, server, **extra)
    runtime = Runtime(settings)
    service = StickerService(runtime.database, runtime.storage, settings)
    assets = [
        service.ingest(mf.encode_image(mf.graphic_image(140, 100, seed), "PNG"), owner_jid=OWNER).asset
        for seed in range(1, count + 1)
    ]
    store = runtime.object_storage
    assert store is not None
    return SimpleNamespace(
        settings=settings,
        runtime=runtime,
        store=store,
        server=server,
        assets=sorted(assets, key=lambda asset: asset.id),
        sync=ObjectSync(runtime.database, runtime.storage, store),
    )


@pytest.fixture
def env(db: Database, tmp_path: Path, server: RcloneS3) -> Iterator[SimpleNamespace]:
    built = build(db, tmp_path, server)
    yield built
    built.runtime.close()


def marks(env: SimpleNamespace) -> dict[str, str | None]:
    with env.runtime.database.read() as connection:
        rows = connection.execute(sa.select(sticker_asset.c.id, sticker_asset.c.object_storage_key))
        return {row.id: row.object_storage_key for row in rows}


def context(env: SimpleNamespace, heartbeat: Any = None) -> TaskContext:
    return TaskContext(
        settings=env.settings,
        database=env.runtime.database,
        storage=env.runtime.storage,
        flags=env.runtime.flags,
        task_type=OBJECT_STORAGE_SYNC,
        heartbeat=heartbeat or (lambda: True),
    )


def object_path(env: SimpleNamespace, asset: Any) -> Path:
    return env.server.object_path("stickers/" + asset.storage_path)


def delete_object(env: SimpleNamespace, asset: Any) -> None:
    env.server.client().delete_object(Bucket=env.server.bucket, Key="stickers/" + asset.storage_path)


def replace_object(env: SimpleNamespace, asset: Any, data: bytes) -> None:
    """Bit rot: other bytes of the same length, metadata still claiming the original hash."""
    env.server.client().put_object(
        Bucket=env.server.bucket,
        Key="stickers/" + asset.storage_path,
        Body=data,
        Metadata={"sha256": asset.sha256},
    )


def test_sync_task_uploads_new_stickers_once_and_is_idempotent(env: SimpleNamespace):
    handler = TASK_HANDLERS[OBJECT_STORAGE_SYNC]
    summary = handler(context(env), {})
    assert summary["uploaded"] == 6 and summary["total"] == 6 and summary["unresolved"] == 0
    for asset in env.assets:
        assert marks(env)[asset.id] == f"s3://{env.server.bucket}/stickers/{asset.storage_path}"
        assert object_path(env, asset).read_bytes() == env.runtime.storage.get(asset.storage_path)
        info = env.store.head(asset.storage_path)
        assert info.content_type == "image/webp" and info.cache_control == IMMUTABLE_CACHE_CONTROL
        assert info.sha256 == asset.sha256
    with env.runtime.database.read() as connection:
        synced = connection.execute(sa.select(sticker_asset.c.object_storage_synced_at)).scalars().all()
    assert all(value is not None for value in synced)
    assert handler(context(env), {})["total"] == 0  # nothing left to do
    # Named assets are confirmed by HEAD, not uploaded again.
    again = handler(context(env), {"asset_ids": [env.assets[0].id, "no-such-asset"]})
    assert again["already_present"] == 1 and again["uploaded"] == 0
    assert env.sync.status() == {"assets": 6, "uploaded": 6, "pending": 0, "unavailable": 0}


def test_sync_task_respects_the_batch_size_and_the_lease(db: Database, tmp_path: Path, server: RcloneS3):
    env = build(db, tmp_path, server, count=5, sticker_object_storage_sync_batch_size=2)
    try:
        handler = TASK_HANDLERS[OBJECT_STORAGE_SYNC]
        assert handler(context(env), {})["uploaded"] == 2
        assert handler(context(env, heartbeat=lambda: False), {})["total"] == 0  # lease lost: stop
        assert handler(context(env), {})["uploaded"] == 2
        assert handler(context(env), {})["uploaded"] == 1
        assert handler(context(env), {})["total"] == 0
    finally:
        env.runtime.close()


def test_sync_task_stops_between_files_when_the_lease_is_lost(db: Database, tmp_path: Path, server: RcloneS3):
    env = build(db, tmp_path, server, count=12)
    try:
        answers = iter([True, False])
        summary = TASK_HANDLERS[OBJECT_STORAGE_SYNC](context(env, heartbeat=lambda: next(answers)), {})
        assert summary["uploaded"] == 10  # the first slice of ten, then the lease was gone
        assert env.sync.status()["pending"] == 2
    finally:
        env.runtime.close()


@pytest.mark.parametrize(
    "payload",
    [{"asset_ids": "abc"}, {"asset_ids": [1, 2]}, {"asset_ids": [""]}, {"asset_ids": ["x" * 37]}],
)
def test_sync_task_refuses_bad_payloads(env: SimpleNamespace, payload: dict[str, Any]):
    with pytest.raises(ValueError, match="asset_ids"):
        TASK_HANDLERS[OBJECT_STORAGE_SYNC](context(env), payload)


def test_sync_task_does_nothing_when_storage_is_off(db: Database, tmp_path: Path, server: RcloneS3):
    env = build(db, tmp_path, server, count=1)
    try:
        off = context(env)
        off.settings = make_settings(db, tmp_path, server, sticker_object_storage_enabled=False)
        assert "skipped" in TASK_HANDLERS[OBJECT_STORAGE_SYNC](off, {})
        manual = context(env)
        manual.settings = make_settings(db, tmp_path, server, sticker_object_storage_upload_on_write=False)
        assert "skipped" in TASK_HANDLERS[OBJECT_STORAGE_SYNC](manual, {})
        assert set(marks(env).values()) == {None}
    finally:
        env.runtime.close()


def test_upload_failure_keeps_the_sticker_on_disk_and_retries(db: Database, tmp_path: Path):
    own = RcloneS3(tmp_path / "s3root")
    try:
        own.start()
        env = build(db, tmp_path, own, count=3, sticker_object_storage_max_attempts=1)
        own.stop()
        with pytest.raises(StoreUnavailable):  # the queue retries the task with backoff
            TASK_HANDLERS[OBJECT_STORAGE_SYNC](context(env), {})
        assert set(marks(env).values()) == {None}
        for asset in env.assets:
            data = env.runtime.storage.get(asset.storage_path)
            assert hashlib.sha256(data).hexdigest() == asset.sha256
        own.start()
        assert TASK_HANDLERS[OBJECT_STORAGE_SYNC](context(env), {})["uploaded"] == 3
        env.runtime.close()
    finally:
        own.stop()


def test_backfill_resumes_after_an_interruption(env: SimpleNamespace):
    done: list[str] = []

    def interrupt_after_three(asset: Any, outcome: str) -> None:
        done.append(asset.id)
        if len(done) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        env.sync.backfill(batch_size=2, on_item=interrupt_after_three)
    uploaded = {asset_id for asset_id, mark in marks(env).items() if mark and mark.startswith("s3://")}
    assert set(done) <= uploaded and len(uploaded) >= 3
    assert env.sync.pending_for_backfill() == 6 - len(uploaded)
    rest = env.sync.backfill(batch_size=2)
    assert rest.counts["uploaded"] == 6 - len(uploaded) and rest.counts["already_present"] == 0
    assert env.sync.pending_for_backfill() == 0


def test_an_object_uploaded_before_the_interruption_is_confirmed_not_uploaded_again(env: SimpleNamespace):
    first = env.assets[0]
    env.store.put(first.storage_path, env.runtime.storage.get(first.storage_path), "image/webp")
    report = env.sync.backfill()
    assert report.counts["already_present"] == 1 and report.counts["uploaded"] == 5


def test_corrupt_or_missing_local_files_are_never_uploaded(env: SimpleNamespace, caplog: Any):
    corrupt, missing = env.assets[0], env.assets[1]
    path = env.runtime.storage.path_for(corrupt.storage_path)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    env.runtime.storage.path_for(missing.storage_path).unlink()
    with caplog.at_level(logging.ERROR):
        report = env.sync.backfill()
    assert report.counts["local_corrupt"] == 1 and report.counts["local_missing"] == 1
    assert report.counts["uploaded"] == 4 and report.has_problems
    assert not object_path(env, corrupt).exists() and not object_path(env, missing).exists()
    assert marks(env)[corrupt.id] == UNAVAILABLE_PREFIX + "local_corrupt"
    # The periodic task skips them (they cannot starve it); backfill tries again.
    assert TASK_HANDLERS[OBJECT_STORAGE_SYNC](context(env), {})["total"] == 0
    assert env.sync.pending_for_backfill() == 2
    assert env.sync.status()["unavailable"] == 2


def test_verify_reports_missing_and_corrupt_objects_and_repairs_them(env: SimpleNamespace):
    env.sync.backfill()
    assert env.sync.verify().counts["ok"] == 6
    missing, corrupt = env.assets[0], env.assets[1]
    delete_object(env, missing)
    original = object_path(env, corrupt).read_bytes()
    replace_object(env, corrupt, original[:-1] + bytes([original[-1] ^ 0xFF]))
    shallow = env.sync.verify()  # HEAD cannot see bit rot that keeps size and metadata
    assert shallow.counts["missing"] == 1 and shallow.counts["corrupt"] == 0 and shallow.unresolved == 1
    deep = env.sync.verify(deep=True)
    assert deep.counts["missing"] == 1 and deep.counts["corrupt"] == 1 and deep.counts["ok"] == 4
    problems = {problem["asset_id"]: problem["problem"] for problem in deep.problems}
    assert problems == {missing.id: "missing", corrupt.id: "corrupt"}
    repaired = env.sync.verify(deep=True, repair=True)
    assert repaired.counts["repaired"] == 2 and repaired.unresolved == 0
    assert env.sync.verify(deep=True).counts["ok"] == 6
    assert object_path(env, corrupt).read_bytes() == original


def test_verify_repair_restores_a_lost_local_file_from_the_store(env: SimpleNamespace):
    env.sync.backfill()
    lost = env.assets[2]
    data = env.runtime.storage.get(lost.storage_path)
    env.runtime.storage.path_for(lost.storage_path).unlink()
    report = env.sync.verify(repair=True)
    assert report.counts["local_missing"] == 1 and report.counts["repaired"] == 1 and report.unresolved == 0
    assert env.runtime.storage.get(lost.storage_path) == data


def test_verify_lists_orphan_objects(env: SimpleNamespace):
    env.sync.backfill()
    env.store.put("zz/zz/leftover.webp", b"left behind", "image/webp")
    assert env.sync.orphans() == ["stickers/zz/zz/leftover.webp"]


# --- command line ---------------------------------------------------------------------------------


def run_cli(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    for name, value in env.settings.model_dump().items():
        if name == "feature_env" or value is None:
            continue
        monkeypatch.setenv(name.upper(), str(value))
    reset_settings_cache()
    try:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        reset_settings_cache()


def test_cli_backfill_verify_and_status(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch):
    result = run_cli(env, monkeypatch, "storage", "backfill", "--no-progress", "--limit", "4")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert first["pending_before"] == 6 and first["uploaded"] == 4
    result = run_cli(env, monkeypatch, "storage", "backfill", "--no-progress")
    assert json.loads(result.stdout)["uploaded"] == 2
    status = json.loads(run_cli(env, monkeypatch, "storage", "status").stdout)
    assert status["reachable"] is True and status["uploaded"] == 6 and status["pending"] == 0
    assert status["flag"]["name"] == "enable_object_storage_delivery"
    assert env.settings.sticker_object_storage_secret_access_key not in json.dumps(status)
    delete_object(env, env.assets[3])
    failed = run_cli(env, monkeypatch, "storage", "verify", "--no-progress")
    assert failed.exit_code == 1 and json.loads(failed.stdout)["missing"] == 1
    fixed = run_cli(env, monkeypatch, "storage", "verify", "--no-progress", "--repair")
    assert fixed.exit_code == 0 and json.loads(fixed.stdout)["repaired"] == 1


def test_cli_explains_configuration_problems(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STICKER_OBJECT_STORAGE_BUCKET", "")
    env.settings = env.settings.model_copy(update={"sticker_object_storage_bucket": ""})
    result = run_cli(env, monkeypatch, "storage", "status")
    assert result.exit_code == 1 and "STICKER_OBJECT_STORAGE_BUCKET is empty" in result.output
    env.settings = env.settings.model_copy(update={"sticker_object_storage_enabled": False})
    result = run_cli(env, monkeypatch, "storage", "backfill")
    assert result.exit_code == 1 and "object storage is off" in result.output


def test_cli_sign_url(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch):
    refused = run_cli(env, monkeypatch, "storage", "sign-url", "some-pack-k3x9q", env.assets[0].id)
    assert refused.exit_code == 1 and "STICKER_ASSET_URL_SIGNING_SECRET" in refused.output
    env.settings = env.settings.model_copy(update={"sticker_asset_url_signing_secret": "s3cret-for-links"})
    result = run_cli(
        env, monkeypatch, "storage", "sign-url", "Some-Pack-K3x9q", env.assets[0].id, "--ttl", "120"
    )
    assert result.exit_code == 0, result.output
    link = json.loads(result.stdout)
    assert link["url"].startswith(
        f"http://127.0.0.1:9102/api/sticker-packs/some-pack-k3x9q/stickers/{env.assets[0].id}"
    )
    assert "expires=" in link["url"] and "signature=" in link["url"]
    too_long = run_cli(
        env, monkeypatch, "storage", "sign-url", "some-pack-k3x9q", env.assets[0].id, "--ttl", "9999999"
    )
    assert too_long.exit_code == 2
