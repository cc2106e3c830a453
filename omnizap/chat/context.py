"""What a command handler works with: the message, its chat's settings, services, and a transport
wrapped so downloads and sends are retried with backoff."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omnizap.chat.i18n import Translator
from omnizap.chat.messages import (
    IncomingMessage,
    MediaRef,
    MediaUnavailable,
    Reply,
    ReplyNotSupported,
    SentMedia,
    SentPack,
    Transport,
)
from omnizap.chat.store import ChatConfig
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput
from omnizap.core.owners import normalize_owner_jid
from omnizap.platform.db import Database
from omnizap.platform.storage.base import Storage

if TYPE_CHECKING:
    from omnizap.core.packs.service import PackService
    from omnizap.core.stickers.service import StickerService

logger = logging.getLogger(__name__)

_HANDLE_UNSAFE = re.compile(r"[^a-z0-9._+@-]+")


class SendFailed(Exception):
    """A reply could not be delivered after every attempt; the rest of the conversation is dropped."""


def owner_of(message: IncomingMessage) -> str:
    """The owner id of the sender: a normalised WhatsApp JID, or a handle made safe from any other id
    (a Telegram numeric id stays itself; `tg:42` becomes `tg-42`)."""
    try:
        return normalize_owner_jid(message.sender_id)
    except InvalidInput:
        handle = _HANDLE_UNSAFE.sub("-", (message.sender_id or "").strip().lower()).strip("-")
        return normalize_owner_jid((handle or "unknown")[:255])


@dataclass
class ChatContext:
    message: IncomingMessage
    transport: Transport
    settings: Settings
    database: Database
    storage: Storage
    config: ChatConfig = field(default_factory=ChatConfig)
    sleep: Callable[[float], None] = time.sleep
    sent: list[Reply] = field(default_factory=list)

    @functools.cached_property
    def owner(self) -> str:
        return owner_of(self.message)

    @property
    def prefix(self) -> str:
        return self.config.command_prefix or self.settings.command_prefix

    @functools.cached_property
    def _(self) -> Translator:
        return Translator(self.config.locale or self.settings.chat_locale)

    @property
    def sender_name(self) -> str:
        return " ".join((self.message.sender_name or "").split())[:120]

    # --- services (built on first use) -----------------------------------------------------------
    @functools.cached_property
    def stickers(self) -> StickerService:  # imported on first use: the media stack is heavy
        from omnizap.core.stickers.service import StickerService

        return StickerService(self.database, self.storage, self.settings)

    @functools.cached_property
    def packs(self) -> PackService:
        from omnizap.core.packs.service import PackService

        return PackService(self.database, self.settings)

    # --- transport, retried ----------------------------------------------------------------------
    def _delay(self, attempt: int) -> float:
        return self.settings.chat_media_retry_base_seconds * (2 ** (attempt - 1))

    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        """The media's bytes; a transient failure is retried with exponential backoff, then raised
        as MediaUnavailable. Other errors (the file is too large, say) are not retried."""
        attempts = self.settings.chat_media_attempts
        for attempt in range(1, attempts + 1):
            try:
                return self.transport.download(media, max_bytes=max_bytes)
            except MediaUnavailable:
                if attempt == attempts:
                    raise
                logger.warning("download of %s failed (attempt %d/%d)", media.kind, attempt, attempts)
                self.sleep(self._delay(attempt))
        raise MediaUnavailable("no attempt was made")  # unreachable: attempts >= 1

    def send(self, reply: Reply) -> SentPack | None:
        """Deliver one reply. ReplyNotSupported goes to the caller at once (it falls back); any other
        failure is retried with backoff and, after the last attempt, raised as SendFailed."""
        attempts = self.settings.chat_media_attempts
        for attempt in range(1, attempts + 1):
            try:
                result = self.transport.send(self.message, reply)
            except ReplyNotSupported:
                raise
            except Exception as exc:
                if attempt == attempts:
                    raise SendFailed(f"{reply.kind} reply failed after {attempts} attempts: {exc}") from exc
                logger.warning(
                    "sending a %s reply failed (attempt %d/%d): %s", reply.kind, attempt, attempts, exc
                )
                self.sleep(self._delay(attempt))
                continue
            self.sent.append(reply)
            if isinstance(result, SentMedia):
                self._remember_sent(result)
                return None
            return result
        return None  # unreachable: attempts >= 1

    def _remember_sent(self, sent: SentMedia) -> None:
        """Keep the media of the bot's own message, so replying to its sticker with /toimg works."""
        from omnizap.chat import store

        try:
            store.remember_message_media(
                self.database, self.message.network, self.message.chat_id, sent.message_id, sent.media
            )
        except Exception:  # the reply is out; only a later quote of it would miss the media
            logger.warning("could not remember sent message %s", sent.message_id, exc_info=True)

    def reply(self, text: str, *, quote: bool = True) -> None:
        self.send(Reply.of_text(text, quote=quote))
