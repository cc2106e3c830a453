"""Talking to the bot through the console transport in tests: the real queue path, on each engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from omnizap.chat.console import ConsoleSession
from omnizap.chat.transports.console import ConsoleTransport
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset
from omnizap.runtime import Runtime

KEY = re.compile(r"`([a-z0-9-]{1,32}-[a-z0-9]{5})`")


def chat_settings(db_settings: Settings, **overrides: Any) -> Settings:
    """English replies (message ids) and no real sleeping between retries, unless a test says otherwise."""
    values: dict[str, Any] = {
        "chat_locale": "en",
        "chat_media_retry_base_seconds": 0.0,
        "sticker_pack_rate_max_actions": 10_000,  # tests of the limit set their own
    }
    values.update(overrides)
    return db_settings.model_copy(update=values)


class Person:
    """One console user: `say` sends a line and returns every text the bot answered, joined."""

    def __init__(
        self,
        runtime: Runtime,
        workdir: Path,
        sender: str,
        *,
        name: str = "",
        group: str | None = None,
        admin: bool = False,
        native_packs: bool = False,
    ) -> None:
        self.lines: list[str] = []
        safe = re.sub(r"[^a-z0-9]", "_", sender.lower())
        self.transport = ConsoleTransport(
            workdir / "out" / safe, echo=self.lines.append, native_packs=native_packs
        )
        self.session = ConsoleSession(
            runtime,
            self.transport,
            sender_id=sender,
            sender_name=name,
            group_id=group,
            group_admin=admin,
            base_dir=workdir,
        )

    def say(self, line: str, *, message_id: str | None = None) -> str:
        start = len(self.lines)
        self.session.send_line(line, message_id=message_id)
        return "\n".join(self.lines[start:])

    def saved(self, kind: str) -> list[Path]:
        return [path for path in self.transport.saved if f"-{kind}" in path.name]


def pack_key(reply: str) -> str:
    found = KEY.search(reply)
    assert found, f"no pack key in reply:\n{reply}"
    return found.group(1)


def asset_count(database: Database) -> int:
    with database.read() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(sticker_asset)).scalar_one())
