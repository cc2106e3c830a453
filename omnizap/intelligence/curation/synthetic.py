"""Synthetic classified stickers with known ground truth, for curation tests and the benchmark.

Each sticker has a true theme; its embedding lies around that theme's centre (subthemes of one
theme share a component, so siblings are close, as real ones are), and its classification row
carries a *noisy* label: a share of rows name another theme (half the time a sibling), with lower
confidence and margin on average but overlapping the correct ones. Some stickers are NSFW, some
are near-copies of another, some are low quality, and some rows are hostile (no theme, unknown
theme, garbage embedding bytes, non-numeric confidence). Deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnizap.intelligence.taxonomy import SUBTHEMES
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset, sticker_asset_classification
from omnizap.platform.db.types import utcnow

HOSTILE_KINDS = ("null_theme", "unknown_theme", "garbage_embedding", "bad_confidence", "short_embedding")
_INSERT_BATCH = 1000


@dataclass(frozen=True)
class Truth:
    asset_id: str
    theme_key: str  # the true theme
    label: str | None  # what the classification row says
    nsfw: bool
    duplicate_of: str | None = None
    hostile: str | None = None
    low_quality: bool = False


@dataclass
class SyntheticSet:
    assets: list[dict[str, Any]] = field(default_factory=list)
    classifications: list[dict[str, Any]] = field(default_factory=list)
    truth: dict[str, Truth] = field(default_factory=dict)

    def insert(self, database: Database) -> None:
        with database.transaction() as connection:
            for start in range(0, len(self.assets), _INSERT_BATCH):
                connection.execute(sticker_asset.insert(), self.assets[start : start + _INSERT_BATCH])
            for start in range(0, len(self.classifications), _INSERT_BATCH):
                connection.execute(
                    sticker_asset_classification.insert(), self.classifications[start : start + _INSERT_BATCH]
                )


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def generate(
    count: int,
    *,
    seed: int = 7,
    themes: Sequence[str] | None = None,
    dimension: int = 64,
    label_noise: float = 0.15,
    nsfw_rate: float = 0.06,
    duplicate_rate: float = 0.04,
    low_quality_rate: float = 0.02,
    hostile_rate: float = 0.02,
    spread: float = 0.9,
    finite_only: bool = False,
    owner_jid: str = "creator@s.whatsapp.net",
    id_prefix: str = "",
    shared: bool = True,
) -> SyntheticSet:
    """`count` assets with classification rows. `finite_only` writes hostile confidences as an
    out-of-range number instead of NaN (MySQL cannot store NaN). `shared` marks the stickers as
    shareable (once in a public pack, `shared_at`), which curation requires of its candidates."""
    rng = np.random.default_rng(seed)
    keys = list(themes) if themes is not None else [subtheme.key for subtheme in SUBTHEMES]
    parents = sorted({key.split("/")[0] for key in keys})
    parent_vectors = {parent: rng.normal(size=dimension) for parent in parents}
    centres = {
        key: _unit(0.7 * parent_vectors[key.split("/")[0]] + rng.normal(size=dimension)) for key in keys
    }
    siblings = {key: [other for other in keys if other != key and other[:3] == key[:3]] for key in keys}
    now = utcnow()
    result = SyntheticSet()
    embeddings: list[np.ndarray] = []
    labels: list[str] = []
    ids: list[str] = []
    for index in range(count):
        asset_id = str(uuid.UUID(int=(seed << 64) + index)) if not id_prefix else f"{id_prefix}{index:08d}"
        true_theme = keys[int(rng.integers(len(keys)))]
        duplicate_of: str | None = None
        if ids and rng.random() < duplicate_rate:
            source = int(rng.integers(len(ids)))
            duplicate_of = ids[source]
            true_theme = result.truth[duplicate_of].theme_key
            vector = _unit(embeddings[source] + rng.normal(scale=0.08 / np.sqrt(dimension), size=dimension))
            label = labels[source]
            mislabelled = label != true_theme
        else:
            noise = rng.normal(scale=spread / np.sqrt(dimension), size=dimension)
            vector = _unit(centres[true_theme] + noise)
            mislabelled = rng.random() < label_noise and len(keys) > 1
            if mislabelled:
                pool = siblings[true_theme] if siblings[true_theme] and rng.random() < 0.5 else keys
                label = true_theme
                while label == true_theme:
                    label = pool[int(rng.integers(len(pool)))]
            else:
                label = true_theme
        if mislabelled:
            confidence = float(rng.beta(4, 5))
            margin = float(rng.beta(1.5, 8))
        else:
            confidence = float(rng.beta(6, 3))
            margin = float(rng.beta(3, 4))
        entropy = float(max(0.0, (1 - confidence) * 3.0 + rng.normal(scale=0.2)))
        nsfw = bool(rng.random() < nsfw_rate)
        nsfw_score = float(rng.uniform(0.75, 1.0) if nsfw else rng.uniform(0.0, 0.25))
        low_quality = bool(rng.random() < low_quality_rate)
        sha = hashlib.sha256(f"{seed}:{id_prefix}:{index}".encode()).hexdigest()
        created = now - dt.timedelta(seconds=count - index)
        result.assets.append(
            {
                "id": asset_id,
                "owner_jid": owner_jid,
                "sha256": sha,
                "mimetype": "image/webp",
                "is_animated": 0,
                "width": 512,
                "height": 512,
                "size_bytes": 24_000,
                "frame_count": 1,
                "duration_ms": 0,
                "storage_path": f"synthetic/{sha[:2]}/{sha}.webp",
                "shared_at": created if shared else None,
                "created_at": created,
                "updated_at": created,
            }
        )
        row: dict[str, Any] = {
            "asset_id": asset_id,
            "provider": "synthetic",
            "model_name": "synthetic",
            "classification_version": "synthetic-v1",
            "category": label,
            "theme_key": label,
            "confidence": round(confidence, 5),
            "entropy": round(entropy, 6),
            "confidence_margin": round(margin, 6),
            "nsfw_score": round(nsfw_score, 6),
            "is_nsfw": 1 if nsfw else 0,
            "ambiguous": 1 if entropy > 1.9 else 0,
            "signals": {"blur": 0.95 if low_quality else float(round(rng.uniform(0, 0.4), 3))},
            "embedding": vector.astype("<f4").tobytes(),
            "classified_at": created,
            "created_at": created,
            "updated_at": created,
        }
        hostile: str | None = None
        if duplicate_of is None and rng.random() < hostile_rate:
            hostile = HOSTILE_KINDS[int(rng.integers(len(HOSTILE_KINDS)))]
            if hostile == "null_theme":
                row["theme_key"] = None
            elif hostile == "unknown_theme":
                row["theme_key"] = "no-such-theme/at-all"
            elif hostile == "garbage_embedding":
                row["embedding"] = rng.bytes(dimension * 4)
            elif hostile == "short_embedding":
                row["embedding"] = rng.bytes(7)
            else:
                row["confidence"] = 7.5 if finite_only else float("nan")
        result.classifications.append(row)
        result.truth[asset_id] = Truth(
            asset_id=asset_id,
            theme_key=true_theme,
            label=row["theme_key"],
            nsfw=nsfw,
            duplicate_of=duplicate_of,
            hostile=hostile,
            low_quality=low_quality,
        )
        embeddings.append(vector)
        labels.append(label)
        ids.append(asset_id)
    return result


def pack_purity(items: Sequence[str], theme_key: str, truth: dict[str, Truth]) -> float:
    """Share of a pack's stickers whose true theme is the pack's theme."""
    if not items:
        return 1.0
    return sum(1 for item in items if truth[item].theme_key == theme_key) / len(items)
