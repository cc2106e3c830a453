"""WhatsApp Web transport, on neonize (whatsmeow): the bot is a linked device of a WhatsApp account.

`omnizap bot whatsapp-web` (omnizap/cli/bot_whatsapp_web.py) pairs the device, keeps the session in
the data dir, and hands each message event to `accept` through `map_message_event`.

Media is referenced by the media message itself (its protobuf, base64, thumbnails dropped): that is
what a linked device needs to download and decrypt it later, and it is plain data for the queue.
Downloads and sends need the live, logged-in client, so `WhatsAppWebTransport` only works inside
the bot process that holds the connection (one connection per linked device).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from neonize.proto.Neonize_pb2 import JID, MessageInfo, MessageSource
from neonize.proto.Neonize_pb2 import Message as MessageEvent
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, Message

from omnizap.chat.messages import (
    IncomingMessage,
    MediaKind,
    MediaRef,
    MediaUnavailable,
    Reply,
    ReplyKind,
    SentPack,
)
from omnizap.chat.transports.media_fetch import too_large

logger = logging.getLogger(__name__)

NETWORK = "whatsapp_web"
# waE2E.Message media fields, in the order the original looked for "the first binary media".
MEDIA_FIELDS: tuple[tuple[str, MediaKind], ...] = (
    ("imageMessage", MediaKind.IMAGE),
    ("videoMessage", MediaKind.VIDEO),
    ("ptvMessage", MediaKind.VIDEO_NOTE),
    ("audioMessage", MediaKind.AUDIO),
    ("documentMessage", MediaKind.DOCUMENT),
    ("stickerMessage", MediaKind.STICKER),
)
# Wrappers whose `.message` holds the real content.
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)
THUMBNAIL_FIELDS = ("JPEGThumbnail", "pngThumbnail", "jpegThumbnail")


def jid_string(jid: JID) -> str:
    """`user@server` without the device part (the original's normalisation)."""
    return f"{jid.User}@{jid.Server}" if jid.User else ""


def parse_jid(value: str) -> JID:
    user, _, server = value.partition("@")
    return JID(
        User=user, Server=server or "s.whatsapp.net", RawAgent=0, Device=0, Integrator=0, IsEmpty=False
    )


def unwrap(message: Message) -> Message:
    for _ in range(4):  # wrappers nest at most a couple of levels
        for wrapper in WRAPPERS:
            if message.HasField(wrapper):  # type: ignore[arg-type]
                message = getattr(message, wrapper).message
                break
        else:
            return message
    return message


def media_ref(message: Message) -> MediaRef | None:
    """The first media of `message`, referenced by a copy of just that media message."""
    message = unwrap(message)
    for field_name, kind in MEDIA_FIELDS:
        if not message.HasField(field_name):  # type: ignore[arg-type]
            continue
        media = getattr(message, field_name)
        alone = Message()
        getattr(alone, field_name).CopyFrom(media)
        part = getattr(alone, field_name)
        part.ClearField("contextInfo")
        for thumbnail in THUMBNAIL_FIELDS:
            if thumbnail in part.DESCRIPTOR.fields_by_name:
                part.ClearField(thumbnail)
        if kind is MediaKind.AUDIO and media.PTT:
            kind = MediaKind.VOICE
        return MediaRef(
            kind=kind,
            ref=base64.b64encode(alone.SerializeToString()).decode("ascii"),
            mimetype=media.mimetype,
            declared_size=int(media.fileLength) if media.HasField("fileLength") else None,
            animated=bool(media.isAnimated) if kind is MediaKind.STICKER else None,
            filename=media.fileName if kind is MediaKind.DOCUMENT else "",
            seconds=float(media.seconds)
            if "seconds" in media.DESCRIPTOR.fields_by_name and media.seconds
            else None,
        )
    return None


def text_of(message: Message) -> str:
    message = unwrap(message)
    if message.conversation:
        return message.conversation
    if message.HasField("extendedTextMessage"):
        return message.extendedTextMessage.text
    for field_name, _ in MEDIA_FIELDS:
        if message.HasField(field_name):  # type: ignore[arg-type]
            media = getattr(message, field_name)
            if "caption" in media.DESCRIPTOR.fields_by_name:
                return media.caption
    return ""


def context_of(message: Message) -> ContextInfo | None:
    message = unwrap(message)
    for field_name in ("extendedTextMessage", *(name for name, _ in MEDIA_FIELDS)):
        if message.HasField(field_name):  # type: ignore[arg-type]
            part = getattr(message, field_name)
            if part.HasField("contextInfo"):
                return part.contextInfo
    return None


def map_message_event(event: MessageEvent) -> IncomingMessage | None:
    """A neonize message event, mapped; None for the bot's own messages and content-less events."""
    info = event.Info
    source = info.MessageSource
    if source.IsFromMe or not info.ID:
        return None
    message = event.Message
    sender = jid_string(source.Sender)
    chat = jid_string(source.Chat)
    text = text_of(message)
    media = media_ref(message)
    context = context_of(message)
    if not text and media is None:
        return None
    quoted_media = None
    quoted_id = ""
    if context is not None and context.stanzaID:
        quoted_id = context.stanzaID
        if context.HasField("quotedMessage"):
            quoted_media = media_ref(context.quotedMessage)
    extra = {"quoted_participant": context.participant} if context is not None and context.participant else {}
    if source.HasField("SenderAlt") and source.SenderAlt.User:
        extra["sender_alt"] = jid_string(source.SenderAlt)
    return IncomingMessage(
        network=NETWORK,
        chat_id=chat,
        sender_id=sender,
        message_id=info.ID,
        text=text,
        sender_name=info.Pushname,
        is_group=bool(source.IsGroup),
        media=media,
        quoted_media=quoted_media,
        quoted_message_id=quoted_id,
        timestamp=float(info.Timestamp) / (1000 if info.Timestamp > 10**11 else 1),
        extra=extra,
    )


def quoted_event(message: IncomingMessage) -> MessageEvent:
    """A stand-in for the person's message event, enough for neonize to quote it in a reply."""
    return MessageEvent(
        Info=MessageInfo(
            ID=message.message_id,
            MessageSource=MessageSource(
                Chat=parse_jid(message.chat_id), Sender=parse_jid(message.sender_id), IsGroup=message.is_group
            ),
        ),
        Message=Message(conversation=message.text or " "),
    )


class WhatsAppWebTransport:
    """Download and send through the live neonize client of this process."""

    network = NETWORK

    def __init__(self, client: Any) -> None:
        self.client = client

    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        if media.declared_size is not None and media.declared_size > max_bytes:
            raise too_large(media.declared_size, max_bytes)
        try:
            message = Message.FromString(base64.b64decode(media.ref))
        except (ValueError, TypeError) as exc:
            raise MediaUnavailable("the media reference is not a WhatsApp media message") from exc
        try:
            data = self.client.download_any(message)
        except Exception as exc:  # neonize raises DownloadError and Go-side errors
            raise MediaUnavailable(f"WhatsApp media download failed: {type(exc).__name__}") from exc
        if data is None:
            raise MediaUnavailable("WhatsApp media download returned nothing")
        if len(data) > max_bytes:
            raise too_large(len(data), max_bytes)
        return bytes(data)

    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | None:
        to = parse_jid(message.chat_id)
        quoted = quoted_event(message) if reply.quote else None
        client = self.client
        if reply.kind is ReplyKind.TEXT:
            if quoted is not None:
                client.reply_message(reply.text, quoted)
            else:
                client.send_message(to, reply.text)
        elif reply.kind is ReplyKind.STICKER:
            # passthrough: the WebP is already a WhatsApp sticker with our metadata.
            client.send_sticker(to, reply.data, quoted=quoted, passthrough=True)
        elif reply.kind is ReplyKind.IMAGE:
            client.send_image(to, reply.data, caption=reply.text or None, quoted=quoted)
        elif reply.kind is ReplyKind.VIDEO:
            client.send_video(to, reply.data, caption=reply.text or None, quoted=quoted)
        elif reply.kind is ReplyKind.DOCUMENT:
            client.send_document(
                to,
                reply.data,
                caption=reply.text or None,
                filename=reply.filename or "file",
                mimetype=reply.mimetype or None,
                quoted=quoted,
            )
        elif reply.kind is ReplyKind.STICKER_PACK:
            if reply.pack is None:
                raise ValueError("a STICKER_PACK reply needs its pack")
            pack = reply.pack
            client.send_stickerpack(
                to,
                [sticker.data for sticker in pack.stickers],
                quoted=quoted,
                packname=pack.name,
                publisher=pack.publisher,
                passthrough=True,
            )
            return SentPack()
        return None
