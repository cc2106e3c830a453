"""The builtin provider on real photos (scikit-image's samples), generated stickers and hostile
files: themes, NSFW scores, embeddings, keyframes and the invalid-image path."""

from __future__ import annotations

import io
import struct
import zlib

import media_factory as mf
import numpy as np
import pytest
from classification_support import (
    animated_from,
    png,
    sample_photo,
    text_sticker,
)
from PIL import Image

from omnizap.config import Settings
from omnizap.core.stickers.exif import StickerMetadata
from omnizap.core.stickers.limits import IngestLimits
from omnizap.core.stickers.media import convert_to_sticker
from omnizap.intelligence.classification.embedding import BUILTIN_EMBEDDING_DIM, cosine, decode_embedding
from omnizap.intelligence.classification.errors import InvalidImage
from omnizap.intelligence.classification.providers import ClassifyRequest
from omnizap.intelligence.classification.results import ClassificationResult
from omnizap.intelligence.taxonomy import SUBTHEME_BY_KEY

PHOTO_THEMES = {
    "chelsea.png": "animals/cats",
    "coffee.png": "food/drinks",
    "motorcycle_left.png": "vehicles/two-wheels",
    "camera.png": "things/tech",
}


def as_sticker(data: bytes) -> bytes:
    """The WebP sticker the ingest pipeline makes of a picture (512², transparent padding)."""
    limits = IngestLimits.from_settings(Settings(_env_file=None))
    return convert_to_sticker(data, metadata=StickerMetadata("test", "omnizap"), limits=limits).data


def classify(classifier, data: bytes, **options) -> ClassificationResult:
    [outcome] = classifier.classify([ClassifyRequest("asset", data)], **options)
    assert isinstance(outcome, ClassificationResult), outcome
    return outcome


@pytest.fixture(scope="module")
def photo_results(builtin_classifier):
    """All sample photos, as stickers, classified in one batch (the way the cycle does it)."""
    names = list(PHOTO_THEMES)
    outcomes = builtin_classifier.classify([ClassifyRequest(n, as_sticker(sample_photo(n))) for n in names])
    return dict(zip(names, outcomes, strict=True))


@pytest.mark.parametrize("name", list(PHOTO_THEMES))
def test_real_photos_land_in_their_theme(photo_results, name):
    result = photo_results[name]
    assert result.theme_key == PHOTO_THEMES[name]
    assert result.category == result.theme_key
    assert result.confidence == max(result.all_scores.values())
    assert result.confidence_margin >= 0.15
    assert result.top_labels[0]["label"] == result.theme_key
    assert set(result.all_scores) <= set(SUBTHEME_BY_KEY)
    assert abs(sum(result.all_scores.values()) - 1.0) < 0.01


def test_ordinary_photos_score_low_on_nsfw(photo_results, builtin_classifier):
    names = ("astronaut.png", "rocket.jpg", "coins.png", "hubble_deep_field.jpg")
    extra = [sample_photo(name) for name in names]
    others = builtin_classifier.classify([ClassifyRequest(str(i), data) for i, data in enumerate(extra)])
    for result in [*photo_results.values(), *others]:
        assert result.nsfw_score < 0.2
        assert result.is_nsfw is False


def test_imagenet_evidence_and_signals_are_kept(photo_results):
    cat = photo_results["chelsea.png"]
    labels = [entry["label"] for entry in cat.signals["imagenet_top"]]
    assert "Egyptian Mau" in labels[:3] or "tabby cat" in labels[:3]
    assert cat.signals["animated"] is False
    assert cat.signals["keyframes"] == [0]
    assert cat.signals["width"] == cat.signals["height"] == 512
    assert 0 < cat.signals["colourfulness"] < 1
    assert cat.signals["text_coverage"] < 0.2
    assert cat.provider == "builtin"
    assert cat.model_name == "efficientnet-lite0+open_nsfw+bge-small-en"


@pytest.mark.parametrize(
    "sticker",
    [
        text_sticker(["BOM DIA", "GRUPO!", "KKKKKK"]),
        text_sticker(["bom dia", "que", "preguiça"], fill=(255, 255, 255, 255), outline=(0, 0, 0, 255)),
    ],
    ids=["black-letters", "white-letters-outlined"],
)
def test_caption_stickers_are_text_themed(builtin_classifier, sticker):
    result = classify(builtin_classifier, as_sticker(sticker))
    assert result.theme_key == "expressions/text"
    assert result.signals["text_coverage"] >= 0.25
    assert result.nsfw_score < 0.2


def test_animated_sticker_uses_three_keyframes(builtin_classifier):
    animation = as_sticker(animated_from(sample_photo("chelsea.png"), frames=6))
    result = classify(builtin_classifier, animation)
    assert result.signals["animated"] is True
    assert result.signals["frame_count"] == 6
    assert result.signals["keyframes"] == [1, 3, 5]
    assert result.theme_key == "animals/cats"


def test_embedding_is_a_unit_vector_that_finds_near_duplicates(builtin_classifier):
    cat = sample_photo("chelsea.png")
    recompressed = mf.encode_image(Image.open(io.BytesIO(cat)), "JPEG", quality=70)
    files = [cat, recompressed, sample_photo("coffee.png")]
    results = builtin_classifier.classify([ClassifyRequest(str(i), data) for i, data in enumerate(files)])
    vectors = [decode_embedding(result.embedding) for result in results]
    for vector in vectors:
        assert vector.shape == (BUILTIN_EMBEDDING_DIM,)
        assert vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert cosine(vectors[0], vectors[1]) >= 0.985
    assert cosine(vectors[0], vectors[2]) < 0.9


def test_same_file_gives_the_same_answer(builtin_classifier):
    data = sample_photo("coffee.png")
    first, second = builtin_classifier.classify([ClassifyRequest("a", data), ClassifyRequest("b", data)])
    assert first.all_scores == second.all_scores
    assert first.embedding == second.embedding
    assert first.image_hash == second.image_hash


def test_thorough_pass_agrees_and_looks_at_more(builtin_classifier):
    sticker = as_sticker(sample_photo("chelsea.png"))
    normal = classify(builtin_classifier, sticker)
    thorough = classify(builtin_classifier, sticker, thorough=True)
    assert thorough.theme_key == normal.theme_key
    assert thorough.signals["thorough"] is True
    assert thorough.nsfw_score >= normal.nsfw_score - 1e-6  # the maximum over more views


def _truncated_png() -> bytes:
    return png(mf.photo_like_image(64, 64))[:200]


def _wrong_crc_png() -> bytes:
    header = struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(b"x"))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "decoder-error"),
        (b"\x00garbage bytes" * 50, "decoder-error"),
        (b"<html><body>not an image</body></html>", "decoder-error"),
        (_truncated_png(), "decoder-error"),
        (_wrong_crc_png(), "decoder-error"),
        (mf.png_bomb(), "too-large"),
    ],
    ids=["empty", "garbage", "html", "truncated", "bad-crc", "bomb"],
)
def test_unreadable_files_are_invalid_images_not_guesses(builtin_classifier, data, code):
    valid = sample_photo("chelsea.png")
    outcomes = builtin_classifier.classify([ClassifyRequest("bad", data), ClassifyRequest("good", valid)])
    assert isinstance(outcomes[0], InvalidImage)
    assert outcomes[0].code == code
    assert isinstance(outcomes[1], ClassificationResult)  # one bad file never spoils the batch
    assert outcomes[1].theme_key == "animals/cats"


def test_huge_but_legitimate_picture_is_classified(builtin_classifier):
    big = Image.open(io.BytesIO(sample_photo("coffee.png"))).convert("RGB").resize((4000, 3000))
    result = classify(builtin_classifier, mf.encode_image(big, "JPEG", quality=85))
    assert result.theme_key == "food/drinks"
    assert result.signals["width"] == 4000


def test_theme_map_cache_is_reused(builtin_classifier, model_dir):
    from omnizap.intelligence.classification.themes import imagenet_theme_map

    cached = sorted(model_dir.glob("theme-map-imagenet-*.npy"))
    assert cached, "the label→theme matrix is written to the model folder"
    again = imagenet_theme_map(model_dir)
    assert np.array_equal(again.matrix, builtin_classifier.theme_map.matrix)
    assert np.allclose(again.matrix.sum(axis=1), 1.0, atol=1e-4)
    assert again.matrix.shape == (1000, len(SUBTHEME_BY_KEY))
