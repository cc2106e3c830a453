"""Producers of the reprocess queue: what to classify again, and why (pipeline §1.5, fixed).

- MODEL_UPGRADE (priority 60): rows of another classification version, oldest first; normal pass.
- NSFW_REVIEW (90): rows of this version whose NSFW score is in the borderline band, or above the
  public threshold while the sticker is in a public, non-sensitive pack; thorough pass.
- TREND_SHIFT (75): rows of this version in public packs whose interactions jumped (the last
  horizon against the baseline daily rate, from `sticker_pack_interaction_event`); thorough pass.
- LOW_CONFIDENCE (70): rows of this version whose confidence or margin is below the thresholds
  and that were classified long enough ago; thorough pass.

Every producer is bounded per cycle and fires once per (asset, reason, classification version): the
pick is recorded in `sticker_asset_reprocess_mark` in the enqueue's transaction, and producers skip
marked rows, so neither a completed task nor a purged queue row brings the asset back. (The
original's backfill re-enqueued every asset as soon as its previous task completed.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.config import Settings
from omnizap.intelligence.classification.results import INVALID_IMAGE_LABEL
from omnizap.platform.db import Database
from omnizap.platform.db.engine import excluded, upsert
from omnizap.platform.db.schema import (
    sticker_asset_classification,
    sticker_asset_reprocess_mark,
    sticker_pack,
    sticker_pack_interaction_event,
    sticker_pack_item,
)
from omnizap.platform.queue.protocol import Queue

MODEL_UPGRADE = "MODEL_UPGRADE"
LOW_CONFIDENCE = "LOW_CONFIDENCE"
TREND_SHIFT = "TREND_SHIFT"
NSFW_REVIEW = "NSFW_REVIEW"
REASONS = (MODEL_UPGRADE, LOW_CONFIDENCE, TREND_SHIFT, NSFW_REVIEW)
PRIORITIES = {NSFW_REVIEW: 90, TREND_SHIFT: 75, LOW_CONFIDENCE: 70, MODEL_UPGRADE: 60}
THOROUGH_REASONS = frozenset({LOW_CONFIDENCE, TREND_SHIFT, NSFW_REVIEW})
MAX_ATTEMPTS = 5

c = sticker_asset_classification.c


@dataclass(frozen=True)
class Candidate:
    asset_id: str
    reason: str
    detail: str  # what makes this pick distinct (the version it moves from, the trend window…)


def _unmarked(reason: str, version: str) -> sa.ColumnElement[bool]:
    m = sticker_asset_reprocess_mark.c
    return ~sa.exists().where(
        m.asset_id == c.asset_id, m.reason == reason, m.classification_version == version
    )


def _real_row() -> sa.ColumnElement[bool]:
    """Not a fallback row: reviewing an unreadable file again with the same models changes nothing."""
    return sa.or_(c.category.is_(None), c.category != INVALID_IMAGE_LABEL)


def model_upgrade(connection: Connection, *, version: str, limit: int) -> list[Candidate]:
    if limit <= 0:
        return []
    rows = connection.execute(
        sa.select(c.asset_id, c.classification_version)
        .where(c.classification_version != version, _unmarked(MODEL_UPGRADE, version))
        .order_by(c.updated_at.asc(), c.asset_id.asc())
        .limit(limit)
    )
    return [
        Candidate(row.asset_id, MODEL_UPGRADE, f"{row.classification_version}->{version}") for row in rows
    ]


def low_confidence(
    connection: Connection,
    *,
    version: str,
    threshold: float,
    margin: float,
    classified_before: dt.datetime,
    limit: int,
) -> list[Candidate]:
    if limit <= 0:
        return []
    rows = connection.execute(
        sa.select(c.asset_id)
        .where(
            c.classification_version == version,
            sa.or_(c.confidence < threshold, c.confidence_margin < margin),
            c.classified_at <= classified_before,
            _real_row(),
            _unmarked(LOW_CONFIDENCE, version),
        )
        .order_by(c.confidence.asc(), c.asset_id.asc())
        .limit(limit)
    )
    return [Candidate(row.asset_id, LOW_CONFIDENCE, version) for row in rows]


def _in_public_safe_pack() -> sa.ColumnElement[bool]:
    p, i = sticker_pack.c, sticker_pack_item.c
    return sa.exists().where(
        i.sticker_id == c.asset_id,
        p.id == i.pack_id,
        p.visibility == "public",
        p.is_sensitive == 0,
        p.deleted_at.is_(None),
    )


def nsfw_review(
    connection: Connection,
    *,
    version: str,
    band: tuple[float, float],
    public_threshold: float,
    limit: int,
) -> list[Candidate]:
    if limit <= 0:
        return []
    low, high = band
    borderline = sa.and_(c.nsfw_score >= low, c.nsfw_score < high)
    exposed = sa.and_(c.nsfw_score >= public_threshold, c.is_nsfw == 0, _in_public_safe_pack())
    rows = connection.execute(
        sa.select(c.asset_id)
        .where(
            c.classification_version == version,
            c.nsfw_score.is_not(None),
            sa.or_(borderline, exposed),
            _real_row(),
            _unmarked(NSFW_REVIEW, version),
        )
        .order_by(c.nsfw_score.desc(), c.asset_id.asc())
        .limit(limit)
    )
    return [Candidate(row.asset_id, NSFW_REVIEW, version) for row in rows]


@dataclass(frozen=True)
class TrendJump:
    pack_id: str
    recent: int
    before: int
    ratio: float


def trending_packs(
    connection: Connection,
    *,
    now: dt.datetime,
    horizon: dt.timedelta,
    baseline: dt.timedelta,
    min_events: int,
    ratio: float,
) -> list[TrendJump]:
    """Public packs whose interaction rate over the last `horizon` is at least `ratio` times their
    daily rate in the rest of the `baseline` window (a pack with no history counts as jumping once
    it has `min_events`). Strongest jump first."""
    e, p = sticker_pack_interaction_event.c, sticker_pack.c
    horizon_start = now - horizon
    recent = sa.func.sum(sa.case((e.created_at >= horizon_start, 1), else_=0))
    before = sa.func.sum(sa.case((e.created_at < horizon_start, 1), else_=0))
    rows = connection.execute(
        sa.select(e.pack_id, recent.label("recent"), before.label("before"))
        .select_from(sticker_pack_interaction_event.join(sticker_pack, p.id == e.pack_id))
        .where(
            e.created_at >= now - baseline,
            e.created_at <= now,
            p.visibility == "public",
            p.deleted_at.is_(None),
        )
        .group_by(e.pack_id)
        .having(recent >= min_events)
    )
    horizon_days = horizon.total_seconds() / 86_400
    rest_days = max((baseline - horizon).total_seconds() / 86_400, horizon_days)
    jumps = []
    for row in rows:
        recent_rate = int(row.recent) / horizon_days
        baseline_rate = int(row.before) / rest_days
        jump = recent_rate / baseline_rate if baseline_rate > 0 else float("inf")
        if jump >= ratio:
            jumps.append(TrendJump(str(row.pack_id), int(row.recent), int(row.before), jump))
    jumps.sort(key=lambda jump: (-jump.ratio, -jump.recent, jump.pack_id))
    return jumps


def trend_shift(
    connection: Connection,
    *,
    version: str,
    now: dt.datetime,
    horizon: dt.timedelta,
    baseline: dt.timedelta,
    min_events: int,
    ratio: float,
    limit: int,
) -> list[Candidate]:
    if limit <= 0:
        return []
    picked: list[Candidate] = []
    seen: set[str] = set()
    window = now.strftime("%Y%m%d")
    i = sticker_pack_item.c
    for jump in trending_packs(
        connection, now=now, horizon=horizon, baseline=baseline, min_events=min_events, ratio=ratio
    ):
        rows = connection.execute(
            sa.select(c.asset_id)
            .select_from(sticker_asset_classification.join(sticker_pack_item, i.sticker_id == c.asset_id))
            .where(
                i.pack_id == jump.pack_id,
                c.classification_version == version,
                _real_row(),
                _unmarked(TREND_SHIFT, version),
            )
            .order_by(i.position.asc())
            .limit(limit - len(picked))
        )
        for row in rows:
            if row.asset_id not in seen:
                seen.add(row.asset_id)
                picked.append(Candidate(row.asset_id, TREND_SHIFT, f"{version}:{jump.pack_id}:{window}"))
        if len(picked) >= limit:
            break
    return picked


def idempotency_key(candidate: Candidate) -> str:
    """`reprocess:<asset>:<reason>:<digest of what makes it distinct>` (bounded to 180 characters)."""
    digest = hashlib.sha256(candidate.detail.encode()).hexdigest()[:16]
    return f"reprocess:{candidate.asset_id}:{candidate.reason}:{digest}"


def enqueue(
    database: Database, queue: Queue, candidates: Sequence[Candidate], *, version: str, now: dt.datetime
) -> int:
    """Enqueue the picks and mark them, together; returns how many rows were inserted."""
    if not candidates:
        return 0
    inserted = 0
    with database.transaction() as connection:
        for candidate in candidates:
            inserted += queue.enqueue(
                values={"asset_id": candidate.asset_id, "reason": candidate.reason},
                idempotency_key=idempotency_key(candidate),
                priority=PRIORITIES[candidate.reason],
                max_attempts=MAX_ATTEMPTS,
                connection=connection,
            )
            connection.execute(
                upsert(
                    connection.dialect.name,
                    sticker_asset_reprocess_mark,
                    {
                        "asset_id": candidate.asset_id,
                        "reason": candidate.reason,
                        "classification_version": version,
                        "marked_at": now,
                    },
                    conflict_columns=["asset_id", "reason"],
                    update={"classification_version": excluded("classification_version"), "marked_at": now},
                )
            )
    return inserted


def producers(
    settings: Settings, version: str, now: dt.datetime
) -> list[tuple[str, Callable[[Connection], list[Candidate]]]]:
    """Each reason with its bounded query, in the order they run (safety first)."""
    stale = now - dt.timedelta(hours=settings.sticker_reprocess_low_confidence_stale_hours)
    return [
        (
            NSFW_REVIEW,
            lambda connection: nsfw_review(
                connection,
                version=version,
                band=(settings.sticker_reprocess_nsfw_review_min, settings.sticker_reprocess_nsfw_review_max),
                public_threshold=settings.sticker_reprocess_nsfw_public_threshold,
                limit=settings.sticker_reprocess_nsfw_review_scan_limit,
            ),
        ),
        (
            MODEL_UPGRADE,
            lambda connection: model_upgrade(
                connection, version=version, limit=settings.sticker_reprocess_model_upgrade_scan_limit
            ),
        ),
        (
            TREND_SHIFT,
            lambda connection: trend_shift(
                connection,
                version=version,
                now=now,
                horizon=dt.timedelta(hours=settings.sticker_reprocess_trend_horizon_hours),
                baseline=dt.timedelta(days=settings.sticker_reprocess_trend_baseline_days),
                min_events=settings.sticker_reprocess_trend_min_events,
                ratio=settings.sticker_reprocess_trend_ratio,
                limit=settings.sticker_reprocess_trend_scan_limit,
            ),
        ),
        (
            LOW_CONFIDENCE,
            lambda connection: low_confidence(
                connection,
                version=version,
                threshold=settings.sticker_reprocess_low_confidence_threshold,
                margin=settings.sticker_reprocess_low_confidence_margin,
                classified_before=stale,
                limit=settings.sticker_reprocess_low_confidence_scan_limit,
            ),
        ),
    ]


def run_producers(
    database: Database, queue: Queue, settings: Settings, *, version: str, now: dt.datetime
) -> dict[str, int]:
    """Run every producer once; reason → rows enqueued."""
    enqueued: dict[str, int] = {}
    for reason, pick in producers(settings, version, now):
        with database.read() as connection:
            candidates = pick(connection)
        enqueued[reason] = enqueue(database, queue, candidates, version=version, now=now)
    return enqueued
