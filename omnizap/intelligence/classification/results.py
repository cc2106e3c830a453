"""What a classification produces, the statistics every provider shares, and the fallback row.

A result maps one-to-one onto the columns of `sticker_asset_classification`. Labels are strings of
at most 120 characters (the `category` column); a builtin result's labels are taxonomy theme keys
(`animals/cats`), a clip-http result's labels are whatever the service classified against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LABEL_MAX = 120
TOP_K = 5
TOP_LABELS_MAX = 10
ALL_SCORES_MAX = 256
# The CLIP service's thresholds (pipeline §1.1): ambiguous when the full distribution is flat or the
# top five share the mass nearly evenly.
ENTROPY_THRESHOLD = 2.5
ENTROPY_NORMALIZED_THRESHOLD = 0.76
INVALID_IMAGE_LABEL = "invalid image"


@dataclass(frozen=True)
class ClassificationResult:
    """One classified asset. Scores are rounded to 6 decimals, as the original stored them."""

    provider: str
    model_name: str | None
    classification_version: str
    category: str | None
    theme_key: str | None
    confidence: float | None
    entropy: float | None
    confidence_margin: float | None
    nsfw_score: float | None
    is_nsfw: bool
    ambiguous: bool
    all_scores: dict[str, float]
    top_labels: list[dict[str, Any]]
    signals: dict[str, Any] = field(default_factory=dict)
    image_hash: str | None = None
    embedding: bytes | None = None

    @property
    def is_fallback(self) -> bool:
        return bool(self.signals.get("classification_failed"))

    def columns(self) -> dict[str, Any]:
        """The classification row's columns (without asset_id and timestamps)."""
        return {
            "provider": self.provider[:64],
            "model_name": self.model_name[:128] if self.model_name else None,
            "classification_version": self.classification_version[:64],
            "category": self.category[:LABEL_MAX] if self.category else None,
            "theme_key": self.theme_key[:160] if self.theme_key else None,
            "confidence": self.confidence,
            "entropy": self.entropy,
            "confidence_margin": self.confidence_margin,
            "nsfw_score": self.nsfw_score,
            "is_nsfw": 1 if self.is_nsfw else 0,
            "ambiguous": 1 if self.ambiguous else 0,
            "all_scores": self.all_scores,
            "top_labels": self.top_labels,
            "signals": self.signals,
            "image_hash": self.image_hash,
            "embedding": self.embedding,
        }


def round6(value: float) -> float:
    return round(float(value), 6)


@dataclass(frozen=True)
class DistributionStats:
    category: str | None
    confidence: float | None
    margin: float | None
    entropy: float | None
    entropy_normalized: float | None
    ambiguous: bool


def distribution_stats(scores: Mapping[str, float]) -> DistributionStats:
    """Top label, its score, top1 − top2, Shannon entropy (natural log) of the renormalised
    distribution, and the top-5 entropy over ln 5, as the CLIP service computed them (§1.1)."""
    positive = {label: float(score) for label, score in scores.items() if score > 0 and math.isfinite(score)}
    if not positive:
        return DistributionStats(None, None, None, None, None, True)
    ranked = sorted(positive.items(), key=lambda pair: (-pair[1], pair[0]))
    total = sum(score for _, score in ranked)
    entropy = -sum((s / total) * math.log(s / total) for _, s in ranked)
    top = ranked[:TOP_K]
    top_total = sum(score for _, score in top)
    top_entropy = -sum((s / top_total) * math.log(s / top_total) for _, s in top)
    normalized = top_entropy / math.log(len(top)) if len(top) >= 2 else 0.0
    margin = ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0)
    return DistributionStats(
        category=ranked[0][0],
        confidence=round6(ranked[0][1]),
        margin=round6(margin),
        entropy=round6(entropy),
        entropy_normalized=round6(normalized),
        ambiguous=entropy > ENTROPY_THRESHOLD or normalized > ENTROPY_NORMALIZED_THRESHOLD,
    )


def ranked_scores(scores: Mapping[str, float], limit: int = ALL_SCORES_MAX) -> dict[str, float]:
    """Finite scores, best first, 6 decimals, labels cut to the column size, at most `limit`."""
    kept: dict[str, float] = {}
    for label, score in sorted(scores.items(), key=lambda pair: (-pair[1], pair[0])):
        key = str(label).strip()[:LABEL_MAX]
        if key and key not in kept and math.isfinite(score):
            kept[key] = round6(score)
        if len(kept) >= limit:
            break
    return kept


def top_label_entries(scores: Mapping[str, float], limit: int = TOP_K) -> list[dict[str, Any]]:
    """`top_labels` in the original's shape: `{label, score, logit, clip_score}`."""
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]
    return [
        {"label": label, "score": round6(score), "logit": None, "clip_score": None} for label, score in ranked
    ]


def fallback_result(
    *,
    provider: str,
    model_name: str | None,
    classification_version: str,
    image_hash: str | None,
    code: str,
    detail: str,
) -> ClassificationResult:
    """The row an unreadable image gets (pipeline §1.3): "invalid image" with confidence 0.

    It is a real, final answer for this version (the file cannot be classified), so the asset
    leaves the pending scan; a new classification version re-queues it like any other row."""
    return ClassificationResult(
        provider=provider,
        model_name=model_name,
        classification_version=classification_version,
        category=INVALID_IMAGE_LABEL,
        theme_key=None,
        confidence=0.0,
        entropy=0.0,
        confidence_margin=0.0,
        nsfw_score=0.0,
        is_nsfw=False,
        ambiguous=True,
        all_scores={INVALID_IMAGE_LABEL: 1.0},
        top_labels=[{"label": INVALID_IMAGE_LABEL, "score": 1.0, "logit": None, "clip_score": None}],
        signals={"classification_failed": True, "error": code, "detail": detail[:240]},
        image_hash=image_hash,
        embedding=None,
    )
