"""The chat core's own rows: per-chat settings and each person's last sticker (SQL only, no rules)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import orjson
import sqlalchemy as sa

from omnizap.chat.messages import IncomingMessage, MediaRef
from omnizap.platform.db import Database
from omnizap.platform.db.engine import excluded, upsert
from omnizap.platform.db.schema import chat_last_sticker, chat_message_media, chat_settings, sticker_asset
from omnizap.platform.db.types import utcnow

CHAT_ID_MAX = 190
MESSAGE_ID_MAX = 190
# A quote of a message older than this finds no media (people quote recent messages).
MESSAGE_MEDIA_RETENTION = dt.timedelta(days=7)


@dataclass(frozen=True)
class ChatConfig:
    """What a chat chose; None means "the server's default"."""

    command_prefix: str | None = None
    locale: str | None = None
    autosticker: bool = False


def _chat_key(network: str, chat_id: str) -> tuple[str, str]:
    return network[:32], chat_id[:CHAT_ID_MAX]


def chat_config(database: Database, network: str, chat_id: str) -> ChatConfig:
    net, chat = _chat_key(network, chat_id)
    with database.read() as connection:
        row = (
            connection.execute(
                sa.select(chat_settings).where(
                    chat_settings.c.network == net, chat_settings.c.chat_id == chat
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        return ChatConfig()
    return ChatConfig(row["command_prefix"], row["locale"], bool(row["autosticker"]))


def update_chat_config(
    database: Database,
    network: str,
    chat_id: str,
    *,
    command_prefix: str | None = None,
    locale: str | None = None,
    autosticker: bool | None = None,
) -> None:
    """Change the given fields of a chat's settings (creating its row on first use)."""
    net, chat = _chat_key(network, chat_id)
    values: dict[str, object] = {"network": net, "chat_id": chat, "updated_at": utcnow()}
    if command_prefix is not None:
        values["command_prefix"] = command_prefix
    if locale is not None:
        values["locale"] = locale
    if autosticker is not None:
        values["autosticker"] = 1 if autosticker else 0
    update = {column: excluded(column) for column in values if column not in {"network", "chat_id"}}
    with database.transaction() as connection:
        connection.execute(
            upsert(
                connection.dialect.name,
                chat_settings,
                values,
                conflict_columns=["network", "chat_id"],
                update=update,
            )
        )


def remember_last_sticker(database: Database, owner_jid: str, sticker_id: str) -> None:
    values = {"owner_jid": owner_jid, "sticker_id": sticker_id, "updated_at": utcnow()}
    with database.transaction() as connection:
        connection.execute(
            upsert(
                connection.dialect.name,
                chat_last_sticker,
                values,
                conflict_columns=["owner_jid"],
                update={"sticker_id": excluded("sticker_id"), "updated_at": excluded("updated_at")},
            )
        )


def last_sticker(database: Database, owner_jid: str) -> str | None:
    """The sticker this person made, sent or used last; else their newest stored sticker."""
    with database.read() as connection:
        remembered = connection.execute(
            sa.select(chat_last_sticker.c.sticker_id).where(chat_last_sticker.c.owner_jid == owner_jid)
        ).scalar()
        if remembered is not None:
            return str(remembered)
        newest = connection.execute(
            sa.select(sticker_asset.c.id)
            .where(sticker_asset.c.owner_jid == owner_jid)
            .order_by(sticker_asset.c.created_at.desc(), sticker_asset.c.id)
            .limit(1)
        ).scalar()
    return str(newest) if newest is not None else None


def remember_message_media(
    database: Database, network: str, chat_id: str, message_id: str, media: MediaRef
) -> None:
    """Keep which media (network, message_id) carried, for quotes that name only the message id;
    rows past MESSAGE_MEDIA_RETENTION are pruned on the way (an indexed range delete)."""
    if not message_id or len(message_id) > MESSAGE_ID_MAX:
        return  # such an id cannot be keyed; its quotes simply find no media
    net, chat = _chat_key(network, chat_id)
    now = utcnow()
    values = {
        "network": net,
        "message_id": message_id,
        "chat_id": chat,
        "media": orjson.dumps(media.to_payload()).decode(),
        "created_at": now,
    }
    with database.transaction() as connection:
        connection.execute(
            chat_message_media.delete().where(chat_message_media.c.created_at < now - MESSAGE_MEDIA_RETENTION)
        )
        connection.execute(
            upsert(
                connection.dialect.name,
                chat_message_media,
                values,
                conflict_columns=["network", "message_id"],
                update={
                    "chat_id": excluded("chat_id"),
                    "media": excluded("media"),
                    "created_at": excluded("created_at"),
                },
            )
        )


def message_media(database: Database, network: str, chat_id: str, message_id: str) -> MediaRef | None:
    """The media remembered for (network, message_id) in this chat (never another chat's), if recent."""
    if not message_id or len(message_id) > MESSAGE_ID_MAX:
        return None
    net, chat = _chat_key(network, chat_id)
    with database.read() as connection:
        row = connection.execute(
            sa.select(chat_message_media.c.media).where(
                chat_message_media.c.network == net,
                chat_message_media.c.message_id == message_id,
                chat_message_media.c.chat_id == chat,
                chat_message_media.c.created_at >= utcnow() - MESSAGE_MEDIA_RETENTION,
            )
        ).scalar()
    if row is None:
        return None
    try:
        return MediaRef.from_payload(orjson.loads(row))
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
        return None


def with_remembered_media(database: Database, message: IncomingMessage) -> IncomingMessage:
    """Remember the message's own media; fill `quoted_media` from memory when the network named the
    quoted message only by its id (the WhatsApp Cloud API's `context.id`)."""
    if message.media is not None:
        remember_message_media(database, message.network, message.chat_id, message.message_id, message.media)
    if message.quoted_media is None and message.quoted_message_id:
        quoted = message_media(database, message.network, message.chat_id, message.quoted_message_id)
        if quoted is not None:
            return dataclasses.replace(message, quoted_media=quoted)
    return message
