"""Telegram Bot API transport, on python-telegram-bot.

Updates arrive by webhook (`TELEGRAM_WEBHOOK_PATH`, mounted by `omnizap serve`; Telegram must send
`X-Telegram-Bot-Api-Secret-Token` equal to `TELEGRAM_WEBHOOK_SECRET`) or by long polling
(`omnizap bot telegram`). Either way each message becomes an `IncomingMessage` handed to `accept`.
Replies and downloads run in the worker through `TelegramTransport`; `/pack send` becomes a real
Telegram sticker set (`telegram_sets`).

python-telegram-bot is asynchronous and the `Transport` protocol is not: each call runs its own short
event loop with its own `Bot` (the worker calls from plain threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from telegram import Bot, InputFile, Message, ReplyParameters, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from omnizap.chat.messages import (
    IncomingMessage,
    MediaKind,
    MediaRef,
    MediaUnavailable,
    Reply,
    ReplyKind,
    SentPack,
)
from omnizap.chat.transports.media_fetch import (
    TransientFailure,
    check_status,
    read_capped,
    too_large,
    with_retries,
)
from omnizap.chat.transports.telegram_media import telegram_sticker
from omnizap.chat.transports.whatsapp_cloud import read_body_capped
from omnizap.config import Settings
from omnizap.core.stickers.webp import WebpFormatError, inspect_webp

logger = logging.getLogger(__name__)

NETWORK = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SENDER_SUFFIX = "@telegram"
GROUP_CHAT_TYPES = frozenset({"group", "supergroup"})
T = TypeVar("T")

Accept = Callable[[IncomingMessage], bool]


def webhook_configured(settings: Settings) -> bool:
    return bool(settings.telegram_bot_token and settings.telegram_webhook_secret)


def telegram_user_id(sender_id: str) -> int:
    """The numeric Telegram user id inside a sender id made by `map_update`."""
    return int(sender_id.removesuffix(SENDER_SUFFIX))


def telegram_message_id(message: IncomingMessage) -> int | None:
    value = message.extra.get("telegram_message_id", "")
    return int(value) if value.lstrip("-").isdigit() else None


# --- Update -> IncomingMessage --------------------------------------------------------------------


def media_of(message: Message) -> MediaRef | None:
    """The message's one piece of media (Telegram sends at most one), mapped."""
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return MediaRef(MediaKind.IMAGE, largest.file_id, "image/jpeg", largest.file_size)
    if message.sticker:
        sticker = message.sticker
        mimetype = (
            "video/webm"
            if sticker.is_video
            else "application/x-tgsticker"
            if sticker.is_animated
            else "image/webp"
        )
        return MediaRef(
            MediaKind.STICKER,
            sticker.file_id,
            mimetype,
            sticker.file_size,
            animated=sticker.is_animated or sticker.is_video,
        )
    if message.animation:  # GIFs: Telegram converts them to MP4, like WhatsApp
        animation = message.animation
        return MediaRef(
            MediaKind.VIDEO,
            animation.file_id,
            animation.mime_type or "video/mp4",
            animation.file_size,
            filename=animation.file_name or "",
            seconds=_seconds(animation),
        )
    if message.video:
        video = message.video
        return MediaRef(
            MediaKind.VIDEO,
            video.file_id,
            video.mime_type or "video/mp4",
            video.file_size,
            filename=video.file_name or "",
            seconds=_seconds(video),
        )
    if message.document:
        document = message.document
        return MediaRef(
            MediaKind.DOCUMENT,
            document.file_id,
            document.mime_type or "",
            document.file_size,
            filename=document.file_name or "",
        )
    if message.video_note:
        return MediaRef(
            MediaKind.VIDEO_NOTE, message.video_note.file_id, "video/mp4", message.video_note.file_size
        )
    if message.voice:
        return MediaRef(
            MediaKind.VOICE, message.voice.file_id, message.voice.mime_type or "", message.voice.file_size
        )
    if message.audio:
        return MediaRef(
            MediaKind.AUDIO, message.audio.file_id, message.audio.mime_type or "", message.audio.file_size
        )
    return None


def _seconds(media: Any) -> float | None:
    """A video's or animation's duration in seconds. python-telegram-bot 22 warns on every read of
    `duration` (it will become a timedelta); both forms are accepted and the warning is kept quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = media.duration
    if value is None:
        return None
    total_seconds = getattr(value, "total_seconds", None)
    return float(total_seconds()) if callable(total_seconds) else float(value)


def map_update(update: Update) -> IncomingMessage | None:
    """A new message from a person, mapped; None for every other kind of update."""
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    chat = message.chat
    quoted = message.reply_to_message
    return IncomingMessage(
        network=NETWORK,
        chat_id=str(chat.id),
        sender_id=f"{message.from_user.id}{SENDER_SUFFIX}",
        message_id=f"{chat.id}:{message.message_id}",
        text=message.text or message.caption or "",
        sender_name=message.from_user.full_name,
        is_group=chat.type in GROUP_CHAT_TYPES,
        media=media_of(message),
        quoted_media=media_of(quoted) if quoted is not None else None,
        quoted_message_id=f"{chat.id}:{quoted.message_id}" if quoted is not None else "",
        timestamp=message.date.timestamp() if message.date else 0.0,
        extra={"telegram_message_id": str(message.message_id), "chat_type": str(chat.type)},
    )


def parse_update(payload: Any) -> Update | None:
    """The Update of a webhook body when it carries a new message; None for every other kind of
    update (they are answered 200 and ignored, so Telegram does not redeliver them).

    Only the message is parsed: an update kind this library version does not know cannot fail it.
    Raises ValueError for a body that is not an update, or a message that is malformed."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("update_id"), int):
        raise ValueError('expected a JSON object with an integer "update_id"')
    if "message" not in payload:
        return None
    if not isinstance(payload["message"], Mapping):
        raise ValueError('"message" must be an object')
    try:
        update = Update.de_json({"update_id": payload["update_id"], "message": payload["message"]}, None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed message: {type(exc).__name__}") from exc
    if update is None:  # pragma: no cover - de_json returns None only for empty data
        raise ValueError("empty update")
    return update


# --- webhook HTTP ---------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def build_router(settings: Settings, accept: Accept) -> APIRouter:
    path = "/" + settings.telegram_webhook_path.strip("/")
    secret = settings.telegram_webhook_secret.encode()
    max_bytes = settings.http_max_body_bytes
    router = APIRouter()

    @router.post(path, include_in_schema=False)
    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return _error(
                401, "UNAUTHORIZED", f"Missing {SECRET_HEADER}; set it with setWebhook's secret_token."
            )
        if not hmac.compare_digest(given.encode(), secret):
            logger.warning("telegram webhook: wrong %s, update dropped", SECRET_HEADER)
            return _error(403, "FORBIDDEN", f"{SECRET_HEADER} does not match TELEGRAM_WEBHOOK_SECRET.")
        body = await read_body_capped(request, max_bytes)
        if body is None:
            return _error(413, "PAYLOAD_TOO_LARGE", f"The update is larger than {max_bytes} bytes.")
        try:
            update = parse_update(orjson.loads(body))
        except (orjson.JSONDecodeError, ValueError) as exc:
            return _error(400, "INVALID_INPUT", f"The body is not a Telegram update: {exc}")
        message = map_update(update) if update is not None else None
        if message is None:
            return JSONResponse({"accepted": 0, "redelivered": 0})
        accepted = await run_in_threadpool(accept, message)
        return JSONResponse({"accepted": int(accepted), "redelivered": int(not accepted)})

    return router


# --- the Bot API client ---------------------------------------------------------------------------


def make_bot(settings: Settings) -> Bot:
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN must be set")
    origin = settings.telegram_api_base_url.rstrip("/")
    timeout = settings.chat_media_download_timeout_seconds
    return Bot(
        settings.telegram_bot_token,
        base_url=f"{origin}/bot",
        base_file_url=f"{origin}/file/bot",
        request=HTTPXRequest(connection_pool_size=4, read_timeout=timeout, media_write_timeout=timeout),
        # Long polling holds a request open for the poll timeout; give it room.
        get_updates_request=HTTPXRequest(read_timeout=timeout + 60),
    )


class TelegramTransport:
    network = NETWORK

    def __init__(
        self,
        settings: Settings,
        *,
        database: Any = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        make_bot(settings)  # refuses a missing token now rather than in the worker
        self.settings = settings
        self._database = database
        self._retry_options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}

    def _run(self, work: Callable[[Bot], Awaitable[T]]) -> T:
        async def main() -> T:
            async with make_bot(self.settings) as bot:
                return await work(bot)

        return asyncio.run(main())

    @property
    def database(self) -> Any:
        if self._database is None:
            from omnizap.platform.db import Database

            self._database = Database(self.settings.database_url, pool_size=2)
        return self._database

    # download ------------------------------------------------------------------------------------
    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        if media.declared_size is not None and media.declared_size > max_bytes:
            raise too_large(media.declared_size, max_bytes)

        async def locate(bot: Bot) -> tuple[str, int | None]:
            file = await bot.get_file(media.ref)
            return str(file.file_path or ""), file.file_size

        def lookup() -> tuple[str, int | None]:
            try:
                return self._run(locate)
            except (RetryAfter, NetworkError) as exc:
                if isinstance(exc, BadRequest):
                    raise MediaUnavailable(f"Telegram getFile: {exc.message}") from exc
                raise TransientFailure(f"Telegram getFile: {type(exc).__name__}") from exc
            except (Forbidden, InvalidToken, TelegramError) as exc:
                raise MediaUnavailable(f"Telegram getFile: {type(exc).__name__}") from exc

        attempts = self.settings.chat_media_download_attempts
        url, size = with_retries(lookup, attempts=attempts, what="Telegram getFile", **self._retry_options)
        if not url:
            raise MediaUnavailable("Telegram getFile gave no file path (file too big for the Bot API?)")
        if size is not None and size > max_bytes:
            raise too_large(size, max_bytes)

        def fetch() -> bytes:
            # The URL holds the bot token: never put it in a log or an error.
            timeout = self.settings.chat_media_download_timeout_seconds
            with httpx.Client(timeout=timeout) as client, client.stream("GET", url) as response:
                check_status(response, "Telegram file download")
                return read_capped(response, max_bytes)

        return with_retries(fetch, attempts=attempts, what="Telegram file download", **self._retry_options)

    # send ----------------------------------------------------------------------------------------
    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | None:
        if reply.kind is ReplyKind.STICKER_PACK:
            if reply.pack is None:
                raise ValueError("a STICKER_PACK reply needs its pack")
            from omnizap.chat.transports.telegram_sets import StickerSetSync

            pack = reply.pack
            return self._run(
                lambda bot: StickerSetSync(bot, self.database, self.settings).sync(
                    pack, owner_user_id=telegram_user_id(message.sender_id)
                )
            )
        self._run(lambda bot: send_reply(bot, message, reply))
        return None


async def send_reply(bot: Bot, message: IncomingMessage, reply: Reply) -> None:
    chat_id = int(message.chat_id) if message.chat_id.lstrip("-").isdigit() else message.chat_id
    quoted = telegram_message_id(message) if reply.quote else None
    reply_to = ReplyParameters(quoted, allow_sending_without_reply=True) if quoted is not None else None
    caption = reply.text or None
    if reply.kind is ReplyKind.TEXT:
        await bot.send_message(chat_id, reply.text, reply_parameters=reply_to)
    elif reply.kind is ReplyKind.STICKER:
        # Telegram has no animated WebP stickers: an animated one goes as a VP9 video sticker.
        sticker = await asyncio.to_thread(telegram_sticker, reply.data, animated=is_animated_webp(reply.data))
        await bot.send_sticker(
            chat_id, InputFile(sticker.data, filename=sticker.filename), reply_parameters=reply_to
        )
        if caption:  # stickers take no caption
            await bot.send_message(chat_id, caption)
    elif reply.kind is ReplyKind.IMAGE:
        await bot.send_photo(
            chat_id,
            reply.data,
            caption=caption,
            reply_parameters=reply_to,
            filename=reply.filename or "image.png",
        )
    elif reply.kind is ReplyKind.VIDEO:
        await bot.send_video(
            chat_id,
            reply.data,
            caption=caption,
            reply_parameters=reply_to,
            filename=reply.filename or "video.mp4",
        )
    elif reply.kind is ReplyKind.DOCUMENT:
        await bot.send_document(
            chat_id, reply.data, caption=caption, reply_parameters=reply_to, filename=reply.filename or "file"
        )
    else:  # pragma: no cover - STICKER_PACK is handled by the caller
        raise ValueError(f"unknown reply kind {reply.kind}")


def is_animated_webp(data: bytes) -> bool:
    try:
        return inspect_webp(data).is_animated
    except WebpFormatError:
        return False


def create(settings: Settings) -> TelegramTransport:
    """Registry factory."""
    return TelegramTransport(settings)


# --- long polling (`omnizap bot telegram`) ---------------------------------------------------------


async def poll_once(bot: Bot, accept: Accept, *, offset: int, timeout: int) -> int:
    """Fetch one batch of updates, hand each message to `accept`, and return the next offset.

    The offset only moves past an update once `accept` has returned, so a crash re-reads the batch
    (accept is idempotent by message id)."""
    updates = await bot.get_updates(offset=offset, timeout=timeout, allowed_updates=["message"])
    for update in updates:
        message = map_update(update)
        if message is not None:
            await asyncio.to_thread(accept, message)
        offset = update.update_id + 1
    return offset


async def run_polling(
    settings: Settings,
    accept: Accept,
    *,
    stop: asyncio.Event,
    delete_webhook: bool = False,
    poll_timeout: int = 30,
    retry_seconds: float = 5.0,
) -> None:
    """Long-poll getUpdates until `stop` is set. Network failures wait `retry_seconds` and go on."""
    async with make_bot(settings) as bot:
        if delete_webhook:
            await bot.delete_webhook(drop_pending_updates=False)
        logger.info("telegram: polling as @%s", bot.username)
        offset = 0
        while not stop.is_set():
            try:
                offset = await poll_once(bot, accept, offset=offset, timeout=poll_timeout)
            except (NetworkError, RetryAfter) as exc:
                if isinstance(exc, BadRequest):
                    raise
                logger.warning("telegram: getUpdates failed (%s); retrying", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=retry_seconds)
