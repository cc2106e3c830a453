"""Ranking signals of a pack (pipeline §4.1), as pure functions of counted inputs.

Where the original read a classification that does not exist yet (the classifier arrives in a later
issue), neutral values stand in so unclassified packs rank among themselves by engagement, trend,
quality and age alone: classification confidence 0.5, cohesion 0.5, diversity 0.45 with tags or
0.25 without (as the original).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omnizap.catalog.classification import ClassificationFacts

NEUTRAL_CONFIDENCE = 0.5
NEUTRAL_COHESION = 0.5
TRENDING_THRESHOLD = 1.4
TREND_CAP = 20.0
ENGAGEMENT_CAP = 1.2
PACK_SCORE_CAP = 1.5
NSFW_LEVELS = ("safe", "suggestive", "explicit")
BASE_WEIGHTS = {"classification": 0.40, "engagement": 0.30, "quality": 0.20, "diversity": 0.10}
# Clamp of each weight (pipeline §4.1) after drift moved them.
WEIGHT_BOUNDS = {
    "classification": (0.1, 0.7),
    "engagement": (0.1, 0.7),
    "quality": (0.05, 0.6),
    "diversity": (0.05, 0.4),
}


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


@dataclass(frozen=True)
class SignalSettings:
    age_decay_days: float = 45.0
    explicit_threshold: float = 0.78
    suggestive_threshold: float = 0.4


@dataclass(frozen=True)
class SignalInputs:
    sticker_count: int
    quality_base: float | None  # mean per-item area/size score, None without items
    open_count: int
    like_count: int
    dislike_count: int
    opens_24h: int
    opens_7d: int
    facts: ClassificationFacts
    tag_count: int  # distinct merged tags (classification ∪ manual)
    reference_time: dt.datetime  # updated_at, else created_at
    is_sensitive: bool = False


def drift_weights(
    recent: Mapping[str, int], baseline: Mapping[str, int], sensitivity: float
) -> dict[str, float]:
    """Scoring weights moved by how much the last 7 days' categories differ from the last 30 days'.

    d = total-variation distance of the two category distributions; no data means no drift.
    """
    recent_total = sum(recent.values())
    baseline_total = sum(baseline.values())
    distance = 0.0
    if recent_total and baseline_total:
        labels = set(recent) | set(baseline)
        distance = 0.5 * sum(
            abs(recent.get(label, 0) / recent_total - baseline.get(label, 0) / baseline_total)
            for label in labels
        )
    adjusted = clamp(distance * sensitivity, 0.0, 1.0)
    raw = {
        "classification": clamp(0.4 - 0.1 * adjusted, 0.25, 0.45),
        "engagement": clamp(0.3 + 0.08 * adjusted, 0.25, 0.42),
        "quality": clamp(0.2 + 0.01 * adjusted, 0.15, 0.3),
        "diversity": clamp(0.1 + 0.01 * adjusted, 0.08, 0.2),
    }
    total = sum(raw.values())
    normalized = {key: value / total for key, value in raw.items()}
    return {key: round(clamp(value, *WEIGHT_BOUNDS[key]), 6) for key, value in normalized.items()}


def nsfw_level(facts: ClassificationFacts, settings: SignalSettings) -> str:
    reference = max(facts.nsfw_max, facts.nsfw_avg)
    if reference >= settings.explicit_threshold:
        return "explicit"
    if reference >= settings.suggestive_threshold or facts.nsfw_flagged > 0:
        return "suggestive"
    return "safe"


def engagement_score(likes: int, opens: int, dislikes: int) -> float:
    if not (likes or opens or dislikes):
        return 0.0
    return clamp((2 * likes + 0.15 * opens - 1.25 * dislikes) / 100, 0.0, ENGAGEMENT_CAP)


def trend_score(opens_24h: int, opens_7d: int) -> float:
    return clamp(opens_24h / max(0.5, opens_7d / 7), 0.0, TREND_CAP)


def age_decay(reference_time: dt.datetime, now: dt.datetime, settings: SignalSettings) -> float:
    age_days = max(0.0, (now - reference_time).total_seconds() / 86_400)
    return math.exp(-age_days / settings.age_decay_days)


def _scored(
    *,
    confidence: float,
    quality: float,
    diversity: float,
    cohesion: float,
    duplicate_penalty: float,
    engagement: float,
    trend: float,
    weights: Mapping[str, float],
    decay: float,
    level: str,
    settings: SignalSettings,
) -> dict[str, Any]:
    """The Signals object from its parts: pack score, ranking score and the rest, rounded to 6 dp."""
    pack_score = clamp(
        confidence * weights["classification"]
        + engagement * weights["engagement"]
        + quality * weights["quality"]
        + diversity * weights["diversity"]
        - 0.25 * duplicate_penalty,
        0.0,
        PACK_SCORE_CAP,
    )
    ranking = pack_score * decay + 0.08 * trend + 0.05 * cohesion
    return {
        "classification_confidence": round(confidence, 6),
        "quality_score": round(quality, 6),
        "engagement_score": round(engagement, 6),
        "diversity_score": round(diversity, 6),
        "cohesion_score": round(cohesion, 6),
        "duplicate_penalty": round(duplicate_penalty, 6),
        "trend_score": round(trend, 6),
        "pack_score": round(pack_score, 6),
        "ranking_score": round(ranking, 6),
        "age_decay_factor": round(decay, 6),
        "age_decay_days": settings.age_decay_days,
        "trending_now": trend >= TRENDING_THRESHOLD,
        "nsfw_level": level,
        "sensitive_content": level != "safe",
        "scoring_weights": {key: round(float(value), 6) for key, value in weights.items()},
    }


def compute_signals(
    inputs: SignalInputs, weights: Mapping[str, float], settings: SignalSettings, now: dt.datetime
) -> dict[str, Any]:
    """The Signals object (http §2.4): every score rounded to 6 decimals."""
    facts = inputs.facts
    classified = facts.classified_items
    confidence = clamp(facts.confidence, 0.0, 1.0) if classified else NEUTRAL_CONFIDENCE
    if inputs.quality_base is None or inputs.sticker_count == 0:
        quality = 0.0
    else:
        quality = clamp(inputs.quality_base - facts.quality_penalty, 0.0, 1.0)
    if classified == 0:
        diversity = 0.45 if inputs.tag_count else 0.25
        cohesion = NEUTRAL_COHESION
    else:
        similarity = facts.mean_similarity if facts.mean_similarity is not None else 0.5
        tag_share = clamp(inputs.tag_count / max(3, min(12, classified)), 0.0, 1.0)
        diversity = 0.7 * clamp(1 - similarity, 0.0, 1.0) + 0.3 * tag_share
        cohesion = facts.mean_similarity if facts.mean_similarity is not None else 1.0
    return _scored(
        confidence=confidence,
        quality=quality,
        diversity=diversity,
        cohesion=cohesion,
        duplicate_penalty=clamp(0.7 * facts.duplicate_share, 0.0, 1.0),
        engagement=engagement_score(inputs.like_count, inputs.open_count, inputs.dislike_count),
        trend=trend_score(inputs.opens_24h, inputs.opens_7d),
        weights=weights,
        decay=age_decay(inputs.reference_time, now, settings),
        level=nsfw_level(facts, settings),
        settings=settings,
    )


RESCORE_KEYS = (
    "classification_confidence",
    "quality_score",
    "diversity_score",
    "cohesion_score",
    "duplicate_penalty",
    "nsfw_level",
    "scoring_weights",
)


def rescore(
    base: Mapping[str, Any],
    *,
    like_count: int,
    open_count: int,
    dislike_count: int,
    opens_24h: int,
    opens_7d: int,
    reference_time: dt.datetime,
    settings: SignalSettings,
    now: dt.datetime,
) -> dict[str, Any] | None:
    """`base` (a snapshot's signals) after interactions: engagement, trend and what follows from
    them (pack and ranking score, trending, age decay) computed now; the parts interactions cannot
    move (classification confidence, quality, diversity, cohesion, duplicates, NSFW level, weights)
    kept. None when `base` lacks one of those parts (a full computation is needed)."""
    if any(key not in base for key in RESCORE_KEYS) or not isinstance(base["scoring_weights"], Mapping):
        return None
    weights = base["scoring_weights"]
    if any(key not in weights for key in BASE_WEIGHTS):
        return None
    return _scored(
        confidence=float(base["classification_confidence"]),
        quality=float(base["quality_score"]),
        diversity=float(base["diversity_score"]),
        cohesion=float(base["cohesion_score"]),
        duplicate_penalty=float(base["duplicate_penalty"]),
        engagement=engagement_score(like_count, open_count, dislike_count),
        trend=trend_score(opens_24h, opens_7d),
        weights={key: float(weights[key]) for key in BASE_WEIGHTS},
        decay=age_decay(reference_time, now, settings),
        level=str(base["nsfw_level"]),
        settings=settings,
    )


def effective_nsfw_level(signals_level: str, is_sensitive: bool) -> str:
    """A pack's level for the NSFW ceiling: an operator-flagged sensitive pack is `explicit`."""
    if is_sensitive:
        return "explicit"
    return signals_level if signals_level in NSFW_LEVELS else "safe"


def classify_intent(trending_now: bool, pack_score: float, like_count: int) -> str:
    """classifyPackIntent (http §3): rising, popular, most liked, else new."""
    if trending_now:
        return "crescendo_agora"
    if pack_score >= 0.65:
        return "em_alta"
    if like_count >= 12:
        return "mais_curtidos"
    return "novos"
