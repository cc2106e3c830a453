"""The `clip-http` provider: the original's CLIP classifier service (pipeline §1.1-1.3).

`POST CLIP_CLASSIFIER_API_URL` multipart with `file` (`<asset_id>.webp`), `asset_id`,
`asset_sha256` and, when CLIP_CLASSIFIER_NSFW_THRESHOLD is set, `nsfw_threshold`; requests run
STICKER_CLASSIFICATION_BACKGROUND_CONCURRENCY at a time. The answer is normalised the way the
original client did (finite scores, 6 decimals, at most 10 top labels) and its labels are mapped
onto the taxonomy for `theme_key`.

What an answer means for the asset:
- 2xx with a usable body → a result;
- 400/413/415/422, or a body saying the image could not be decoded → InvalidImage (fallback row);
- anything else (timeouts, refused connections, 5xx, other 4xx, a 2xx whose body is not a
  classification) → ClassifierFailure: nothing is written and the asset is tried again later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Any

import httpx

from omnizap.catalog.text import fold
from omnizap.config import Settings
from omnizap.intelligence.classification.embedding import EmbeddingError, encode_embedding
from omnizap.intelligence.classification.errors import ClassifierFailure, InvalidImage
from omnizap.intelligence.classification.providers import ClassifyRequest, Outcome
from omnizap.intelligence.classification.results import (
    ALL_SCORES_MAX,
    LABEL_MAX,
    TOP_LABELS_MAX,
    ClassificationResult,
    distribution_stats,
    ranked_scores,
    round6,
)
from omnizap.platform.values import finite_float

NON_RETRYABLE_STATUS = frozenset({400, 413, 415, 422})
# Matched against the error text without accents and in lower case (FastAPI may escape them in JSON).
DECODER_MARKERS = ("could not create decoder object", "nao foi possivel decodificar")
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


def _error_text(body: bytes) -> str:
    """The error message of an answer: its JSON `detail` when there is one, else the raw text."""
    text = body[:4000].decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, Mapping) and isinstance(parsed.get("detail"), str):
        return parsed["detail"]
    return text


def _finite(value: Any) -> float | None:
    number = finite_float(value)
    return None if number is None else round6(number)


def _unit(value: Any) -> float | None:
    """A probability-like field: finite and within 0..1, else unknown."""
    number = _finite(value)
    return number if number is not None and 0.0 <= number <= 1.0 else None


def _flag(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() in {"1", "true"})


def _label(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())[:LABEL_MAX]
    return text or None


def _scores(payload: Mapping[str, Any]) -> dict[str, float]:
    raw = payload.get("all_scores")
    scores: dict[str, float] = {}
    if isinstance(raw, Mapping):
        for key, value in list(raw.items())[: ALL_SCORES_MAX * 4]:
            label, number = _label(key), _finite(value)
            if label and number is not None and 0 <= number <= 1:
                scores.setdefault(label, number)
    return ranked_scores(scores)


def _top_labels(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = payload.get("top_labels")
    entries: list[dict[str, Any]] = []
    if isinstance(raw, list):
        for entry in raw[:100]:
            if not isinstance(entry, Mapping):
                continue
            label, score = _label(entry.get("label")), _finite(entry.get("score"))
            if label and score is not None:
                entries.append(
                    {
                        "label": label,
                        "score": score,
                        "logit": _finite(entry.get("logit")),
                        "clip_score": _finite(entry.get("clip_score")),
                    }
                )
    entries.sort(key=lambda entry: (-entry["score"], entry["label"]))
    return entries[:TOP_LABELS_MAX]


def _embedding(payload: Mapping[str, Any]) -> bytes | None:
    """An `embedding` list (not in the original API; a service may add it) as the stored vector."""
    raw = payload.get("embedding")
    if not isinstance(raw, list) or not raw or not all(isinstance(v, int | float) for v in raw):
        return None
    try:
        return encode_embedding(raw)
    except EmbeddingError:
        return None


class ClipHttpClassifier:
    def __init__(
        self,
        *,
        url: str,
        timeout_seconds: float,
        provider: str,
        version: str,
        concurrency: int,
        nsfw_threshold: float | None,
        default_nsfw_threshold: float,
    ) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.provider = provider
        self.model_name = "clip"
        self.version = version
        self.concurrency = max(1, concurrency)
        self.nsfw_threshold = nsfw_threshold
        self.default_nsfw_threshold = default_nsfw_threshold

    @classmethod
    def from_settings(cls, settings: Settings) -> ClipHttpClassifier:
        from omnizap.intelligence.classification.providers import classification_version

        return cls(
            url=settings.clip_classifier_api_url,
            timeout_seconds=settings.clip_classifier_timeout_ms / 1000.0,
            provider=settings.clip_classifier_provider or "clip",
            version=classification_version(settings),
            concurrency=settings.classification_concurrency,
            nsfw_threshold=settings.clip_classifier_nsfw_threshold,
            default_nsfw_threshold=settings.classification_nsfw_threshold,
        )

    @cached_property
    def _client(self) -> httpx.Client:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.Client(timeout=httpx.Timeout(self.timeout_seconds), limits=limits, trust_env=False)

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="clip-http")

    @cached_property
    def _themes(self) -> Any:
        from omnizap.intelligence.classification.themes import shared_label_mapper

        return shared_label_mapper()

    def load(self) -> None:
        """Nothing to load; reachability is learned per request (an outage fails requests, not this)."""
        if not self.url.startswith(("http://", "https://")):
            from omnizap.intelligence.classification.errors import ClassifierUnavailable

            raise ClassifierUnavailable(f"CLIP_CLASSIFIER_API_URL {self.url!r} is not an http(s) URL")

    def classify(self, requests: Sequence[ClassifyRequest], *, thorough: bool = False) -> list[Outcome]:
        self.load()
        return list(self._pool.map(self._one, requests))

    def _one(self, request: ClassifyRequest) -> Outcome:
        fields = {"asset_id": request.asset_id}
        if request.sha256:
            fields["asset_sha256"] = request.sha256
        if self.nsfw_threshold is not None:
            fields["nsfw_threshold"] = str(self.nsfw_threshold)
        files = {"file": (f"{request.asset_id}.webp", request.data, request.mimetype or "image/webp")}
        try:
            with self._client.stream("POST", self.url, data=fields, files=files) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        return ClassifierFailure(
                            f"the classifier answered more than {MAX_RESPONSE_BYTES} bytes"
                        )
                status = response.status_code
        except httpx.TimeoutException:
            return ClassifierFailure(f"the classifier did not answer within {self.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return ClassifierFailure(f"the classifier could not be reached: {type(exc).__name__}: {exc}")
        text = _error_text(body) if status >= 400 else ""
        decoder = any(marker in fold(text) for marker in DECODER_MARKERS)
        if status in NON_RETRYABLE_STATUS or (status >= 400 and decoder):
            code = "decoder-error" if decoder else "non-retryable-error"
            return InvalidImage(f"the classifier refused the image (HTTP {status}): {text[:200]}", code)
        if not 200 <= status < 300:
            detail = _error_text(body)[:200]
            return ClassifierFailure(f"the classifier answered HTTP {status}: {detail}")
        try:
            payload = json.loads(body)
        except ValueError:
            return ClassifierFailure("the classifier's answer is not JSON")
        if not isinstance(payload, Mapping):
            return ClassifierFailure("the classifier's answer is not a JSON object")
        return self._result(payload, request)

    def _result(self, payload: Mapping[str, Any], request: ClassifyRequest) -> Outcome:
        scores = _scores(payload)
        top_labels = _top_labels(payload)
        category = _label(payload.get("category")) or (top_labels[0]["label"] if top_labels else None)
        category = category or next(iter(scores), None)
        if category is None:
            return ClassifierFailure("the classifier's answer has no category, top_labels or all_scores")
        confidence = _unit(payload.get("confidence"))
        if confidence is None:
            confidence = scores.get(category) or (top_labels[0]["score"] if top_labels else None)
        stats = distribution_stats(scores)
        nsfw_score = _unit(payload.get("nsfw_score"))
        if "is_nsfw" in payload:
            is_nsfw = _flag(payload.get("is_nsfw"))
        else:
            is_nsfw = nsfw_score is not None and nsfw_score >= self.default_nsfw_threshold
        themes = self._themes.theme_scores(scores or {category: 1.0})
        theme_key = max(themes.items(), key=lambda pair: (pair[1], pair[0]))[0] if themes else None
        image_hash = payload.get("image_hash")
        if not isinstance(image_hash, str) or not image_hash.strip():
            image_hash = request.sha256
        entropy = _finite(payload.get("entropy"))
        margin = _unit(payload.get("confidence_margin"))
        signals: dict[str, Any] = {
            "theme_scores": {
                key: round6(value) for key, value in sorted(themes.items(), key=lambda p: -p[1])[:5]
            },
            "theme_mapping": self._themes.method,
            "entropy_normalized": _unit(payload.get("entropy_normalized")),
            "device": _label(payload.get("device")),
        }
        return ClassificationResult(
            provider=self.provider,
            model_name=_label(payload.get("model")) or _label(payload.get("model_name")) or self.model_name,
            classification_version=self.version,
            category=category,
            theme_key=theme_key,
            confidence=confidence,
            entropy=entropy if entropy is not None else stats.entropy,
            confidence_margin=margin if margin is not None else stats.margin,
            nsfw_score=nsfw_score,
            is_nsfw=is_nsfw,
            ambiguous=_flag(payload.get("ambiguous")) if "ambiguous" in payload else stats.ambiguous,
            all_scores=scores,
            top_labels=top_labels,
            signals=signals,
            image_hash=image_hash.strip().lower()[:64] if image_hash else None,
            embedding=_embedding(payload),
        )
