"""Pure parts of classification: embedding encoding, score statistics, keyframes, cheap signals,
settings, lazy imports, and the CLI and task entry points."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from classification_support import model_settings, png, sample_photo, text_sticker
from click.testing import CliRunner
from PIL import Image, ImageFilter

from omnizap.config import Settings, reset_settings_cache
from omnizap.intelligence.classification.embedding import (
    EmbeddingError,
    cosine,
    decode_embedding,
    encode_embedding,
)
from omnizap.intelligence.classification.images import decode_sticker, keyframe_indices, measure_signals
from omnizap.intelligence.classification.results import distribution_stats, ranked_scores

# --- embeddings -------------------------------------------------------------------------------------


def test_embedding_round_trip_is_float32_little_endian_unit_length():
    blob = encode_embedding([3.0, 4.0])
    assert blob == np.array([0.6, 0.8], dtype="<f4").tobytes()
    vector = decode_embedding(blob)
    assert vector.dtype == np.float32 and vector.tolist() == pytest.approx([0.6, 0.8])
    assert decode_embedding(None) is None and decode_embedding(b"") is None


@pytest.mark.parametrize(
    "values", [[], [0.0, 0.0], [1.0, float("nan")], [1.0, float("inf")], [1.0] * 5000], ids=str
)
def test_unusable_vectors_are_refused(values):
    with pytest.raises(EmbeddingError):
        encode_embedding(values)


def test_corrupt_blob_and_mixed_models_are_not_compared():
    with pytest.raises(EmbeddingError):
        decode_embedding(b"\x00\x01\x02")
    assert (
        cosine(decode_embedding(encode_embedding([1, 0])), decode_embedding(encode_embedding([1, 0, 0])))
        is None
    )
    assert cosine(decode_embedding(encode_embedding([1, 1])), decode_embedding(encode_embedding([2, 2]))) == (
        pytest.approx(1.0)
    )


# --- statistics -------------------------------------------------------------------------------------


def test_statistics_of_a_peaked_and_a_flat_distribution():
    peaked = distribution_stats({"a": 0.9, "b": 0.05, "c": 0.05})
    assert peaked.category == "a" and peaked.confidence == 0.9 and peaked.margin == 0.85
    assert peaked.ambiguous is False
    flat = distribution_stats({str(i): 1 / 30 for i in range(30)})
    assert flat.entropy == pytest.approx(math.log(30), abs=1e-5)
    assert flat.entropy_normalized == pytest.approx(1.0)
    assert flat.ambiguous is True
    pair = distribution_stats({"x": 0.5, "y": 0.5})
    assert pair.entropy == pytest.approx(math.log(2), abs=1e-6) and pair.margin == 0
    empty = distribution_stats({})
    assert empty.category is None and empty.ambiguous is True


def test_ranked_scores_drop_junk_and_cut_labels():
    kept = ranked_scores({"b": 0.2, "a": 0.7, "nan": float("nan"), "  ": 0.1, "x" * 300: 0.05})
    assert list(kept) == ["a", "b", "x" * 120]


# --- keyframes and signals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "wanted", "expected"),
    [(1, 3, [0]), (2, 3, [0, 1]), (6, 3, [1, 3, 5]), (100, 3, [16, 50, 83]), (100, 1, [50]), (7, 2, [1, 5])],
)
def test_keyframes_spread_over_the_animation(frames, wanted, expected):
    assert keyframe_indices(frames, wanted) == expected


def signals_of(data: bytes) -> dict:
    return measure_signals(decode_sticker(data, max_pixels=10_000_000, keyframes=3))


def test_signals_tell_grey_from_colourful_and_captions_from_photos():
    grey = signals_of(png(Image.new("RGB", (200, 200), (120, 120, 120))))
    assert grey["colourfulness"] == 0 and grey["text_coverage"] == 0
    photo = signals_of(sample_photo("coffee.png"))
    assert photo["colourfulness"] > 0.3
    assert photo["text_coverage"] < 0.2
    caption = signals_of(text_sticker(["BOM DIA", "GRUPO!", "KKKKKK"]))
    assert caption["text_coverage"] >= 0.25


def test_blur_rises_when_a_photo_is_blurred():
    photo = Image.open(io.BytesIO(sample_photo("chelsea.png"))).convert("RGB")
    sharp = signals_of(png(photo))["blur"]
    soft = signals_of(png(photo.filter(ImageFilter.GaussianBlur(8))))["blur"]
    assert soft > sharp + 0.1


def test_transparent_padding_is_not_counted_as_picture():
    half = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    half.paste(Image.new("RGBA", (200, 100), (200, 30, 30, 255)), (0, 0))
    signals = signals_of(png(half))
    assert signals["opaque_coverage"] == pytest.approx(0.5, abs=0.02)
    assert signals["colourfulness"] > 0.5


# --- settings ---------------------------------------------------------------------------------------


def test_original_environment_names_are_read(monkeypatch):
    monkeypatch.setenv("CLIP_CLASSIFIER_API_URL", "http://10.0.0.9:8008/classify")
    monkeypatch.setenv("CLIP_CLASSIFIER_NSFW_THRESHOLD", "0.7")
    monkeypatch.setenv("STICKER_CLASSIFICATION_BACKGROUND_BATCH_SIZE", "5000")
    monkeypatch.setenv("STICKER_CLASSIFICATION_BACKGROUND_CONCURRENCY", "99")
    monkeypatch.setenv("STICKER_REPROCESS_MAX_PER_CYCLE", "7")
    monkeypatch.setenv("STICKER_CLASSIFIER_BACKEND", "clip-http")
    settings = Settings(_env_file=None)
    assert settings.clip_classifier_api_url == "http://10.0.0.9:8008/classify"
    assert settings.classification_nsfw_threshold == 0.7
    assert settings.classification_batch_size == 300  # clamped like the original
    assert settings.classification_concurrency == 16
    assert settings.reprocess_max_per_cycle == 7
    assert settings.sticker_classifier_backend == "clip-http"


def test_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("STICKER_CLASSIFIER_BACKEND", "magic")
    with pytest.raises(ValueError, match="builtin"):
        Settings(_env_file=None)


def test_defaults():
    settings = Settings(_env_file=None)
    assert settings.sticker_classifier_backend == "builtin"
    assert settings.classification_batch_size == 32
    assert settings.classification_nsfw_threshold == 0.6
    assert settings.classification_model_dir == settings.data_dir / "models"


def test_web_server_cli_and_tasks_do_not_import_the_models():
    code = (
        "import sys, omnizap.cli.main, omnizap.cli.intelligence, omnizap.web.app;"
        "import omnizap.intelligence.tasks, omnizap.intelligence.classification.cycle;"
        "import omnizap.intelligence.classification.clip_http;"
        "heavy = [m for m in ('torch', 'onnxruntime', 'tokenizers', 'onnx') if m in sys.modules];"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- entry points -----------------------------------------------------------------------------------


@pytest.mark.engines
def test_intel_classify_and_status_commands(db, tmp_path, model_dir, builtin_classifier, monkeypatch):
    from omnizap.cli.main import cli

    settings = model_settings(model_dir)
    for name, value in {
        "DATABASE_URL": db.url.render_as_string(hide_password=False),
        "STICKER_STORAGE_DIR": str(tmp_path / "stickers"),
        "STICKER_CLASSIFICATION_MODEL_DIR": str(settings.classification_model_dir),
        "STICKER_CLASSIFICATION_BACKGROUND_CONCURRENCY": "2",
        "STICKER_PACK_AUTO_COLLECT_ENABLED": "false",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    runner = CliRunner()
    picture = tmp_path / "cat.png"
    picture.write_bytes(sample_photo("chelsea.png"))
    imported = runner.invoke(cli, ["sticker", "import", str(picture), "--owner", "5511966665555"])
    assert imported.exit_code == 0, imported.output

    before = json.loads(runner.invoke(cli, ["intel", "status", "--json"], catch_exceptions=False).output)
    assert before["pending"] == 1 and before["classification_version"] == builtin_classifier.version

    result = runner.invoke(cli, ["intel", "classify", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["status"] == "completed"
    assert report["pending"]["classified"] == 1

    after = json.loads(runner.invoke(cli, ["intel", "status", "--json"], catch_exceptions=False).output)
    assert after["pending"] == 0 and after["themes"] == {"animals/cats": 1}
    text = runner.invoke(cli, ["intel", "status"], catch_exceptions=False).output
    assert "animals/cats" in text and "pending 0" in text
    reset_settings_cache()


@pytest.mark.engines
def test_task_handler_runs_the_cycle(db, tmp_path):
    from omnizap.intelligence.tasks import TASK_HANDLERS
    from omnizap.platform.flags import FeatureFlags
    from omnizap.platform.queue.context import TaskContext
    from omnizap.platform.storage import LocalStorage

    settings = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        clip_classifier_enabled=False,
    )
    context = TaskContext(
        settings=settings,
        database=db,
        storage=LocalStorage(settings.sticker_storage_dir),
        flags=FeatureFlags(db, cache_ttl_ms=0),
        task_type="classification_cycle",
    )
    summary = TASK_HANDLERS["classification_cycle"](context, {"reason": "schedule"})
    assert summary["status"] == "skipped" and summary["trigger"] == "schedule"
