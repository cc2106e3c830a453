"""Classification rows as curation reads them: every field checked, hostile rows turned into a reason.

A row comes from `sticker_asset_classification` joined with its asset. Nothing in it is trusted:
a missing or unknown theme, a confidence that is not a number in [0, 1], NaN or infinite scores,
and embedding bytes that are not an L2-normalised float32 vector each make the row a skip with a
named reason, counted by the cycle; no value can make a cycle raise.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omnizap.platform.values import finite_float

# Reasons a row is skipped before any scoring (counted per cycle, docs/curation.md).
MISSING_THEME = "missing_theme"
UNKNOWN_THEME = "unknown_theme"
INVALID_CONFIDENCE = "invalid_confidence"
INVALID_SCORES = "invalid_scores"
MISSING_EMBEDDING = "missing_embedding"
INVALID_EMBEDDING = "invalid_embedding"
INVALID_ROW = "invalid_row"

# An embedding is L2-normalised by contract; a norm this far from 1 means the bytes are not one.
NORM_TOLERANCE = 0.01
MAX_DIMENSION = 16_384
THEME_KEY_MAX = 160


@dataclass(frozen=True, slots=True)
class StickerRow:
    """One usable classification row (values validated, embedding re-normalised in float32)."""

    asset_id: str
    theme_key: str
    confidence: float
    margin: float
    entropy: float | None
    ambiguous: bool
    nsfw_score: float
    is_nsfw: bool
    blur: float | None
    low_quality: float | None
    width: int | None
    height: int | None
    size_bytes: int | None
    embedding: np.ndarray

    @property
    def dimension(self) -> int:
        return int(self.embedding.shape[0])


def _optional_number(raw: Mapping[str, Any], name: str) -> tuple[bool, float | None]:
    """(ok, value): a missing value is fine (None); a present value must be a finite number."""
    value = raw.get(name)
    if value is None:
        return True, None
    number = finite_float(value)
    return number is not None, number


def _flag(value: Any) -> bool:
    """A 0/1 column read defensively: anything truthy counts (for is_nsfw that fails safe)."""
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no"}
    try:
        return bool(value)
    except Exception:  # a value whose truthiness raises is treated as set
        return True


def _dimension(value: Any) -> int | None:
    number = finite_float(value)
    if number is None or number < 0:
        return None
    return int(number)


def _signal(signals: Any, name: str) -> float | None:
    """A [0, 1] image signal (1 = worst) or None when absent or not such a number."""
    if not isinstance(signals, Mapping):
        return None
    number = finite_float(signals.get(name))
    if number is None or not 0.0 <= number <= 1.0:
        return None
    return number


def parse_embedding(value: Any) -> np.ndarray | str:
    """The float32 vector stored in `embedding`, re-normalised; or the reason it is unusable."""
    if value is None:
        return MISSING_EMBEDDING
    if isinstance(value, memoryview):
        value = value.tobytes()
    if not isinstance(value, bytes | bytearray) or not value or len(value) % 4:
        return INVALID_EMBEDDING
    if len(value) // 4 > MAX_DIMENSION:
        return INVALID_EMBEDDING
    vector = np.frombuffer(bytes(value), dtype="<f4")
    # One pass decides it: NaN or infinite components (or overflowing ones) make the norm
    # non-finite, and garbage bytes that happen to be finite are almost never of norm 1.
    with np.errstate(over="ignore", invalid="ignore"):
        norm = math.sqrt(float(np.dot(vector, vector)))
    if not math.isfinite(norm) or abs(norm - 1.0) > NORM_TOLERANCE:
        return INVALID_EMBEDDING
    return (vector * np.float32(1.0 / norm)).astype(np.float32, copy=False)


def parse_embeddings(values: Sequence[Any]) -> list[np.ndarray | str]:
    """`parse_embedding` for many values at once: blobs of one length are checked as one matrix
    (one buffer, one vectorised norm), and the vectors handed out are rows of it, not copies."""
    results: list[np.ndarray | str] = [INVALID_EMBEDDING] * len(values)
    by_length: dict[int, list[int]] = {}
    blobs: list[bytes] = []
    for index, value in enumerate(values):
        if isinstance(value, memoryview):
            value = value.tobytes()
        blobs.append(bytes(value) if isinstance(value, bytes | bytearray) else b"")
        if value is None:
            results[index] = MISSING_EMBEDDING
        elif (
            isinstance(value, bytes | bytearray)
            and value
            and not len(value) % 4
            and len(value) // 4 <= MAX_DIMENSION
        ):
            by_length.setdefault(len(value), []).append(index)
    for length, indexes in by_length.items():
        matrix = np.frombuffer(b"".join(blobs[index] for index in indexes), dtype="<f4")
        matrix = matrix.reshape(len(indexes), length // 4)
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
            good = np.isfinite(norms) & (np.abs(norms - 1.0) <= NORM_TOLERANCE)
            scale = (1.0 / np.where(good, norms, 1.0)).astype(np.float32)
            scaled = matrix * scale[:, None]  # float32 throughout: no double-size copy
        for position, index in enumerate(indexes):
            if good[position]:
                results[index] = scaled[position]
    return results


def parse_row(
    raw: Mapping[str, Any], known_themes: Container[str], *, embedding: np.ndarray | str | None = None
) -> StickerRow | str:
    """A checked `StickerRow`, or the reason the row is skipped. `embedding`, when given, is the
    row's already parsed embedding (from `parse_embeddings`)."""
    asset_id = raw.get("asset_id")
    if not isinstance(asset_id, str) or not asset_id:
        return INVALID_ROW
    theme = raw.get("theme_key")
    if not isinstance(theme, str) or not theme.strip():
        return MISSING_THEME
    theme = theme.strip()
    if len(theme) > THEME_KEY_MAX or theme not in known_themes:
        return UNKNOWN_THEME
    confidence = finite_float(raw.get("confidence"))
    if confidence is None or not 0.0 <= confidence <= 1.0:
        return INVALID_CONFIDENCE
    margin_ok, margin = _optional_number(raw, "confidence_margin")
    entropy_ok, entropy = _optional_number(raw, "entropy")
    nsfw_ok, nsfw_score = _optional_number(raw, "nsfw_score")
    if not (margin_ok and entropy_ok and nsfw_ok) or (entropy is not None and entropy < 0):
        return INVALID_SCORES
    if embedding is None:
        embedding = parse_embedding(raw.get("embedding"))
    if isinstance(embedding, str):
        return embedding
    signals = raw.get("signals")
    return StickerRow(
        asset_id=asset_id,
        theme_key=theme,
        confidence=confidence,
        margin=min(1.0, max(0.0, margin or 0.0)),
        entropy=entropy,
        ambiguous=_flag(raw.get("ambiguous")),
        nsfw_score=min(1.0, max(0.0, nsfw_score or 0.0)),
        is_nsfw=_flag(raw.get("is_nsfw")),
        blur=_signal(signals, "blur"),
        low_quality=_signal(signals, "low_quality"),
        width=_dimension(raw.get("width")),
        height=_dimension(raw.get("height")),
        size_bytes=_dimension(raw.get("size_bytes")),
        embedding=embedding,
    )
