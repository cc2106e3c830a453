"""The text policy for stored text (omnizap.core.text_policy): properties, hostile examples, and the
same refusals through the service layer, the CLI and the public API (which stays lenient for queries).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import emoji as emoji_data
import media_factory as mf
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.core import text_policy
from omnizap.core.errors import InvalidInput
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.core.text_policy import (
    ACCESSIBILITY_LABEL,
    BIDI_CONTROLS,
    DESCRIPTION,
    PACK_NAME,
    PUBLISHER,
    TextField,
)
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset, sticker_pack
from omnizap.platform.storage import LocalStorage
from omnizap.runtime import Runtime
from omnizap.web.app import create_app

OWNER = "5511955554444@s.whatsapp.net"
FIELDS = [PACK_NAME, PUBLISHER, DESCRIPTION, ACCESSIBILITY_LABEL]
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u3164\u115f\u2800\u00ad \u00a0\u3000\t\u034f"
hostile_text = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(sorted(BIDI_CONTROLS))
    | st.sampled_from([*INVISIBLE, "\n", "\r", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\ud800"]),
    max_size=300,
)
REAL_EMOJI = sorted(
    key
    for key, data in emoji_data.EMOJI_DATA.items()
    if data["status"] == emoji_data.STATUS["fully_qualified"]
)


# --- properties --------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.sampled_from(FIELDS), hostile_text)
def test_any_text_is_refused_or_comes_out_clean(field: TextField, raw: str) -> None:
    try:
        cleaned = text_policy.optional(field, raw)
    except InvalidInput as refusal:
        assert field.label in refusal.message
        return
    if cleaned is None:
        return
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert 0 < len(cleaned) <= field.max_length
    assert not BIDI_CONTROLS & set(cleaned)
    allowed_controls = {"\n"} if field.multiline else set()
    assert all(unicodedata.category(char) != "Cc" or char in allowed_controls for char in cleaned)
    assert any(text_policy.is_visible(char) for char in cleaned)
    for line in cleaned.split("\n"):
        assert line == line.strip() and "  " not in line
    assert text_policy.optional(field, cleaned) == cleaned  # idempotent
    cleaned.encode("utf-8")  # always storable


@given(
    st.sampled_from(FIELDS),
    st.text(max_size=20),
    st.sampled_from(sorted(BIDI_CONTROLS)),
    st.text(max_size=20),
)
def test_a_bidi_control_anywhere_is_refused_naming_its_code_point(
    field: TextField, before: str, control: str, after: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        text_policy.optional(field, "visible" + before + control + after)
    message = caught.value.message
    # The first refused character is named; with the control present, one always is.
    assert "U+" in message and field.label in message and "remove it" in message


@given(st.sampled_from(FIELDS), st.text(st.sampled_from(INVISIBLE), max_size=40))
def test_invisible_only_text_counts_as_empty(field: TextField, invisible: str) -> None:
    assert text_policy.optional(field, invisible) is None
    with pytest.raises(InvalidInput, match=f"{field.label} is required"):
        text_policy.required(field, invisible)


@given(st.sampled_from(FIELDS), st.integers(min_value=1, max_value=50))
def test_over_long_text_is_refused_with_the_limit_not_cut(field: TextField, extra: int) -> None:
    text = "ab" * field.max_length
    text = text[: field.max_length + extra]
    with pytest.raises(InvalidInput) as caught:
        text_policy.optional(field, text)
    assert f"at most {field.max_length}" in caught.value.message
    assert text_policy.optional(field, text[: field.max_length]) == text[: field.max_length]


@given(
    st.lists(st.sampled_from(REAL_EMOJI), min_size=1, max_size=3, unique=True),
    st.sampled_from([",", " ", ", "]),
)
def test_one_to_three_real_emoji_are_kept(emojis: list[str], separator: str) -> None:
    assert text_policy.emoji_list(separator.join(emojis)) == emojis
    assert text_policy.emoji_list(emojis) == emojis
    assert text_policy.emoji_list("".join(emojis)) == emojis  # written together, counted one by one


@given(st.lists(st.sampled_from(REAL_EMOJI), min_size=4, max_size=10, unique=True))
def test_more_than_three_emoji_are_refused(emojis: list[str]) -> None:
    with pytest.raises(InvalidInput, match="a sticker takes 1 to 3"):
        text_policy.emoji_list(emojis)


@given(st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=10))
def test_words_are_not_emoji(word: str) -> None:
    if emoji_data.purely_emoji(word):
        return  # a few digits/punctuation marks are emoji in their own right (e.g. ‼)
    with pytest.raises(InvalidInput, match="not an emoji"):
        text_policy.emoji_list(word)


@settings(max_examples=200)
@given(hostile_text)
def test_fit_never_refuses_and_always_fits(raw: str) -> None:
    fitted = text_policy.fit(PUBLISHER, raw)
    if fitted is not None:
        assert text_policy.optional(PUBLISHER, fitted) == fitted


# --- explicit hostile examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (PACK_NAME, "\u200b", None),
        (PACK_NAME, "\u200b\u200d\ufeff \u3164", None),
        (PACK_NAME, "  Cats   and\tdogs  ", "Cats and dogs"),
        (PACK_NAME, "Cafe\u0301", "Café"),  # NFC
        (PACK_NAME, "\u200bCats\u200b", "Cats"),
        (PACK_NAME, "🏴󠁧󠁢󠁥󠁮󠁧󠁿 flag", "🏴󠁧󠁢󠁥󠁮󠁧󠁿 flag"),  # tag characters of the flag are kept
        (PACK_NAME, "x" * 120, "x" * 120),
        (DESCRIPTION, "one\r\n\r\n\r\n two  \n", "one\n\ntwo"),
        (DESCRIPTION, "a\u2028b", "a\nb"),
    ],
)
def test_examples_that_are_cleaned(field: TextField, value: str, expected: str | None) -> None:
    assert text_policy.optional(field, value) == expected


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        (PACK_NAME, "gpj\u202eexe.js", "U+202E (RIGHT-TO-LEFT OVERRIDE) at character 4"),
        (PACK_NAME, "a\u2066b", "U+2066"),
        (PACK_NAME, "\u200fname", "U+200F"),
        (PUBLISHER, "Ana\u061c", "U+061C"),
        (DESCRIPTION, "ok\u202aevil", "U+202A"),
        (ACCESSIBILITY_LABEL, "cat\u200e", "U+200E"),
        (PACK_NAME, "two\nlines", "U+000A (LINE FEED)"),
        (PACK_NAME, "bell\x07", "U+0007"),
        (DESCRIPTION, "esc\x1b[31m", "U+001B (ESCAPE)"),
        (PUBLISHER, "c1\x85", "U+0085"),
        (PACK_NAME, "bad\ud800half", "U+D800"),
        (PACK_NAME, "x" * 121, "121 characters; at most 120"),
        (PUBLISHER, "p" * 121, "at most 120"),
        (DESCRIPTION, "d" * 1025, "at most 1024"),
        (ACCESSIBILITY_LABEL, "l" * 256, "at most 255"),
    ],
)
def test_hostile_examples_are_refused(field: TextField, value: str, named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        text_policy.optional(field, value)
    assert caught.value.code == "INVALID_INPUT"
    assert named in caught.value.message and field.label in caught.value.message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "'abc' is not an emoji"),
        ("😀😂🤣😍", "4 emojis given"),
        ("😀, 😂, 🤣, 😍", "4 emojis given"),
        ("😀a", "not an emoji"),
        ("1", "not an emoji"),
        ("😀\u202e", "U+202E"),
    ],
)
def test_emoji_refusals(value: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        text_policy.emoji_list(value)
    assert problem in caught.value.message


def test_emoji_that_are_kept() -> None:
    assert text_policy.emoji_list("👨‍👩‍👧‍👦, 👍🏽 🇧🇷") == ["👨‍👩‍👧‍👦", "👍🏽", "🇧🇷"]
    assert text_policy.emoji_list(["1️⃣", "🏖️", "🏖️"]) == ["1️⃣", "🏖️"]
    assert text_policy.emoji_list(None) == [] and text_policy.emoji_list("") == []


# --- through the services, the CLI and the public API ---------------------------------------------


def count(db: Database, table: sa.Table) -> int:
    with db.read() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_services_refuse_and_store_nothing(db: Database, db_settings: Settings) -> None:
    packs = PackService(db, db_settings)
    stickers = StickerService(db, LocalStorage(db_settings.sticker_storage_dir), db_settings)
    for arguments in (
        {"name": "\u200b"},
        {"name": "x" * 121},
        {"name": "evil\u202ename"},
        {"name": "ok", "publisher": "\u2067Ana"},
        {"name": "ok", "description": "d" * 1025},
    ):
        with pytest.raises(InvalidInput):
            packs.create_pack(OWNER, **arguments)
    assert count(db, sticker_pack) == 0
    for metadata in (
        {"emojis": ["abc"]},
        {"emojis": ["😀😂🤣😍"]},
        {"pack_name": "a\u202eb"},
        {"publisher": "p" * 121},
    ):
        with pytest.raises(InvalidInput):
            stickers.ingest(mf.png_bytes(), owner_jid=OWNER, **metadata)
    assert count(db, sticker_asset) == 0
    assert not any(path.is_file() for path in Path(db_settings.sticker_storage_dir).rglob("*"))

    pack = packs.create_pack(OWNER, "Cats", description="line one\nline two")
    assert pack.description == "line one\nline two"
    with pytest.raises(InvalidInput, match="U\\+202E"):
        packs.rename(OWNER, pack.pack_key, "Cats\u202e")
    with pytest.raises(InvalidInput, match="a sticker takes 1 to 3"):
        packs.set_fields(OWNER, pack.pack_key, item=1, emojis="😀 😂 🤣 😍")
    assert packs.get_by_key(pack.pack_key).version == 1  # nothing changed


@pytest.fixture
def run(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(db_settings.sticker_storage_dir))
    monkeypatch.setenv("STICKER_PACK_AUTO_COLLECT_ENABLED", "false")
    reset_settings_cache()
    yield lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)
    reset_settings_cache()


def cli_error(result: Result) -> dict[str, Any]:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return json.loads(lines[0])["error"] if lines[0].startswith("{") else {"message": lines[0]}


def test_cli_sticker_import_refuses_bad_emojis_and_names(run, tmp_path: Path, db: Database) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(mf.png_bytes())
    for options, problem in (
        (("--emoji", "abc"), "'abc' is not an emoji"),
        (("--emoji", "😀😂🤣😍"), "4 emojis given"),
        (("--emoji", "😀", "--emoji", "😂", "--emoji", "🤣", "--emoji", "😍"), "4 emojis given"),
        (("--name", "gpj\u202eexe"), "U+202E"),
        (("--name", "n" * 121), "at most 120"),
    ):
        error = cli_error(run("sticker", "import", str(picture), "--owner", OWNER, *options))
        assert error["code"] == "INVALID_INPUT" and problem in error["message"], error
    assert count(db, sticker_asset) == 0
    imported = run("sticker", "import", str(picture), "--owner", OWNER, "--emoji", "😀", "--emoji", "🏖️")
    assert imported.exit_code == 0, imported.output


def test_cli_pack_commands_refuse_hostile_text(run, db: Database) -> None:
    for args, problem in (
        (("pack", "create", "\u200b"), "pack name is required"),
        (("pack", "create", "a\u202eb"), "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        (("pack", "create", "n" * 121), "at most 120"),
        (("pack", "create", "ok", "--description", "\u2066x"), "U+2066"),
    ):
        result = run(*args, "--owner", OWNER)
        assert result.exit_code == 1 and problem in result.stderr and "INVALID_INPUT" in result.stderr, (
            result.output
        )
    assert count(db, sticker_pack) == 0


def test_public_search_stays_lenient(db: Database, tmp_path: Path) -> None:
    """Search text is a query, not stored text: hostile characters do not refuse it."""
    settings_ = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
    )
    runtime = Runtime(settings_)
    try:
        with TestClient(create_app(runtime)) as client:
            for query in ("\u202ecats", "\u200b", "x" * 500, "a\x00b"):
                response = client.get("/api/sticker-packs", params={"q": query})
                assert response.status_code == 200, (query, response.text)
    finally:
        runtime.close()
