"""`omnizap serve` mounts each chat network's webhook only when it is fully configured, behind the
same request pipeline as the rest of the site (body limit, access log with secrets masked)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from omnizap.chat.transports.telegram import TelegramTransport
from omnizap.chat.transports.webhooks import register_network_transports
from omnizap.chat.transports.whatsapp_cloud import WhatsAppCloudTransport
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.runtime import Runtime
from omnizap.web.app import create_app

CHAT_SETTINGS = {
    "whatsapp_cloud_phone_number_id": "1099",
    "whatsapp_cloud_token": "EAAsecret-token",
    "whatsapp_cloud_app_secret": "app-secret",
    "whatsapp_cloud_verify_token": "verify-token-value",
    "telegram_bot_token": "123:telegram-token",
    "telegram_webhook_secret": "tg-secret",
}


def make_settings(database: Database, folder: Path, **overrides: object) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database.url.render_as_string(hide_password=False),
        sticker_storage_dir=folder / "stickers",
        sticker_worker_pipeline_enabled=False,
        **overrides,
    )


@pytest.mark.engines
def test_configured_webhooks_are_mounted_and_guarded(db: Database, tmp_path: Path) -> None:
    runtime = Runtime(make_settings(db, tmp_path, **CHAT_SETTINGS))
    access_log = io.StringIO()
    try:
        with TestClient(create_app(runtime, access_log_stream=access_log)) as client:
            challenge = client.get(
                "/webhooks/whatsapp",
                params={
                    "hub.mode": "subscribe",
                    "hub.verify_token": "verify-token-value",
                    "hub.challenge": "77",
                },
            )
            unsigned = client.post("/webhooks/whatsapp", content=b"{}")
            badly_signed = client.post(
                "/webhooks/whatsapp", content=b"{}", headers={"X-Hub-Signature-256": "sha256=00"}
            )
            no_secret = client.post("/webhooks/telegram", content=json.dumps({"update_id": 1}).encode())
            wrong_secret = client.post(
                "/webhooks/telegram", content=b"{}", headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}
            )
            huge = client.post(
                "/webhooks/telegram",
                content=b"x" * (70 * 1024),
                headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"},
            )
    finally:
        runtime.close()
    assert (challenge.status_code, challenge.text) == (200, "77")
    assert (unsigned.status_code, badly_signed.status_code) == (401, 403)
    assert (no_secret.status_code, wrong_secret.status_code, huge.status_code) == (401, 403, 413)
    log = access_log.getvalue()
    assert "/webhooks/whatsapp" in log
    for secret in CHAT_SETTINGS.values():
        assert secret not in log


@pytest.mark.engines
def test_unconfigured_webhooks_are_not_mounted(db: Database, tmp_path: Path) -> None:
    partial = {
        "whatsapp_cloud_phone_number_id": "1099",
        "whatsapp_cloud_token": "t",
        "telegram_bot_token": "1:x",
    }
    runtime = Runtime(make_settings(db, tmp_path, **partial))
    try:
        with TestClient(create_app(runtime)) as client:
            assert client.get("/webhooks/whatsapp").status_code == 404
            assert client.post("/webhooks/telegram", content=b"{}").status_code in (404, 405)
    finally:
        runtime.close()


def test_http_transports_register_lazily_and_build_from_settings() -> None:
    registered: dict = {}
    register_network_transports(lambda network, factory: registered.__setitem__(network, factory))
    settings = Settings(_env_file=None, **CHAT_SETTINGS)
    assert sorted(registered) == ["telegram", "whatsapp_cloud"]
    assert isinstance(registered["whatsapp_cloud"](settings), WhatsAppCloudTransport)
    assert isinstance(registered["telegram"](settings), TelegramTransport)
