"""The reprocess producers on every engine: what each reason picks, and that it picks it once."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.intelligence.classification import reprocess
from omnizap.intelligence.classification.repository import save_result
from omnizap.intelligence.classification.results import ClassificationResult, fallback_result
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_asset_reprocess_queue,
    sticker_pack,
    sticker_pack_interaction_event,
    sticker_pack_item,
)
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.protocol import Queue
from omnizap.platform.queue.specs import REPROCESS_QUEUE

pytestmark = pytest.mark.engines
V = "v-current"
NOW = utcnow()


def asset(db: Database) -> str:
    asset_id = str(uuid.uuid4())
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert().values(
                id=asset_id,
                owner_jid="owner@s.whatsapp.net",
                sha256=uuid.uuid4().hex * 2,
                size_bytes=1000,
                storage_path=f"aa/bb/{asset_id}.webp",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    return asset_id


def classified(
    db: Database, *, confidence=0.9, margin=0.5, nsfw=0.01, version=V, age_hours=100.0, fallback=False
) -> str:
    asset_id = asset(db)
    if fallback:
        result = fallback_result(
            provider="builtin",
            model_name="m",
            classification_version=version,
            image_hash=None,
            code="x",
            detail="",
        )
    else:
        result = ClassificationResult(
            provider="builtin",
            model_name="m",
            classification_version=version,
            category="animals/cats",
            theme_key="animals/cats",
            confidence=confidence,
            entropy=0.5,
            confidence_margin=margin,
            nsfw_score=nsfw,
            is_nsfw=nsfw >= 0.78,
            ambiguous=False,
            all_scores={"animals/cats": confidence},
            top_labels=[],
        )
    with db.transaction() as connection:
        save_result(connection, asset_id, result, NOW - dt.timedelta(hours=age_hours))
    return asset_id


def pack(db: Database, items: list[str], *, visibility="public", sensitive=0, deleted=False) -> str:
    pack_id = str(uuid.uuid4())
    with db.transaction() as connection:
        connection.execute(
            sticker_pack.insert().values(
                id=pack_id,
                owner_jid="owner@s.whatsapp.net",
                name="pack",
                publisher="p",
                pack_key=f"k{uuid.uuid4().hex[:12]}",
                visibility=visibility,
                is_sensitive=sensitive,
                created_at=NOW,
                updated_at=NOW,
                deleted_at=NOW if deleted else None,
            )
        )
        for position, sticker in enumerate(items):
            connection.execute(
                sticker_pack_item.insert().values(
                    id=str(uuid.uuid4()),
                    pack_id=pack_id,
                    sticker_id=sticker,
                    position=position,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    return pack_id


def interactions(
    db: Database, pack_id: str, *, count: int, hours_ago: float, spread_hours: float = 1.0
) -> None:
    with db.transaction() as connection:
        connection.execute(
            sticker_pack_interaction_event.insert(),
            [
                {
                    "pack_id": pack_id,
                    "interaction": "open",
                    "created_at": NOW - dt.timedelta(hours=hours_ago + spread_hours * i / max(count, 1)),
                }
                for i in range(count)
            ],
        )


def picked(db: Database, produce) -> set[str]:
    with db.read() as connection:
        return {candidate.asset_id for candidate in produce(connection)}


def test_nsfw_review_picks_borderline_and_exposed_stickers(db):
    calm = classified(db, nsfw=0.05)
    borderline = classified(db, nsfw=0.55)
    flagged = classified(db, nsfw=0.95)  # already NSFW: the flag does its job
    exposed = classified(db, nsfw=0.3)
    private = classified(db, nsfw=0.3)
    sensitive = classified(db, nsfw=0.3)
    old_version = classified(db, nsfw=0.55, version="v-old")
    broken = classified(db, fallback=True)
    pack(db, [calm, exposed])
    pack(db, [private], visibility="private")
    pack(db, [sensitive], sensitive=1)

    def produce(connection):
        return reprocess.nsfw_review(connection, version=V, band=(0.4, 0.78), public_threshold=0.25, limit=50)

    assert picked(db, produce) == {borderline, exposed}
    assert not {calm, flagged, private, sensitive, old_version, broken} & picked(db, produce)

    queue = Queue(db, REPROCESS_QUEUE)
    with db.read() as connection:
        candidates = produce(connection)
    assert reprocess.enqueue(db, queue, candidates, version=V, now=NOW) == 2
    assert picked(db, produce) == set()  # marked for this version
    with db.read() as connection:
        queued = connection.execute(sa.select(sticker_asset_reprocess_queue)).mappings().all()
    assert {row["reason"] for row in queued} == {"NSFW_REVIEW"}
    assert {row["priority"] for row in queued} == {reprocess.PRIORITIES["NSFW_REVIEW"]}


def test_low_confidence_picks_low_scores_and_thin_margins_once_old_enough(db):
    unsure = classified(db, confidence=0.3, margin=0.3)
    thin = classified(db, confidence=0.8, margin=0.02)
    sure = classified(db, confidence=0.9, margin=0.6)
    recent = classified(db, confidence=0.3, margin=0.3, age_hours=1)
    broken = classified(db, fallback=True)

    def produce(connection, limit=50):
        return reprocess.low_confidence(
            connection,
            version=V,
            threshold=0.65,
            margin=0.1,
            classified_before=NOW - dt.timedelta(hours=48),
            limit=limit,
        )

    assert picked(db, produce) == {unsure, thin}
    assert not {sure, recent, broken} & picked(db, produce)
    assert picked(db, lambda connection: produce(connection, limit=1)) == {unsure}  # lowest first, bounded


def test_model_upgrade_picks_other_versions_oldest_first(db):
    old = classified(db, version="v1", age_hours=10)
    older = classified(db, version="v0", age_hours=20)
    current = classified(db)
    with db.transaction() as connection:  # updated_at decides the order
        connection.execute(
            sa.text("UPDATE sticker_asset_classification SET updated_at = classified_at WHERE 1 = 1")
        )
    with db.read() as connection:
        first = reprocess.model_upgrade(connection, version=V, limit=1)
        both = reprocess.model_upgrade(connection, version=V, limit=10)
    assert [candidate.asset_id for candidate in first] == [older]
    assert {candidate.asset_id for candidate in both} == {old, older}
    assert current not in {candidate.asset_id for candidate in both}
    assert both[0].detail == "v0->v-current"


def test_trend_shift_picks_items_of_packs_whose_engagement_jumped(db):
    jumping = [classified(db), classified(db)]
    unclassified = asset(db)
    steady = [classified(db)]
    hidden = [classified(db)]
    quiet = [classified(db)]
    jumping_pack = pack(db, [*jumping, unclassified])
    steady_pack = pack(db, steady)
    hidden_pack = pack(db, hidden, visibility="private")
    quiet_pack = pack(db, quiet)
    interactions(db, jumping_pack, count=40, hours_ago=1, spread_hours=20)
    interactions(db, jumping_pack, count=6, hours_ago=30, spread_hours=100)
    interactions(db, steady_pack, count=30, hours_ago=1, spread_hours=20)
    interactions(db, steady_pack, count=180, hours_ago=30, spread_hours=130)
    interactions(db, hidden_pack, count=40, hours_ago=1, spread_hours=20)
    interactions(db, quiet_pack, count=5, hours_ago=1, spread_hours=5.0)

    with db.read() as connection:
        jumps = reprocess.trending_packs(
            connection,
            now=NOW,
            horizon=dt.timedelta(hours=24),
            baseline=dt.timedelta(days=7),
            min_events=20,
            ratio=3.0,
        )
    assert [jump.pack_id for jump in jumps] == [jumping_pack]
    assert jumps[0].recent == 40 and jumps[0].before == 6

    def produce(connection):
        return reprocess.trend_shift(
            connection,
            version=V,
            now=NOW,
            horizon=dt.timedelta(hours=24),
            baseline=dt.timedelta(days=7),
            min_events=20,
            ratio=3.0,
            limit=10,
        )

    assert picked(db, produce) == set(jumping)
    with db.read() as connection:
        candidates = produce(connection)
    assert reprocess.enqueue(db, Queue(db, REPROCESS_QUEUE), candidates, version=V, now=NOW) == 2
    assert picked(db, produce) == set()


def test_run_producers_is_bounded_and_idempotent(db):
    for _ in range(5):
        classified(db, version="v-old")
    settings = Settings(_env_file=None, sticker_reprocess_model_upgrade_scan_limit=3)
    queue = Queue(db, REPROCESS_QUEUE)
    first = reprocess.run_producers(db, queue, settings, version=V, now=NOW)
    second = reprocess.run_producers(db, queue, settings, version=V, now=NOW)
    third = reprocess.run_producers(db, queue, settings, version=V, now=NOW)
    assert [first["MODEL_UPGRADE"], second["MODEL_UPGRADE"], third["MODEL_UPGRADE"]] == [3, 2, 0]


def test_idempotency_keys_are_bounded_and_distinct():
    long_version = "v" * 300
    a = reprocess.Candidate(str(uuid.uuid4()), "MODEL_UPGRADE", f"x->{long_version}")
    b = reprocess.Candidate(a.asset_id, "MODEL_UPGRADE", f"y->{long_version}")
    assert len(reprocess.idempotency_key(a)) <= 180
    assert reprocess.idempotency_key(a) != reprocess.idempotency_key(b)
    assert reprocess.idempotency_key(a).startswith(f"reprocess:{a.asset_id}:MODEL_UPGRADE:")
