"""Classification as the catalog shows it: per sticker, per pack, and the facts ranking needs.

Rows come from `sticker_asset_classification` (written by the classifier of a later issue); every
function accepts that none exist. Shapes follow reference http §2.5; fields our schema does not
store (LLM expansions, similar images, semantic clusters) are given as empty values so an existing
front end finds them.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omnizap.catalog.text import label_tag, unique_tags
from omnizap.platform.values import finite_float

BLURRY_LABEL = "blurry image"
LOW_QUALITY_LABEL = "low quality compressed image"
DUPLICATE_SIMILARITY = 0.985
ENTROPY_FALLBACK_SCALE = 2.5
NSFW_TAG = "nsfw"


@dataclass(frozen=True)
class TagRules:
    sticker_min_score: float = 0.2
    pack_min_score: float = 0.18
    max_tags: int = 6


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def scores_of(row: Mapping[str, Any]) -> dict[str, float]:
    """The label → probability map of a classification row (bad entries dropped)."""
    raw = row.get("all_scores")
    if not isinstance(raw, Mapping):
        return {}
    scores: dict[str, float] = {}
    for label, value in raw.items():
        number = finite_float(value)
        if number is not None:
            scores[str(label)] = number
    return scores


def sticker_tags(row: Mapping[str, Any], rules: TagRules) -> list[str]:
    """`nsfw` if flagged, the category, then labels scoring ≥ the minimum, best first (pipeline §1.2)."""
    candidates: list[str] = []
    if row.get("is_nsfw"):
        candidates.append(NSFW_TAG)
    if row.get("category"):
        candidates.append(label_tag(row["category"]))
    ranked = sorted(scores_of(row).items(), key=lambda pair: (-pair[1], pair[0]))
    candidates.extend(label_tag(label) for label, score in ranked if score >= rules.sticker_min_score)
    return unique_tags(candidates, rules.max_tags)


def _entropy_normalized(row: Mapping[str, Any]) -> float | None:
    entropy = finite_float(row.get("entropy"))
    if entropy is None:
        return None
    labels = row.get("top_labels")
    count = len(labels) if isinstance(labels, list) else 0
    scale = math.log(count) if count >= 2 else ENTROPY_FALLBACK_SCALE
    return max(0.0, min(1.0, entropy / scale))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else None


def sticker_classification(row: Mapping[str, Any] | None, rules: TagRules) -> dict[str, Any] | None:
    """StickerClassification (http §2.5) of one classification row; None when unclassified."""
    if row is None:
        return None
    top_labels = row.get("top_labels") if isinstance(row.get("top_labels"), list) else []
    scores = scores_of(row)
    return {
        "asset_id": row.get("asset_id"),
        "provider": row.get("provider"),
        "model_name": row.get("model_name"),
        "classification_version": row.get("classification_version"),
        "category": row.get("category"),
        "confidence": _round(finite_float(row.get("confidence"))),
        "entropy": _round(finite_float(row.get("entropy"))),
        "entropy_normalized": _round(_entropy_normalized(row)),
        "confidence_margin": _round(finite_float(row.get("confidence_margin"))),
        "affinity_weight": None,
        "nsfw_score": _round(finite_float(row.get("nsfw_score"))),
        "is_nsfw": bool(row.get("is_nsfw")),
        "ambiguous": bool(row.get("ambiguous")),
        "image_hash": row.get("image_hash"),
        "all_scores": {label: round(score, 6) for label, score in scores.items()},
        "top_labels": top_labels,
        "similar_images": [],
        "llm_subtags": [],
        "llm_style_traits": [],
        "llm_emotions": [],
        "llm_pack_suggestions": [],
        "semantic_cluster_id": None,
        "semantic_cluster_slug": None,
        "classified_at": _iso(row.get("classified_at")),
        "updated_at": _iso(row.get("updated_at")),
        "tags": sticker_tags(row, rules),
    }


def _unit(scores: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(value * value for value in scores.values()))
    return {label: value / norm for label, value in scores.items()} if norm > 0 else {}


def _dot(left: Mapping[str, float], right: Mapping[str, float]) -> float:
    if len(left) > len(right):
        left, right = right, left
    return sum(value * right.get(label, 0.0) for label, value in left.items())


@dataclass(frozen=True)
class ClassificationFacts:
    """What ranking and listings need from a pack's item classifications, computed once per change.

    `mean_similarity` is the mean pairwise cosine of the items' score vectors (None below two
    classified items); `duplicate_share` the share of pairs at cosine ≥ 0.985.
    """

    total_items: int
    classified_items: int
    category: str | None
    confidence: float
    majority_category: str | None
    majority_ratio: float
    average_scores: dict[str, float]
    categories: list[dict[str, Any]]
    nsfw_avg: float
    nsfw_max: float
    nsfw_flagged: int
    tags: list[str]
    quality_penalty: float
    mean_similarity: float | None
    duplicate_share: float

    def summary(self, manual: Sequence[str] = ()) -> dict[str, Any]:
        """PackClassification (http §2.5); its tags are the classification's plus the manual ones."""
        return {
            "total_items": self.total_items,
            "classified_items": self.classified_items,
            "category": self.category,
            "confidence": round(self.confidence, 6),
            "majority_category": self.majority_category,
            "majority_ratio": round(self.majority_ratio, 6),
            "average_scores": dict(self.average_scores),
            "categories": [dict(entry) for entry in self.categories],
            "nsfw": {
                "avg_score": round(self.nsfw_avg, 6),
                "max_score": round(self.nsfw_max, 6),
                "flagged_items": self.nsfw_flagged,
            },
            "tags": merge_tags(self.tags, manual),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "total_items": self.total_items,
            "classified_items": self.classified_items,
            "category": self.category,
            "confidence": self.confidence,
            "majority_category": self.majority_category,
            "majority_ratio": self.majority_ratio,
            "average_scores": self.average_scores,
            "categories": self.categories,
            "nsfw_avg": self.nsfw_avg,
            "nsfw_max": self.nsfw_max,
            "nsfw_flagged": self.nsfw_flagged,
            "tags": self.tags,
            "quality_penalty": self.quality_penalty,
            "mean_similarity": self.mean_similarity,
            "duplicate_share": self.duplicate_share,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClassificationFacts:
        similarity = data.get("mean_similarity")
        return cls(
            total_items=int(data.get("total_items") or 0),
            classified_items=int(data.get("classified_items") or 0),
            category=data.get("category"),
            confidence=float(data.get("confidence") or 0.0),
            majority_category=data.get("majority_category"),
            majority_ratio=float(data.get("majority_ratio") or 0.0),
            average_scores={str(k): float(v) for k, v in (data.get("average_scores") or {}).items()},
            categories=[dict(entry) for entry in data.get("categories") or []],
            nsfw_avg=float(data.get("nsfw_avg") or 0.0),
            nsfw_max=float(data.get("nsfw_max") or 0.0),
            nsfw_flagged=int(data.get("nsfw_flagged") or 0),
            tags=[str(tag) for tag in data.get("tags") or []],
            quality_penalty=float(data.get("quality_penalty") or 0.0),
            mean_similarity=None if similarity is None else float(similarity),
            duplicate_share=float(data.get("duplicate_share") or 0.0),
        )


def merge_tags(classification_tags: Sequence[str], manual: Sequence[str]) -> list[str]:
    """Classification tags ∪ manual tags, classification first, no repeats."""
    return unique_tags([*classification_tags, *manual])


@functools.lru_cache(maxsize=256)
def empty_facts(total_items: int) -> ClassificationFacts:
    """Facts of a pack without classified items (shared, immutable instances)."""
    return ClassificationFacts(
        total_items=total_items,
        classified_items=0,
        category=None,
        confidence=0.0,
        majority_category=None,
        majority_ratio=0.0,
        average_scores={},
        categories=[],
        nsfw_avg=0.0,
        nsfw_max=0.0,
        nsfw_flagged=0,
        tags=[],
        quality_penalty=0.0,
        mean_similarity=None,
        duplicate_share=0.0,
    )


def _pair_statistics(vectors: Sequence[dict[str, float]], top_labels: Sequence[str]) -> tuple[float, float]:
    """(mean pairwise cosine, share of near-duplicate pairs) of unit vectors.

    The mean uses Σᵢ<ⱼ uᵢ·uⱼ = (|Σu|² − n)/2, so it is linear in the items. Near-duplicates
    (cosine ≥ 0.985) share their top label, so only pairs within a top-label group are compared.
    """
    count = len(vectors)
    total: dict[str, float] = {}
    for vector in vectors:
        for label, value in vector.items():
            total[label] = total.get(label, 0.0) + value
    squared = sum(value * value for value in total.values())
    pairs = count * (count - 1) / 2
    mean = max(-1.0, min(1.0, (squared - count) / 2 / pairs))
    groups: dict[str, list[dict[str, float]]] = {}
    for vector, label in zip(vectors, top_labels, strict=True):
        groups.setdefault(label, []).append(vector)
    duplicates = 0
    for members in groups.values():
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                if _dot(members[i], members[j]) >= DUPLICATE_SIMILARITY:
                    duplicates += 1
    return mean, duplicates / pairs


def classification_facts(
    total_items: int, rows: Sequence[Mapping[str, Any]], rules: TagRules
) -> ClassificationFacts:
    """Aggregate the classification rows of a pack's items (pipeline §1.2 pack summary, §4.1 inputs)."""
    if not rows:
        return empty_facts(total_items)
    count = len(rows)
    score_maps = [scores_of(row) for row in rows]
    sums: dict[str, float] = {}
    for scores in score_maps:
        for label, value in scores.items():
            sums[label] = sums.get(label, 0.0) + value
    averages = {label: total / count for label, total in sums.items()}
    ranked_averages = sorted(averages.items(), key=lambda pair: (-pair[1], pair[0]))
    votes = Counter(str(row["category"]) for row in rows if row.get("category"))
    majority, majority_votes = votes.most_common(1)[0] if votes else (None, 0)
    if ranked_averages:
        category, confidence = ranked_averages[0]
    else:
        category = majority
        confidences = [finite_float(row.get("confidence")) for row in rows]
        known = [value for value in confidences if value is not None]
        confidence = sum(known) / len(known) if known else 0.0
    nsfw_scores = [finite_float(row.get("nsfw_score")) or 0.0 for row in rows]
    flagged = sum(1 for row in rows if row.get("is_nsfw"))
    tag_candidates: list[str] = [NSFW_TAG] if flagged else []
    if majority:
        tag_candidates.append(label_tag(majority))
    tag_candidates.extend(
        label_tag(label) for label, value in ranked_averages if value >= rules.pack_min_score
    )
    penalties = [
        0.30 * scores.get(BLURRY_LABEL, 0.0) + 0.35 * scores.get(LOW_QUALITY_LABEL, 0.0)
        for scores in score_maps
    ]
    vectors = [_unit(scores) for scores in score_maps]
    usable = [(vector, max(vector, key=vector.__getitem__)) for vector in vectors if vector]
    if len(usable) >= 2:
        mean_similarity, duplicate_share = _pair_statistics(
            [vector for vector, _ in usable], [label for _, label in usable]
        )
    else:
        mean_similarity, duplicate_share = None, 0.0
    return ClassificationFacts(
        total_items=total_items,
        classified_items=count,
        category=category,
        confidence=max(0.0, min(1.0, confidence)),
        majority_category=majority,
        majority_ratio=majority_votes / count,
        average_scores={label: round(value, 6) for label, value in ranked_averages},
        categories=[
            {"label": label, "count": votes_for, "ratio": round(votes_for / count, 6)}
            for label, votes_for in sorted(votes.items(), key=lambda pair: (-pair[1], pair[0]))
        ],
        nsfw_avg=sum(nsfw_scores) / count,
        nsfw_max=max(nsfw_scores),
        nsfw_flagged=flagged,
        tags=unique_tags(tag_candidates, rules.max_tags),
        quality_penalty=sum(penalties) / count,
        mean_similarity=mean_similarity,
        duplicate_share=duplicate_share,
    )
