"""WhatsApp Web (neonize) mapping, with neonize's own protobuf event objects built locally.

Pairing, receiving from and sending to a real WhatsApp server cannot be tested here (see
docs/chat-networks.md); the transport's calls into the client are checked with a recording client."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from typing import ClassVar

import pytest

pytest.importorskip("neonize")

from neonize.proto.Neonize_pb2 import JID, MessageInfo, MessageSource
from neonize.proto.Neonize_pb2 import Message as MessageEvent
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContextInfo,
    ExtendedTextMessage,
    FutureProofMessage,
    ImageMessage,
    Message,
    StickerMessage,
    VideoMessage,
)

from omnizap.chat.messages import (
    IncomingMessage,
    MediaKind,
    MediaRef,
    MediaUnavailable,
    NativePack,
    PackSticker,
    Reply,
    ReplyKind,
    SentPack,
)
from omnizap.chat.transports.whatsapp_web import WhatsAppWebTransport, map_message_event
from omnizap.core.errors import InvalidInput

ANA = JID(User="5511999999999", Server="s.whatsapp.net", Device=3)
GROUP = JID(User="120363000000000001", Server="g.us")


def event(
    message: Message, *, chat: JID = ANA, is_group: bool = False, from_me: bool = False
) -> MessageEvent:
    return MessageEvent(
        Info=MessageInfo(
            ID="3EB0ABCDEF",
            Pushname="Ana",
            Timestamp=1765000000,
            MessageSource=MessageSource(Chat=chat, Sender=ANA, IsGroup=is_group, IsFromMe=from_me),
        ),
        Message=message,
    )


def image() -> ImageMessage:
    return ImageMessage(
        caption="/s",
        mimetype="image/jpeg",
        fileLength=48_000,
        mediaKey=b"k" * 32,
        directPath="/v/t62/abc",
        JPEGThumbnail=b"thumb" * 100,
    )


def test_image_with_caption_maps_to_the_sticker_command() -> None:
    mapped = map_message_event(event(Message(imageMessage=image())))
    assert mapped is not None
    assert (mapped.network, mapped.chat_id, mapped.sender_id) == (
        "whatsapp_web",
        "5511999999999@s.whatsapp.net",
        "5511999999999@s.whatsapp.net",  # the device suffix is dropped
    )
    assert (mapped.message_id, mapped.text, mapped.sender_name, mapped.timestamp) == (
        "3EB0ABCDEF",
        "/s",
        "Ana",
        1765000000.0,
    )
    assert mapped.media is not None
    assert (mapped.media.kind, mapped.media.mimetype, mapped.media.declared_size) == (
        MediaKind.IMAGE,
        "image/jpeg",
        48_000,
    )
    # The reference is the media message itself, without its thumbnail, and survives the queue.
    referenced = Message.FromString(base64.b64decode(mapped.media.ref))
    assert referenced.imageMessage.directPath == "/v/t62/abc"
    assert referenced.imageMessage.mediaKey == b"k" * 32
    assert not referenced.imageMessage.JPEGThumbnail
    assert IncomingMessage.from_payload(json.loads(json.dumps(mapped.to_payload()))) == mapped


def test_reply_to_a_sticker_in_a_group_carries_the_quoted_sticker() -> None:
    quoted = Message(stickerMessage=StickerMessage(mimetype="image/webp", isAnimated=True, fileLength=90_000))
    text = ExtendedTextMessage(
        text="/pack add meus-memes-k3x9q",
        contextInfo=ContextInfo(
            stanzaID="3EB0QUOTED", participant="5511888888888@s.whatsapp.net", quotedMessage=quoted
        ),
    )
    mapped = map_message_event(event(Message(extendedTextMessage=text), chat=GROUP, is_group=True))
    assert mapped is not None
    assert mapped.is_group and mapped.chat_id == "120363000000000001@g.us"
    assert mapped.media is None
    assert mapped.quoted_message_id == "3EB0QUOTED"
    assert mapped.quoted_media is not None
    assert (mapped.quoted_media.kind, mapped.quoted_media.animated) == (MediaKind.STICKER, True)
    assert mapped.extra["quoted_participant"] == "5511888888888@s.whatsapp.net"


def test_gif_video_and_ephemeral_wrappers() -> None:
    gif = VideoMessage(mimetype="video/mp4", gifPlayback=True, seconds=3, caption="/s")
    wrapped = Message(ephemeralMessage=FutureProofMessage(message=Message(videoMessage=gif)))
    mapped = map_message_event(event(wrapped))
    assert mapped is not None and mapped.media is not None
    assert (mapped.media.kind, mapped.media.seconds, mapped.text) == (MediaKind.VIDEO, 3.0, "/s")


def test_own_messages_and_empty_events_are_ignored() -> None:
    assert map_message_event(event(Message(conversation="/s"), from_me=True)) is None
    assert map_message_event(event(Message())) is None


class RecordingClient:
    """Stands in for neonize's NewClient (which needs a WhatsApp server) and records the calls."""

    def __init__(self, downloads: bytes | None = b"media") -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.downloads = downloads

    def __getattr__(self, name: str):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return self.downloads if name == "download_any" else None

        return record


def incoming() -> IncomingMessage:
    return IncomingMessage(
        "whatsapp_web",
        "120363000000000001@g.us",
        "5511999999999@s.whatsapp.net",
        "3EB0X",
        text="/s",
        is_group=True,
    )


def test_download_hands_the_referenced_media_message_to_the_client() -> None:
    mapped = map_message_event(event(Message(imageMessage=image())))
    assert mapped is not None and mapped.media is not None
    client = RecordingClient(b"jpeg" * 10)
    transport = WhatsAppWebTransport(client)
    assert transport.download(mapped.media, max_bytes=100_000) == b"jpeg" * 10
    [(name, (message,), _)] = client.calls
    assert name == "download_any" and message.imageMessage.directPath == "/v/t62/abc"
    with pytest.raises(InvalidInput, match="limit"):  # declared 48 000 bytes
        transport.download(mapped.media, max_bytes=1000)
    with pytest.raises(InvalidInput, match="limit"):  # what arrived is over the cap
        transport.download(dataclasses.replace(mapped.media, declared_size=None), max_bytes=10)
    with pytest.raises(MediaUnavailable):
        transport.download(MediaRef(MediaKind.IMAGE, "not base64 !!"), max_bytes=1000)


def test_sends_quote_the_message_and_pass_stickers_through() -> None:
    client = RecordingClient()
    transport = WhatsAppWebTransport(client)
    transport.send(incoming(), Reply(ReplyKind.STICKER, data=b"RIFFwebp"))
    transport.send(incoming(), Reply.of_text("ok"))
    pack = NativePack("k-abcde", "Pack", "Ana", (PackSticker(b"RIFF1"), PackSticker(b"RIFF2")))
    assert transport.send(incoming(), Reply(ReplyKind.STICKER_PACK, pack=pack)) == SentPack()
    (sticker_call, text_call, pack_call) = client.calls
    assert sticker_call[0] == "send_sticker" and sticker_call[2]["passthrough"] is True
    to = sticker_call[1][0]
    assert (to.User, to.Server) == ("120363000000000001", "g.us")
    quoted = sticker_call[2]["quoted"]
    assert quoted.Info.ID == "3EB0X" and quoted.Info.MessageSource.Sender.User == "5511999999999"
    assert text_call[0] == "reply_message" and text_call[1][0] == "ok"
    assert pack_call[0] == "send_stickerpack" and pack_call[1][1] == [b"RIFF1", b"RIFF2"]
    assert pack_call[2]["packname"] == "Pack" and pack_call[2]["publisher"] == "Ana"


# --- `omnizap bot whatsapp-web`: its own process answers its messages ---------------------------------
class FakeNeonizeClient:
    """Stands in for neonize's NewClient in the bot command: `connect()` delivers one message event to
    the registered handler, then blocks (as the real one does) until a reply was sent through it."""

    instances: ClassVar[list[FakeNeonizeClient]] = []

    def __init__(self, session_path: str) -> None:
        self.session_path = session_path
        self.handlers: dict[type, object] = {}
        self.calls: list[tuple[str, tuple, dict]] = []
        self.replied = threading.Event()
        FakeNeonizeClient.instances.append(self)

    class _Events:
        def __init__(self, client: FakeNeonizeClient) -> None:
            self.client = client

        def __call__(self, event_type: type):
            def register(handler):
                self.client.handlers[event_type] = handler
                return handler

            return register

        def qr(self, handler) -> None:
            self.client.handlers["qr"] = handler

    @property
    def event(self) -> FakeNeonizeClient._Events:
        return FakeNeonizeClient._Events(self)

    def connect(self) -> None:
        from neonize.events import MessageEv

        self.handlers[MessageEv](self, event(Message(conversation="/menu")))
        assert self.replied.wait(120), "the bot process never answered its own message"

    def __getattr__(self, name: str):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name in {"reply_message", "send_message"}:
                self.replied.set()

        return record


@pytest.mark.engines
def test_the_bot_process_runs_its_own_messages(
    db, db_settings, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import neonize.client
    import sqlalchemy as sa
    from click.testing import CliRunner

    from omnizap.chat.transports import registry
    from omnizap.cli.main import cli
    from omnizap.config import reset_settings_cache
    from omnizap.platform.db.schema import sticker_worker_task_queue as tasks

    monkeypatch.setattr(neonize.client, "NewClient", FakeNeonizeClient)
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(tmp_path / "stickers"))
    monkeypatch.setenv("WHATSAPP_WEB_SESSION_DIR", str(tmp_path / "session"))
    monkeypatch.setenv("CHAT_LOCALE", "en")
    reset_settings_cache()
    try:
        result = CliRunner().invoke(cli, ["bot", "whatsapp-web"])
    finally:
        reset_settings_cache()
        registry.unregister("whatsapp_web")
    assert result.exit_code == 0, result.output
    [client] = FakeNeonizeClient.instances[-1:]
    [(name, args, _kwargs)] = [call for call in client.calls if call[0] in {"reply_message", "send_message"}]
    assert name == "reply_message" and "menu" in args[0].lower()
    with db.read() as connection:
        rows = connection.execute(sa.select(tasks.c.task_type, tasks.c.status)).all()
    assert [tuple(row) for row in rows] == [("chat_message_live:whatsapp_web", "completed")]
