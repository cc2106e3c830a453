"""The classification cycle on every engine: pending assets, fallback rows, outages, the reprocess
queue with its producers, backoff and dead letters, events and metrics."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from classification_support import ClipServer, clip_answer, sample_photo, text_sticker
from prometheus_client import CollectorRegistry

from omnizap.config import Settings
from omnizap.core.stickers.service import StickerService
from omnizap.intelligence.classification import reprocess
from omnizap.intelligence.classification.cycle import ClassificationCycle
from omnizap.intelligence.classification.errors import ClassifierUnavailable
from omnizap.intelligence.classification.metrics import ClassificationMetrics
from omnizap.intelligence.classification.providers import classifier_for
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    domain_event_outbox,
    sticker_asset,
    sticker_asset_classification,
    sticker_asset_reprocess_dlq,
    sticker_asset_reprocess_queue,
)
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.protocol import Queue
from omnizap.platform.queue.specs import REPROCESS_QUEUE
from omnizap.platform.storage import LocalStorage

pytestmark = pytest.mark.engines
OWNER = "5511977776666@s.whatsapp.net"


def cycle_settings(db: Database, tmp_path: Path, **overrides) -> Settings:
    values = {
        "database_url": db.url.render_as_string(hide_password=False),
        "sticker_storage_dir": tmp_path / "stickers",
        "sticker_pack_auto_collect_enabled": False,
        "sticker_classification_background_concurrency": 2,
        "sticker_worker_retry_base_seconds": 60.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def clip_settings(db: Database, tmp_path: Path, url: str, version: str = "vA", **overrides) -> Settings:
    values = {
        "sticker_classifier_backend": "clip-http",
        "clip_classifier_api_url": url,
        "clip_classifier_classification_version": version,
        **overrides,
    }
    return cycle_settings(db, tmp_path, **values)


def ingest(db: Database, settings: Settings, data: bytes) -> str:
    storage = LocalStorage(settings.sticker_storage_dir)
    return StickerService(db, storage, settings).ingest(data, owner_jid=OWNER).asset.id


def raw_asset(db: Database, settings: Settings, data: bytes | None) -> str:
    """An asset row whose stored file is `data` as is (None: no file at all), as after corruption."""
    digest = hashlib.sha256(data or uuid.uuid4().bytes).hexdigest()
    key = f"{digest[:2]}/{digest[2:4]}/{digest}.webp"
    if data is not None:
        LocalStorage(settings.sticker_storage_dir).put(key, data)
    asset_id = str(uuid.uuid4())
    now = utcnow()
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert().values(
                id=asset_id,
                owner_jid=OWNER,
                sha256=digest,
                size_bytes=len(data or b""),
                storage_path=key,
                created_at=now,
                updated_at=now,
            )
        )
    return asset_id


def run_cycle(db, settings, classifier=None, metrics=None, **options):
    cycle = ClassificationCycle(
        settings=settings,
        database=db,
        storage=LocalStorage(settings.sticker_storage_dir),
        classifier=classifier,
        metrics=metrics or ClassificationMetrics(CollectorRegistry()),
    )
    return cycle.run(**options)


def rows(db: Database) -> dict[str, dict]:
    with db.read() as connection:
        found = connection.execute(sa.select(sticker_asset_classification)).mappings().all()
    return {row["asset_id"]: dict(row) for row in found}


def events(db: Database) -> list[dict]:
    with db.read() as connection:
        return [dict(row) for row in connection.execute(sa.select(domain_event_outbox)).mappings()]


def queue_rows(db: Database) -> list[dict]:
    with db.read() as connection:
        found = connection.execute(sa.select(sticker_asset_reprocess_queue).order_by("id"))
        return [dict(row) for row in found.mappings()]


def classified_events(db: Database) -> list[dict]:
    return [event for event in events(db) if event["event_type"] == "STICKER_CLASSIFIED"]


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(f"omnizap_sticker_classification_{name}", labels) or 0.0


# --- pending assets ---------------------------------------------------------------------------------


def test_pending_assets_get_rows_events_and_metrics(db, tmp_path, builtin_classifier):
    settings = cycle_settings(db, tmp_path)
    cat = ingest(db, settings, sample_photo("chelsea.png"))
    coffee = ingest(db, settings, sample_photo("coffee.png"))
    caption = ingest(db, settings, text_sticker(["BOM DIA", "GRUPO!", "KKKKKK"]))
    broken = raw_asset(db, settings, b"RIFF\x10\x00\x00\x00WEBPVP8 garbage")
    registry = CollectorRegistry()
    metrics = ClassificationMetrics(registry)

    report = run_cycle(db, settings, builtin_classifier, metrics, reprocess_enabled=False)

    assert report.status == "completed"
    assert report.pending.as_dict() == {"processed": 4, "classified": 3, "fallback": 1, "failed": 0}
    stored = rows(db)
    assert stored[cat]["theme_key"] == "animals/cats"
    assert stored[coffee]["theme_key"] == "food/drinks"
    assert stored[caption]["theme_key"] == "expressions/text"
    for asset_id in (cat, coffee, caption):
        row = stored[asset_id]
        assert row["provider"] == "builtin"
        assert row["classification_version"] == builtin_classifier.version
        assert 0 < row["confidence"] <= 1 and row["entropy"] >= 0 and row["confidence_margin"] >= 0
        assert row["nsfw_score"] < 0.2 and row["is_nsfw"] == 0
        assert row["all_scores"] and row["top_labels"] and row["signals"]["keyframes"] == [0]
        assert len(row["embedding"]) == 1280 * 4
        assert row["image_hash"] and row["classified_at"] is not None
    fallback = stored[broken]
    assert fallback["category"] == "invalid image"
    assert fallback["confidence"] == 0 and fallback["ambiguous"] == 1 and fallback["theme_key"] is None
    assert fallback["all_scores"] == {"invalid image": 1.0}
    assert fallback["signals"]["classification_failed"] is True
    assert fallback["signals"]["error"] == "decoder-error"

    classified = classified_events(db)
    assert sorted(event["aggregate_id"] for event in classified) == sorted([cat, coffee, caption, broken])
    for event in classified:
        assert event["payload"]["classification_version"] == builtin_classifier.version
        assert event["idempotency_key"].startswith(f"sticker_classified:{event['aggregate_id']}:")

    assert (
        registry.get_sample_value("omnizap_sticker_classification_cycle_total", {"status": "completed"}) == 1
    )
    assert (
        registry.get_sample_value("omnizap_sticker_classification_assets_total", {"outcome": "classified"})
        == 3
    )
    assert (
        registry.get_sample_value("omnizap_sticker_classification_assets_total", {"outcome": "fallback"}) == 1
    )
    assert (
        registry.get_sample_value(
            "omnizap_sticker_classification_cycle_duration_ms_count", {"status": "completed"}
        )
        == 1
    )

    again = run_cycle(db, settings, builtin_classifier, reprocess_enabled=False)
    assert again.pending.as_dict()["processed"] == 0
    assert len(classified_events(db)) == len(classified)


def test_missing_file_stays_pending_without_blocking_others(db, tmp_path, builtin_classifier):
    settings = cycle_settings(db, tmp_path, sticker_classification_background_batch_size=1)
    raw_asset(db, settings, None)
    cat = ingest(db, settings, sample_photo("chelsea.png"))
    report = run_cycle(db, settings, builtin_classifier, reprocess_enabled=False)
    assert report.pending.as_dict() == {"processed": 2, "classified": 1, "fallback": 0, "failed": 1}
    assert set(rows(db)) == {cat}
    assert "unreadable" in report.as_dict()["errors"][0]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_classifier_outage_fails_the_cycle_and_writes_nothing(db, tmp_path):
    settings = clip_settings(db, tmp_path, f"http://127.0.0.1:{_closed_port()}/classify")
    ingest(db, settings, sample_photo("chelsea.png"))
    registry = CollectorRegistry()
    with pytest.raises(ClassifierUnavailable):
        run_cycle(db, settings, metrics=ClassificationMetrics(registry))
    assert rows(db) == {}
    assert [event for event in events(db) if event["event_type"] == "STICKER_CLASSIFIED"] == []
    assert registry.get_sample_value("omnizap_sticker_classification_cycle_total", {"status": "failed"}) == 1
    assert (
        registry.get_sample_value("omnizap_sticker_classification_assets_total", {"outcome": "failed"}) == 1
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"clip_classifier_enabled": False},
        {"sticker_classification_background_enabled": False},
        {"clip_classifier_api_url": "ftp://127.0.0.1/classify"},
    ],
    ids=["classifier-disabled", "background-disabled", "unusable-url"],
)
def test_disabled_or_unusable_classifier_skips(db, tmp_path, overrides):
    settings = clip_settings(db, tmp_path, "http://127.0.0.1:1/classify", **overrides)
    ingest(db, settings, sample_photo("chelsea.png"))
    report = run_cycle(db, settings)
    assert report.status == "skipped"
    assert report.reason
    assert rows(db) == {}


def test_nothing_to_do_never_loads_the_classifier(db, tmp_path):
    settings = clip_settings(db, tmp_path, "ftp://127.0.0.1/classify")  # loading it would fail
    report = run_cycle(db, settings)
    assert report.status == "completed"
    assert report.pending.as_dict()["processed"] == 0


# --- reprocess queue --------------------------------------------------------------------------------


def serve_labels(server: ClipServer, labels: dict[str, float]) -> None:
    server.respond = lambda request: clip_answer(request, labels)


def test_new_version_requeues_old_rows_once(db, tmp_path, clip_server):
    serve_labels(clip_server, {"cat": 0.9, "meme": 0.1})
    first = clip_settings(db, tmp_path, clip_server.url, "vA")
    assets = [ingest(db, first, sample_photo(name)) for name in ("chelsea.png", "coffee.png", "camera.png")]
    run_cycle(db, first, reprocess_enabled=False)
    assert {row["classification_version"] for row in rows(db).values()} == {"vA"}

    second = clip_settings(db, tmp_path, clip_server.url, "vB")
    report = run_cycle(db, second)
    assert report.enqueued[reprocess.MODEL_UPGRADE] == 3
    assert report.reprocess_rows == {"completed": 3}
    assert {row["classification_version"] for row in rows(db).values()} == {"vB"}
    versions = {event["payload"]["classification_version"] for event in classified_events(db)}
    assert versions == {"vA", "vB"}  # one event per version: the key carries it
    assert all(row["status"] == "completed" for row in queue_rows(db))

    assert run_cycle(db, second).enqueued[reprocess.MODEL_UPGRADE] == 0
    Queue(db, REPROCESS_QUEUE).purge(older_than=dt.timedelta(0))
    assert queue_rows(db) == []
    assert run_cycle(db, second).enqueued[reprocess.MODEL_UPGRADE] == 0  # marks outlive purged rows
    assert len(clip_server.requests) == 2 * len(assets)


def _age_rows(db: Database, hours: float) -> None:
    with db.transaction() as connection:
        connection.execute(
            sticker_asset_classification.update().values(classified_at=utcnow() - dt.timedelta(hours=hours))
        )


def test_low_confidence_is_reviewed_once_per_version(db, tmp_path, clip_server):
    serve_labels(clip_server, {"cat": 0.4, "dog": 0.35, "meme": 0.25})
    settings = clip_settings(db, tmp_path, clip_server.url, "vA")
    asset = ingest(db, settings, sample_photo("chelsea.png"))
    run_cycle(db, settings, reprocess_enabled=False)

    fresh = run_cycle(db, settings)  # too recent: the stale window has not passed
    assert fresh.enqueued[reprocess.LOW_CONFIDENCE] == 0

    _age_rows(db, 72)
    report = run_cycle(db, settings)
    assert report.enqueued[reprocess.LOW_CONFIDENCE] == 1
    assert report.reprocess_rows == {"completed": 1}
    assert rows(db)[asset]["confidence"] == 0.4  # the same answer again: still low

    _age_rows(db, 72)
    assert run_cycle(db, settings).enqueued[reprocess.LOW_CONFIDENCE] == 0  # no perpetual loop
    assert len(queue_rows(db)) == 1


def test_failed_reprocess_backs_off_then_dead_letters(db, tmp_path, clip_server):
    serve_labels(clip_server, {"cat": 0.9, "meme": 0.1})
    first = clip_settings(db, tmp_path, clip_server.url, "vA")
    asset = ingest(db, first, sample_photo("chelsea.png"))
    run_cycle(db, first, reprocess_enabled=False)

    clip_server.respond = lambda request: (500, b'{"detail": "model crashed"}')
    second = clip_settings(db, tmp_path, clip_server.url, "vB")
    with pytest.raises(ClassifierUnavailable):
        run_cycle(db, second)
    [row] = queue_rows(db)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["scheduled_at"] > utcnow() + dt.timedelta(seconds=20)  # backoff, not an immediate retry
    assert "model crashed" in row["last_error"]
    assert rows(db)[asset]["classification_version"] == "vA"  # nothing was written wrongly

    with db.transaction() as connection:
        connection.execute(
            sticker_asset_reprocess_queue.update().values(scheduled_at=utcnow(), max_attempts=2)
        )
    with pytest.raises(ClassifierUnavailable):
        run_cycle(db, second)
    [row] = queue_rows(db)
    assert row["status"] == "failed"
    with db.read() as connection:
        [letter] = connection.execute(sa.select(sticker_asset_reprocess_dlq)).mappings().all()
    assert letter["asset_id"] == asset and letter["reason"] == reprocess.MODEL_UPGRADE
    assert run_cycle(db, second, pending_limit=0).enqueued == {
        reprocess.NSFW_REVIEW: 0,
        reprocess.MODEL_UPGRADE: 0,  # dead-lettered, not re-enqueued: an operator replays it
        reprocess.TREND_SHIFT: 0,
        reprocess.LOW_CONFIDENCE: 0,
    }


def test_classifier_for_is_shared_per_settings(db, tmp_path):
    settings = clip_settings(db, tmp_path, "http://127.0.0.1:1/classify")
    assert classifier_for(settings) is classifier_for(settings)
