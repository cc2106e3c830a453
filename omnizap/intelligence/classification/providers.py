"""The classifier interface, and choosing a provider from the settings.

A provider classifies a batch of sticker files and answers, per file, with a ClassificationResult,
an InvalidImage (the file cannot be classified: the caller stores the fallback row) or a
ClassifierFailure (this attempt failed: the caller leaves the asset alone). `load()` raises
ClassifierUnavailable when the provider cannot work at all, before any asset is touched.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from omnizap.config import Settings
from omnizap.intelligence.classification.errors import ClassifierFailure, InvalidImage
from omnizap.intelligence.classification.results import ClassificationResult

Outcome = ClassificationResult | InvalidImage | ClassifierFailure


@dataclass(frozen=True)
class ClassifyRequest:
    asset_id: str
    data: bytes
    sha256: str | None = None
    mimetype: str = "image/webp"


class Classifier(Protocol):
    provider: str  # stored in `provider`
    model_name: str
    version: str  # stored in `classification_version`

    def load(self) -> None: ...

    def classify(self, requests: Sequence[ClassifyRequest], *, thorough: bool = False) -> list[Outcome]:
        """One outcome per request, in order. `thorough` is the reprocess pass (more frames, flips,
        the NSFW model on the whole picture as well as its centre); a provider may ignore it."""
        ...


def classification_version(settings: Settings) -> str:
    """The version stored on rows this configuration writes (a change re-queues old rows once)."""
    explicit = settings.clip_classifier_classification_version or settings.clip_classifier_model_version
    if explicit:
        return explicit.strip()[:64]
    if settings.sticker_classifier_backend == "clip-http":
        return "v1"  # the original's default
    from omnizap.intelligence.classification.builtin import builtin_version

    return builtin_version(settings)


_lock = threading.Lock()
_cache: dict[tuple[object, ...], Classifier] = {}


def _cache_key(settings: Settings) -> tuple[object, ...]:
    return (
        settings.sticker_classifier_backend,
        classification_version(settings),
        settings.classification_model_dir.resolve(),
        settings.classification_concurrency,
        settings.sticker_classification_input_size,
        settings.sticker_classification_keyframes,
        settings.classification_nsfw_threshold,
        settings.clip_classifier_api_url,
        settings.clip_classifier_timeout_ms,
        settings.clip_classifier_provider,
        settings.clip_classifier_nsfw_threshold,
        settings.sticker_ingest_max_pixels,
    )


def classifier_for(settings: Settings) -> Classifier:
    """The process's classifier for these settings; models are loaded once and then shared."""
    key = _cache_key(settings)
    with _lock:
        found = _cache.get(key)
        if found is None:
            if settings.sticker_classifier_backend == "clip-http":
                from omnizap.intelligence.classification.clip_http import ClipHttpClassifier

                found = ClipHttpClassifier.from_settings(settings)
            else:
                from omnizap.intelligence.classification.builtin import BuiltinClassifier

                found = BuiltinClassifier.from_settings(settings)
            _cache[key] = found
    return found
