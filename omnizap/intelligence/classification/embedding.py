"""The one encoding of image embeddings in `sticker_asset_classification.embedding`.

Stored bytes are a little-endian float32 vector, L2-normalised, nothing else (no header): the
dimension is `len(blob) // 4`. The builtin provider stores 1280 values (EfficientNet-Lite0's pooled
penultimate features, averaged over keyframes); a clip-http server that returns an `embedding` has
its own dimension. Vectors of different dimensions come from different models and are never
compared: `cosine` returns None for them. Curation treats cosine ≥ 0.985 as a near-duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EMBEDDING_DTYPE = np.dtype("<f4")
BUILTIN_EMBEDDING_DIM = 1280
MAX_EMBEDDING_DIM = 4096  # 16 KiB: well inside MySQL's BLOB (64 KiB)


class EmbeddingError(ValueError):
    """A vector that cannot be stored (empty, too long, not finite, all zeros) or a corrupt blob."""


def normalize_embedding(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """`values` as a unit-length float32 vector; raises EmbeddingError for unusable input."""
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if vector.size == 0 or vector.size > MAX_EMBEDDING_DIM:
        raise EmbeddingError(f"an embedding needs 1..{MAX_EMBEDDING_DIM} values, got {vector.size}")
    if not np.all(np.isfinite(vector)):
        raise EmbeddingError("an embedding must contain only finite numbers")
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise EmbeddingError("an all-zero embedding has no direction")
    return (vector / norm).astype(EMBEDDING_DTYPE)


def encode_embedding(values: Sequence[float] | np.ndarray) -> bytes:
    """The column value for a vector: normalised, float32, little-endian."""
    return normalize_embedding(values).tobytes()


def decode_embedding(blob: bytes | memoryview | None) -> np.ndarray | None:
    """The stored vector (float32, unit length) or None when the row has none."""
    if blob is None:
        return None
    data = bytes(blob)
    if not data:
        return None
    if len(data) % EMBEDDING_DTYPE.itemsize:
        raise EmbeddingError(f"embedding blob of {len(data)} bytes is not a float32 vector")
    return np.frombuffer(data, dtype=EMBEDDING_DTYPE).copy()


def cosine(left: np.ndarray | None, right: np.ndarray | None) -> float | None:
    """Cosine similarity of two stored vectors; None if either is missing or the models differ."""
    if left is None or right is None or left.shape != right.shape:
        return None
    return float(np.dot(left.astype(np.float64), right.astype(np.float64)))
