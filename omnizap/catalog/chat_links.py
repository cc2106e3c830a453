"""Links from a catalog pack to the chat networks: the Telegram sticker set `/pack send` made.

Read from `chat_telegram_sticker_set` (written by omnizap.chat.transports.telegram_sets) inside the
catalog's own read, so the pack page and `GET /api/sticker-packs/{key}` show the same thing. Only
the catalog's detail read calls this, and that read returns nothing for private, draft or deleted
packs, so a private pack's set name never reaches a public answer.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.platform.db.schema import chat_telegram_sticker_set

TELEGRAM_ADD_LINK = "https://t.me/addstickers/"
# Telegram's own rule for set names (a-z, digits, `_`; `_by_<bot>`); anything else is not linked.
_SET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def telegram_set(connection: Connection, pack_key: str, pack_version: int) -> dict[str, Any] | None:
    """`{"url", "set_name", "synced_version", "is_current"}` of the pack's Telegram set, or None.

    `is_current` is False when the pack changed after the last `/pack send` on Telegram (its
    version moved on): the set still opens, but it may lack the newest stickers."""
    table = chat_telegram_sticker_set
    row = (
        connection.execute(
            sa.select(table.c.set_name, table.c.synced_version).where(table.c.pack_key == pack_key)
        )
        .mappings()
        .first()
    )
    if row is None or not _SET_NAME.match(str(row["set_name"] or "")):
        return None
    synced = int(row["synced_version"])
    return {
        "url": TELEGRAM_ADD_LINK + row["set_name"],
        "set_name": row["set_name"],
        "synced_version": synced,
        "is_current": synced >= int(pack_version or 0),
    }
