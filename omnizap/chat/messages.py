"""The chat core's message and reply models, shared by the core and every transport.

An `IncomingMessage` is what a transport hands to the core: plain data, JSON-serialisable so it can
travel as the payload of a `chat_message` task (a webhook is answered at once; the work runs on the
queue). Media is referenced, not carried: `MediaRef.ref` is the transport's own handle (a Graph API
media id, a Telegram file_id, a local path for the console) and the worker asks the transport to
download it when the command needs the bytes.

A `Reply` is what the core hands back to a transport: text, a sticker, an image, a video, a document
or a native sticker pack. Transports that cannot send a kind raise `ReplyNotSupported`; the core then
falls back (a pack becomes sticker-by-sticker messages, for example).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


class MediaKind(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"  # WhatsApp delivers GIFs as MP4 videos; Telegram animations land here too
    GIF = "gif"
    STICKER = "sticker"
    DOCUMENT = "document"
    AUDIO = "audio"
    VOICE = "voice"
    VIDEO_NOTE = "video_note"


@dataclass(frozen=True)
class MediaRef:
    """A piece of media attached to a message, not yet downloaded."""

    kind: MediaKind
    ref: str  # the transport's handle: Graph media id, Telegram file_id, console file path
    mimetype: str = ""
    declared_size: int | None = None  # bytes, as the network announced it (may be absent or wrong)
    animated: bool | None = None  # for stickers, when the network says so
    filename: str = ""
    seconds: float | None = None  # for video, when announced

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> MediaRef:
        return cls(
            kind=MediaKind(data["kind"]),
            ref=str(data["ref"]),
            mimetype=str(data.get("mimetype") or ""),
            declared_size=data.get("declared_size"),
            animated=data.get("animated"),
            filename=str(data.get("filename") or ""),
            seconds=data.get("seconds"),
        )


@dataclass(frozen=True)
class IncomingMessage:
    """One message a person sent, as every transport maps it."""

    network: str  # "console", "whatsapp_cloud", "telegram", "whatsapp_web"
    chat_id: str  # where replies go (a group id or the person's own chat)
    sender_id: str  # the person; on WhatsApp networks a JID such as 5511999999999@s.whatsapp.net
    message_id: str  # unique per network: (network, message_id) dedupes redelivered webhooks
    text: str = ""
    sender_name: str = ""  # push name / display name, may be empty
    is_group: bool = False
    sender_is_group_admin: bool = False  # only meaningful in groups; transports that can't tell say False
    media: MediaRef | None = None
    quoted_media: MediaRef | None = None
    quoted_message_id: str = ""
    timestamp: float = 0.0  # seconds since the epoch, as the network stamped it (0 when unknown)
    extra: dict[str, str] = field(default_factory=dict)  # transport-specific plain strings

    def to_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["media"] = self.media.to_payload() if self.media else None
        data["quoted_media"] = self.quoted_media.to_payload() if self.quoted_media else None
        return data

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> IncomingMessage:
        media = data.get("media")
        quoted = data.get("quoted_media")
        return cls(
            network=str(data["network"]),
            chat_id=str(data["chat_id"]),
            sender_id=str(data["sender_id"]),
            message_id=str(data["message_id"]),
            text=str(data.get("text") or ""),
            sender_name=str(data.get("sender_name") or ""),
            is_group=bool(data.get("is_group")),
            sender_is_group_admin=bool(data.get("sender_is_group_admin")),
            media=MediaRef.from_payload(media) if media else None,
            quoted_media=MediaRef.from_payload(quoted) if quoted else None,
            quoted_message_id=str(data.get("quoted_message_id") or ""),
            timestamp=float(data.get("timestamp") or 0.0),
            extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
        )


class ReplyKind(enum.StrEnum):
    TEXT = "text"
    STICKER = "sticker"
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER_PACK = "sticker_pack"


@dataclass(frozen=True)
class PackSticker:
    data: bytes  # a WhatsApp-valid WebP
    emojis: tuple[str, ...] = ()
    animated: bool = False
    accessibility_label: str = ""


@dataclass(frozen=True)
class NativePack:
    """A whole pack, for networks that can send or install one (WhatsApp sticker-pack message,
    Telegram sticker set)."""

    pack_key: str
    name: str
    publisher: str
    stickers: tuple[PackSticker, ...]
    cover: bytes | None = None  # WebP; the first sticker when None
    description: str = ""
    version: int = 1
    pack_id: str = ""  # the pack's internal id, recorded with a Telegram set (may be empty)


@dataclass(frozen=True)
class Reply:
    kind: ReplyKind
    text: str = ""  # the message for TEXT; the caption for media kinds (may be empty)
    data: bytes = b""  # the file for STICKER/IMAGE/VIDEO/DOCUMENT
    mimetype: str = ""
    filename: str = ""
    quote: bool = True  # reply quoting the person's message, where the network supports it
    pack: NativePack | None = None  # for STICKER_PACK

    @classmethod
    def of_text(cls, text: str, *, quote: bool = True) -> Reply:
        return cls(ReplyKind.TEXT, text=text, quote=quote)


class ReplyNotSupported(Exception):
    """The transport cannot send this kind of reply; the core falls back to simpler replies."""


class MediaUnavailable(Exception):
    """The media could not be downloaded (expired, deleted, network failure after retries)."""


@dataclass(frozen=True)
class SentPack:
    """What a transport reports after sending a native pack (e.g. the Telegram set's link)."""

    link: str = ""
    set_name: str = ""


@dataclass(frozen=True)
class SentMedia:
    """What a transport may report after sending a media reply: the new message's id and a handle to
    its media, so a later quote of that message (which may carry only its id) finds the media."""

    message_id: str
    media: MediaRef


class Transport(Protocol):
    """What the core needs from a chat network. Implementations live in `omnizap.chat.transports`.

    `download` and `send` are called from the worker that runs the `chat_message` task, so they must
    work in a fresh process built from `Settings` alone (no state from the webhook process).
    """

    network: str

    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        """The media's bytes. Raises MediaUnavailable, or MediaTooLarge-like InvalidInput past max_bytes."""
        ...

    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | SentMedia | None:
        """Deliver one reply to `message.chat_id` (quoting `message.message_id` when `reply.quote`).

        Raises ReplyNotSupported for a kind this network cannot send. Returns a SentPack for
        STICKER_PACK replies; may return a SentMedia for a media reply (quotes of it name only its
        id on that network); None otherwise."""
        ...
