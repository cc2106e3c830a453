"""`omnizap sticker import|info` through the real CLI entry point, on every database engine."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import media_factory as mf
import pytest
from click.testing import CliRunner, Result

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.core.errors import DuplicateSticker, PackLimitReached

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


# --- placing stickers in packs ----------------------------------------------------------------------
# The pack services live in omnizap.core.packs (tested there). These tests pin the contract this
# command relies on — PackService(database, settings).add_sticker(owner, key, asset_id) and
# AutoCollector(pack_service, settings).collect(owner, asset_id).pack.pack_key — with recording
# doubles, so the sticker side is checked on its own.


class RecordingPackService:
    calls: ClassVar[list[tuple[str, str, str]]] = []
    refuse: ClassVar[dict[str, Exception]] = {}

    def __init__(self, database: object, settings: Settings) -> None:
        assert isinstance(settings, Settings)

    def add_sticker(self, owner_jid: str, pack_key: str, asset_id: str) -> None:
        self.calls.append((owner_jid, pack_key, asset_id))
        if pack_key in self.refuse:
            raise self.refuse[pack_key]


class RecordingCollector:
    calls: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, pack_service: RecordingPackService, settings: Settings) -> None:
        assert isinstance(pack_service, RecordingPackService)

    def collect(self, owner_jid: str, asset_id: str) -> object:
        self.calls.append((owner_jid, asset_id))
        return SimpleNamespace(pack=SimpleNamespace(pack_key="pack1-abcde"))


@pytest.fixture
def pack_doubles(monkeypatch: pytest.MonkeyPatch) -> None:
    RecordingPackService.calls, RecordingPackService.refuse, RecordingCollector.calls = [], {}, []
    monkeypatch.setitem(
        sys.modules, "omnizap.core.packs.service", SimpleNamespace(PackService=RecordingPackService)
    )
    monkeypatch.setitem(
        sys.modules, "omnizap.core.packs.autocollect", SimpleNamespace(AutoCollector=RecordingCollector)
    )


def test_import_into_a_named_pack(run, tmp_path: Path, pack_doubles):
    first, second = tmp_path / "1.png", tmp_path / "2.png"
    first.write_bytes(mf.png_bytes(20, 20))
    second.write_bytes(mf.png_bytes(30, 20))
    RecordingPackService.refuse["full-pack"] = PackLimitReached("The pack reached the limit of 30 stickers.")
    ok = run("sticker", "import", str(first), "--owner", OWNER, "--pack", "memes-k3x9q")
    assert ok.exit_code == 0
    line = json_lines(ok.stdout)[0]
    assert line["pack_key"] == "memes-k3x9q"
    assert RecordingPackService.calls == [(OWNER, "memes-k3x9q", line["sticker_id"])]

    RecordingPackService.refuse["memes-k3x9q"] = DuplicateSticker("already in the pack")
    again = run("sticker", "import", str(first), "--owner", OWNER, "--pack", "memes-k3x9q")
    assert again.exit_code == 0 and json_lines(again.stdout)[0]["pack_key"] == "memes-k3x9q"

    full = run("sticker", "import", str(second), "--owner", OWNER, "--pack", "full-pack")
    assert full.exit_code == 1
    error = json_lines(full.stderr)[0]
    assert error["error"]["code"] == "PACK_LIMIT_REACHED"
    assert error["sticker_id"]  # stored, only not placed: re-running finds it


def test_import_without_a_pack_goes_to_the_auto_collector(run, tmp_path: Path, pack_doubles, monkeypatch):
    monkeypatch.setenv("STICKER_PACK_AUTO_COLLECT_ENABLED", "true")
    reset_settings_cache()
    path = tmp_path / "a.gif"
    path.write_bytes(mf.animated_gif(2))
    result = run("sticker", "import", str(path), "--owner", OWNER)
    assert result.exit_code == 0, result.output
    line = json_lines(result.stdout)[0]
    assert line["pack_key"] == "pack1-abcde"
    assert RecordingCollector.calls == [(OWNER, line["sticker_id"])]
    assert RecordingPackService.calls == []
