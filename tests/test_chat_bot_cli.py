"""`omnizap bot telegram` and `omnizap bot whatsapp-web`: the refusals an operator can hit, with the
command registered on a `bot` group the way the chat core's group includes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fakes.telegram_api import FakeTelegramApi

from omnizap.cli import bot_telegram, bot_whatsapp_web
from omnizap.cli.common import AppContext
from omnizap.config import Settings, reset_settings_cache

TOKEN = "123456:cli-token"


@click.group()
@click.pass_context
def bot(ctx: click.Context) -> None:
    ctx.obj = AppContext()
    ctx.call_on_close(ctx.obj.close)


bot_telegram.register(bot)
bot_whatsapp_web.register(bot)


@pytest.fixture
def environment(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(db_settings.sticker_storage_dir))
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_telegram_needs_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    result = CliRunner().invoke(bot, ["telegram"])
    assert result.exit_code == 1
    assert "TELEGRAM_BOT_TOKEN is not set" in result.output


@pytest.mark.engines
def test_telegram_polling_explains_an_active_webhook(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegramApi(token=TOKEN) as api:
        api.webhook_url = "https://example.org/webhooks/telegram"
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        result = CliRunner().invoke(bot, ["telegram", "--poll-timeout", "0"])
    assert result.exit_code == 1
    assert "--delete-webhook" in result.output
    assert TOKEN not in result.output


def test_telegram_rejected_token_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omnizap.platform.db import Database
    from omnizap.platform.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    database = Database(url)
    upgrade(database)
    database.dispose()
    with FakeTelegramApi(token=TOKEN) as api:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "999:wrong")
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        result = CliRunner().invoke(bot, ["telegram"])
    assert result.exit_code == 1
    assert "rejected TELEGRAM_BOT_TOKEN" in result.output
    assert "999:wrong" not in result.output


@pytest.mark.parametrize("phone", ["123", "+55 11 abc", "1234567890123456"])
def test_whatsapp_web_refuses_a_bad_pairing_number(phone: str) -> None:
    result = CliRunner().invoke(bot, ["whatsapp-web", "--pair-phone", phone])
    assert result.exit_code == 2
    assert "country code" in result.output


def test_whatsapp_web_pairing_numbers_are_normalised() -> None:
    assert bot_whatsapp_web.pairing_phone("+55 (11) 99999-9999") == "5511999999999"
