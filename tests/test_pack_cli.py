"""`omnizap pack …` through the real CLI entry point, on every database engine."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from omnizap.cli.main import cli
from omnizap.cli.packs import pack as pack_group
from omnizap.config import Settings, reset_settings_cache
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset

OWNER = "5511977776666@s.whatsapp.net"
COMMANDS = (
    "create",
    "list",
    "info",
    "add",
    "remove",
    "reorder",
    "rename",
    "set",
    "publish",
    "clone",
    "delete",
)


def add_assets(db: Database, count: int) -> list[str]:
    """Sticker rows inserted directly, so these tests do not depend on the sticker pipeline."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = [
        {
            "id": sid,
            "owner_jid": OWNER,
            "sha256": uuid.uuid4().hex * 2,
            "size_bytes": 100,
            "storage_path": sid,
        }
        for sid in ids
    ]
    with db.transaction() as connection:
        connection.execute(sticker_asset.insert(), rows)
    return ids


@pytest.fixture
def run(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Invoke `omnizap pack …` with DATABASE_URL pointing at the engine under test."""
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(db_settings.sticker_storage_dir))
    reset_settings_cache()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["pack", *args], catch_exceptions=False)

    yield invoke
    reset_settings_cache()


def ok(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def refused(result: Result, code: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("error: ") and line.endswith(f"[{code}]"), line
    return line


def test_a_pack_from_creation_to_deletion(run, db: Database):
    created = ok(
        run("create", "Meus memes 😂", "--owner", OWNER, "--publisher", "Ana", "--visibility", "unlisted")
    )
    pack = created["pack"]
    key = pack["pack_key"]
    assert (pack["name"], pack["publisher"], pack["visibility"], pack["version"]) == (
        "Meus memes 😂",
        "Ana",
        "unlisted",
        1,
    )
    a, b, c = add_assets(db, 3)
    added = ok(run("add", key, a, "--owner", OWNER, "--emojis", "😀 😂", "--label", "a cat"))
    assert added["item"]["position"] == 1 and added["item"]["emojis"] == ["😀", "😂"]
    assert added["pack"]["cover_sticker_id"] == a and added["pack"]["sticker_count"] == 1
    ok(run("add", "meus memes 😂", b, "--owner", OWNER))
    ok(run("add", f"https://example.org/stickers/{key}", c, "--owner", OWNER))

    info = run("info", key, "--owner", OWNER)
    assert info.exit_code == 0
    assert (
        key in info.stdout and "3/30" in info.stdout and "[cover]" in info.stdout and "😀 😂" in info.stdout
    )
    details = ok(run("info", key, "--owner", OWNER, "--json"))
    assert [item["sticker_id"] for item in details["items"]] == [a, b, c]

    reordered = ok(run("reorder", key, "3", "1", "--owner", OWNER))
    assert reordered["order"] == [c, a, b] and reordered["pack"]["version"] == 5
    removed = ok(run("remove", key, "1", "--owner", OWNER))
    assert removed["removed"]["sticker_id"] == c and removed["pack"]["sticker_count"] == 2
    renamed = ok(run("rename", key, "Best memes", "--owner", OWNER))
    assert renamed["pack"]["name"] == "Best memes" and renamed["pack"]["pack_key"] == key
    changed = ok(
        run(
            "set",
            key,
            "--owner",
            OWNER,
            "--description",
            "funny",
            "--cover",
            "2",
            "--item",
            b,
            "--emojis",
            "🐱",
        )
    )
    assert changed["pack"]["description"] == "funny" and changed["pack"]["cover_sticker_id"] == b
    assert ok(run("publish", key, "--owner", OWNER))["pack"]["visibility"] == "public"
    assert ok(run("publish", key, "PRIVATE", "--owner", OWNER))["pack"]["visibility"] == "private"
    clone = ok(run("clone", key, "Copy", "--owner", OWNER))["pack"]
    assert clone["sticker_count"] == 2 and clone["pack_key"] != key and clone["visibility"] == "private"

    listing = run("list", "--owner", OWNER)
    assert listing.exit_code == 0 and "2 pack(s)" in listing.stdout and clone["pack_key"] in listing.stdout
    deleted = ok(run("delete", key, "--owner", OWNER))
    assert deleted["pack"]["deleted_at"] is not None
    remaining = ok(run("list", "--owner", OWNER, "--json"))
    assert [entry["pack_key"] for entry in remaining["packs"]] == [clone["pack_key"]]
    refused(run("info", key, "--owner", OWNER), "PACK_NOT_FOUND")


def test_hostile_input_gets_clear_errors(run, db: Database):
    refused(run("create", "x", "--owner", OWNER, "--visibility", "everyone"), "INVALID_INPUT")
    assert "private, public or unlisted" in run("create", "x", "--owner", OWNER, "--visibility", "").stderr
    refused(run("create", "", "--owner", OWNER), "INVALID_INPUT")
    refused(run("create", "\n\t\x1b", "--owner", OWNER), "INVALID_INPUT")
    refused(run("create", "x", "--owner", "robert'); DROP TABLE sticker_pack;--"), "INVALID_INPUT")
    assert ok(run("list", "--owner", OWNER, "--json")) == {"packs": []}  # nothing was stored

    assert "at most 120" in refused(run("create", "n" * 10_000, "--owner", OWNER), "INVALID_INPUT")
    assert "U+001B (ESCAPE)" in refused(run("create", "red\x1b[31mx", "--owner", OWNER), "INVALID_INPUT")
    assert ok(run("list", "--owner", OWNER, "--json")) == {"packs": []}  # nothing was stored
    huge = ok(run("create", "n" * 120, "--owner", OWNER))["pack"]
    assert huge["name"] == "n" * 120
    lines = ok(run("create", "red  two", "--owner", OWNER, "--description", "d\r\ne"))["pack"]
    assert lines["name"] == "red two" and lines["description"] == "d\ne"

    line = refused(run("info", "no such pack", "--owner", OWNER), "PACK_NOT_FOUND")
    assert "omnizap pack list --owner" in line
    refused(run("info", "  ", "--owner", OWNER), "INVALID_INPUT")
    refused(run("add", huge["pack_key"], "not-a-sticker", "--owner", OWNER), "STICKER_NOT_FOUND")
    refused(run("add", huge["pack_key"], "", "--owner", OWNER), "INVALID_INPUT")
    refused(run("remove", huge["pack_key"], "7", "--owner", OWNER), "STICKER_NOT_FOUND")
    refused(run("reorder", huge["pack_key"], ",", "--owner", OWNER), "INVALID_INPUT")
    refused(run("set", huge["pack_key"], "--owner", OWNER), "INVALID_INPUT")
    refused(run("set", huge["pack_key"], "--owner", OWNER, "--visibility", "galaxy"), "INVALID_INPUT")
    refused(run("publish", huge["pack_key"], "everyone", "--owner", OWNER), "INVALID_INPUT")
    refused(run("rename", huge["pack_key"], " ", "--owner", OWNER), "INVALID_INPUT")
    refused(run("clone", huge["pack_key"], "\x00", "--owner", OWNER), "INVALID_INPUT")

    sticker = add_assets(db, 1)[0]
    ok(run("add", huge["pack_key"], sticker, "--owner", OWNER))
    refused(run("add", huge["pack_key"], sticker, "--owner", OWNER), "DUPLICATE_STICKER")
    after = ok(run("info", huge["pack_key"], "--owner", OWNER, "--json"))["pack"]
    assert after["version"] == 2 and after["sticker_count"] == 1  # refusals changed nothing


def test_missing_arguments_are_usage_errors(run):
    for args in (
        ("create", "x"),
        ("add", "pack-abcde", "--owner", OWNER),
        ("remove",),
        ("reorder", "k", "--owner", OWNER),
    ):
        result = run(*args)
        assert result.exit_code == 2 and "Missing" in result.stderr, args
    assert run("list", "--owner", OWNER, "--limit", "0").exit_code == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str):
    result = CliRunner().invoke(cli, ["pack", command, "--help"])
    assert result.exit_code == 0 and "--owner" in result.stdout
    assert len(result.stdout.splitlines()) > 4


def test_export_is_registered_when_its_module_exists():
    expected = importlib.util.find_spec("omnizap.cli.pack_export") is not None
    assert ("export" in pack_group.commands) is expected
    assert set(COMMANDS) <= set(pack_group.commands)


@pytest.mark.parametrize(
    "args",
    [
        ["pack", "list", "--owner", OWNER],
        ["pack", "create", "Memes", "--owner", OWNER],
        ["demo", "seed", "--packs", "3", "--jobs", "1"],
    ],
)
def test_commands_on_a_database_that_was_never_migrated_say_to_migrate(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'never-migrated.db'}")
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(tmp_path / "stickers"))
    reset_settings_cache()
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        reset_settings_cache()
    assert result.exit_code == 1, result.output
    assert "not migrated" in result.output and "omnizap migrate" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    reset_settings_cache()
    try:
        result = CliRunner().invoke(cli, ["pack", "list", "--owner", OWNER])
    finally:
        reset_settings_cache()
    assert result.exit_code == 1
    assert "cannot be reached" in result.output and "DATABASE_URL" in result.output
    assert "Traceback" not in result.output
