"""The clip-http provider against a real HTTP server on loopback that speaks the CLIP service's
API (pipeline §1.1): what is sent, how answers are normalised, and what each failure means."""

from __future__ import annotations

import json
import math
import socket

import media_factory as mf
import pytest
from classification_support import ClipServer, clip_answer, png, sample_photo

from omnizap.config import Settings
from omnizap.intelligence.classification.clip_http import ClipHttpClassifier
from omnizap.intelligence.classification.embedding import decode_embedding
from omnizap.intelligence.classification.errors import ClassifierFailure, ClassifierUnavailable, InvalidImage
from omnizap.intelligence.classification.providers import ClassifyRequest, classification_version
from omnizap.intelligence.classification.results import ClassificationResult

SHA = "ab" * 32
CAT_LABELS = {"cat": 0.71, "cute animal": 0.2, "meme": 0.06, "nsfw content": 0.03}


def client(server: ClipServer, **overrides) -> ClipHttpClassifier:
    values = {
        "sticker_classifier_backend": "clip-http",
        "clip_classifier_api_url": server.url,
        "clip_classifier_timeout_ms": 1000,
        "sticker_classification_background_concurrency": 3,
        **overrides,
    }
    return ClipHttpClassifier.from_settings(Settings(_env_file=None, **values))


def one(classifier: ClipHttpClassifier, data: bytes | None = None):
    request = ClassifyRequest("asset-1", data if data is not None else sample_photo("chelsea.png"), SHA)
    [outcome] = classifier.classify([request])
    return outcome


def test_request_carries_the_file_and_the_asset_fields(clip_server):
    clip_server.respond = lambda request: clip_answer(request, CAT_LABELS)
    data = png(mf.photo_like_image(64, 64))
    outcome = one(client(clip_server), data)
    assert isinstance(outcome, ClassificationResult)
    [sent] = clip_server.requests
    assert sent.data == data
    assert sent.filename == "asset-1.webp"
    assert sent.content_type == "image/webp"
    assert sent.fields == {"asset_id": "asset-1", "asset_sha256": SHA}  # no nsfw_threshold unless set


def test_nsfw_threshold_is_sent_only_when_configured(clip_server):
    clip_server.respond = lambda request: clip_answer(request, CAT_LABELS)
    one(client(clip_server, clip_classifier_nsfw_threshold=0.7))
    assert clip_server.requests[0].fields["nsfw_threshold"] == "0.7"


def test_answer_is_normalised_and_mapped_to_a_theme(clip_server):
    clip_server.respond = lambda request: clip_answer(request, CAT_LABELS)
    result = one(client(clip_server))
    assert isinstance(result, ClassificationResult)
    assert result.provider == "clip"
    assert result.model_name == "MobileCLIP-S1"
    assert result.classification_version == "v1"
    assert result.category == "cat"
    assert result.confidence == 0.71
    assert list(result.all_scores) == ["cat", "cute animal", "meme", "nsfw content"]
    assert result.top_labels[0] == {"label": "cat", "score": 0.71, "logit": 71.0, "clip_score": 0.71}
    assert result.nsfw_score == 0.03 and result.is_nsfw is False
    assert result.image_hash == SHA  # lowercased from the service's answer
    assert result.theme_key == "animals/cats"
    assert result.embedding is None  # the original API returns no embedding


def test_an_embedding_field_is_kept_when_the_service_sends_one(clip_server):
    clip_server.respond = lambda request: clip_answer(request, CAT_LABELS, embedding=[3.0, 4.0, 0.0])
    result = one(client(clip_server))
    assert decode_embedding(result.embedding).tolist() == pytest.approx([0.6, 0.8, 0.0])


def test_version_comes_from_the_original_settings():
    settings = Settings(
        _env_file=None, sticker_classifier_backend="clip-http", clip_classifier_model_version="m2"
    )
    assert classification_version(settings) == "m2"
    settings = Settings(
        _env_file=None,
        sticker_classifier_backend="clip-http",
        clip_classifier_model_version="m2",
        clip_classifier_classification_version="c3",
    )
    assert classification_version(settings) == "c3"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (422, {"detail": "Upload inválido: não foi possível decodificar a imagem."}, "decoder-error"),
        (415, {"detail": "Content-Type must be image/*"}, "non-retryable-error"),
        (413, {"detail": "too large"}, "non-retryable-error"),
        (500, {"detail": "could not create decoder object"}, "decoder-error"),
    ],
)
def test_refused_images_are_invalid_not_retried(clip_server, status, body, code):
    clip_server.respond = lambda request: (status, json.dumps(body).encode())
    outcome = one(client(clip_server))
    assert isinstance(outcome, InvalidImage)
    assert outcome.code == code


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"detail": "CUDA out of memory"}'),
        (503, b"Service Unavailable"),
        (429, b"slow down"),
        (404, b"Not Found"),
        (200, b"<html>hello</html>"),
        (200, b"[1, 2, 3]"),
        (200, b'{"category": null, "all_scores": "lots", "top_labels": {"a": 1}}'),
        (200, b'{"all_scores": {"cat": "NaN", "dog": Infinity}}'),
    ],
    ids=["500", "503", "429", "404", "html", "json-list", "wrong-types", "no-finite-score"],
)
def test_outages_and_junk_leave_the_asset_alone(clip_server, status, body):
    clip_server.respond = lambda request: (status, body)
    outcome = one(client(clip_server))
    assert isinstance(outcome, ClassifierFailure)
    assert not isinstance(outcome, InvalidImage)


def test_hostile_values_are_filtered_not_stored(clip_server):
    answer = {
        "category": "c" * 500,
        "confidence": 7.5,  # not a probability
        "all_scores": {"cat": 0.6, "nan": float("nan"), "neg": -1, "big": 3, "x" * 300: 0.2, "": 0.1},
        "top_labels": [{"label": "cat", "score": 0.6}, {"label": None, "score": 1}, "junk", {"score": 0.1}]
        + [{"label": f"l{i}", "score": 0.01} for i in range(40)],
        "nsfw_score": "high",
        "is_nsfw": "yes",
        "ambiguous": 1,
        "image_hash": 12345,
        "embedding": ["a", "b"],
    }
    clip_server.respond = lambda request: (200, json.dumps(answer, allow_nan=True).encode())
    result = one(client(clip_server))
    assert isinstance(result, ClassificationResult)
    assert len(result.category) == 120
    assert result.confidence is None or 0 <= result.confidence <= 1
    assert all(0 <= score <= 1 and math.isfinite(score) for score in result.all_scores.values())
    assert all(label and len(label) <= 120 for label in result.all_scores)
    assert len(result.top_labels) == 10
    assert result.nsfw_score is None and result.is_nsfw is False
    assert result.ambiguous is True
    assert result.image_hash == SHA  # the asset's own hash when the answer has none usable
    assert result.embedding is None


def test_an_endless_answer_is_cut_off(clip_server):
    clip_server.respond = lambda request: (200, b"[" + b"1," * 3_000_000 + b"1]")
    outcome = one(client(clip_server, clip_classifier_timeout_ms=10_000))
    assert isinstance(outcome, ClassifierFailure)
    assert "more than" in str(outcome)


def test_timeout_is_a_failure(clip_server):
    def hang(request):
        clip_server.release.wait(30)  # released at teardown, long after the client gave up
        return 200, b"{}"

    clip_server.respond = hang
    outcome = one(client(clip_server, clip_classifier_timeout_ms=500))
    assert isinstance(outcome, ClassifierFailure)
    assert "did not answer" in str(outcome)


def test_refused_connection_is_a_failure():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    classifier = ClipHttpClassifier.from_settings(
        Settings(
            _env_file=None,
            sticker_classifier_backend="clip-http",
            clip_classifier_api_url=f"http://127.0.0.1:{port}/classify",
        )
    )
    outcome = one(classifier)
    assert isinstance(outcome, ClassifierFailure)
    assert "could not be reached" in str(outcome)


def test_a_url_that_is_not_http_is_unavailable():
    classifier = ClipHttpClassifier.from_settings(
        Settings(_env_file=None, sticker_classifier_backend="clip-http", clip_classifier_api_url="ftp://x/y")
    )
    with pytest.raises(ClassifierUnavailable):
        classifier.load()


def test_batch_runs_in_parallel_and_keeps_order(clip_server):
    def answer(request):
        label = "dog" if request.fields["asset_id"].endswith("dog") else "cat"
        return clip_answer(request, {label: 0.9, "meme": 0.1})

    clip_server.respond = answer
    requests = [ClassifyRequest(f"{i}-{'dog' if i % 2 else 'cat'}", b"img") for i in range(9)]
    outcomes = client(clip_server).classify(requests)
    assert [outcome.category for outcome in outcomes] == ["dog" if i % 2 else "cat" for i in range(9)]
    assert len(clip_server.requests) == 9
