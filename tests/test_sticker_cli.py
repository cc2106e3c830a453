"""`omnizap sticker import|info` through the real CLI entry point, on every database engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import media_factory as mf
import pytest
from click.testing import CliRunner, Result

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache

OWNER = "5511988887777@s.whatsapp.net"


@pytest.fixture
def run(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Invoke `omnizap …` with DATABASE_URL pointing at the engine under test."""
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(db_settings.sticker_storage_dir))
    # Pack placement belongs to the packs tests; here only the sticker side is under test.
    monkeypatch.setenv("STICKER_PACK_AUTO_COLLECT_ENABLED", "false")
    reset_settings_cache()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    yield invoke
    reset_settings_cache()


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_import_prints_one_json_line_per_file_and_reports_failures(run, tmp_path: Path):
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(mf.encode_image(mf.photo_like_image(300, 200), "JPEG"))
    animation = tmp_path / "dance.gif"
    animation.write_bytes(mf.animated_gif(3))
    impostor = tmp_path / "notes.png"
    impostor.write_text("shopping list: eggs, milk\n")
    missing = tmp_path / "missing.webp"

    result = run(
        "sticker",
        "import",
        str(picture),
        str(impostor),
        str(animation),
        str(missing),
        "--owner",
        OWNER,
        "--name",
        "Trip",
        "--emoji",
        "🏖️",
    )
    assert result.exit_code == 1
    imported = json_lines(result.stdout)
    assert [line["file"] for line in imported] == [str(picture), str(animation)]
    assert [line["animated"] for line in imported] == [False, True]
    for line in imported:
        assert line["created"] is True and line["pack_key"] is None
        assert (line["width"], line["height"]) == (512, 512)
        assert len(line["sha256"]) == 64 and line["size"] > 0
    errors = json_lines(result.stderr)
    assert {line["file"]: line["error"]["code"] for line in errors} == {
        str(impostor): "UNSUPPORTED_FORMAT",
        str(missing): "FILE_NOT_READABLE",
    }
    assert "text file" in errors[0]["error"]["message"]

    info = run("sticker", "info", imported[1]["sticker_id"])
    assert info.exit_code == 0, info.output
    details = json.loads(info.stdout)
    assert details["id"] == imported[1]["sticker_id"] and details["is_animated"] is True
    assert details["file_present"] is True
    assert details["metadata"]["sticker-pack-name"] == "Trip"
    assert details["metadata"]["emojis"] == ["🏖️"]
    assert details["owner_jid"] == OWNER


def test_importing_the_same_file_twice_reuses_the_sticker(run, tmp_path: Path):
    path = tmp_path / "logo.png"
    path.write_bytes(mf.encode_image(mf.graphic_image(100, 100), "PNG"))
    first = json_lines(run("sticker", "import", str(path), "--owner", OWNER).stdout)[0]
    second_run = run("sticker", "import", str(path), "--owner", OWNER)
    assert second_run.exit_code == 0
    second = json_lines(second_run.stdout)[0]
    assert first["created"] is True and second["created"] is False
    assert second["sticker_id"] == first["sticker_id"]


def test_oversize_file_is_refused_without_reading_it(run, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STICKER_INGEST_MAX_SOURCE_BYTES", "2048")
    reset_settings_cache()
    path = tmp_path / "big.png"
    path.write_bytes(mf.encode_image(mf.noise_image(64, 64), "PNG"))
    result = run("sticker", "import", str(path), "--owner", OWNER)
    assert result.exit_code == 1
    assert json_lines(result.stderr)[0]["error"]["code"] == "TOO_LARGE"


def test_bad_owner_and_unknown_sticker(run, tmp_path: Path):
    path = tmp_path / "a.png"
    path.write_bytes(mf.png_bytes())
    result = run("sticker", "import", str(path), "--owner", "not a valid owner!")
    assert result.exit_code == 1 and "invalid owner" in result.stderr
    missing = run("sticker", "info", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 1 and "STICKER_NOT_FOUND" in missing.stderr
