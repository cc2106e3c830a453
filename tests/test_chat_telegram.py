"""Telegram transport: Update mapping, the webhook's secret header, download, sends, long polling,
and `/pack send` as a real sticker set, against a loopback fake of the Bot API."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import av
import pytest
import sqlalchemy as sa
from chat_network_support import animated_sticker, static_sticker, webp_size
from fakes.telegram_api import FakeTelegramApi
from fastapi import FastAPI
from fastapi.testclient import TestClient

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
from omnizap.chat.transports import telegram
from omnizap.chat.transports.telegram import (
    TelegramTransport,
    build_router,
    make_bot,
    map_update,
    parse_update,
)
from omnizap.chat.transports.telegram_sets import StickerSetRepository, set_name_for
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput
from omnizap.platform.db.schema import chat_telegram_sticker_set

TOKEN = "123456:ABC-test"
SECRET = "webhook-secret-xyz"
PATH = "/webhooks/telegram"
USER = {"id": 42, "is_bot": False, "first_name": "Ana", "last_name": "Silva", "username": "ana"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Ana"}


def make_settings(base_url: str = "https://api.telegram.org", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "telegram_bot_token": TOKEN,
        "telegram_webhook_secret": SECRET,
        "telegram_api_base_url": base_url,
        "http_max_body_bytes": 64 * 1024,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def update(message: dict, update_id: int = 1000) -> dict:
    return {"update_id": update_id, "message": message}


def photo_message(message_id: int = 7, caption: str = "/s") -> dict:
    return {
        "message_id": message_id,
        "from": USER,
        "chat": PRIVATE,
        "date": 1765000000,
        "photo": [
            {"file_id": "small", "file_unique_id": "s1", "width": 90, "height": 60, "file_size": 900},
            {"file_id": "large", "file_unique_id": "l1", "width": 1280, "height": 853, "file_size": 90000},
        ],
        "caption": caption,
    }


# --- mapping --------------------------------------------------------------------------------------


def test_photo_with_caption_maps_to_the_sticker_command() -> None:
    message = map_update(parse_update(update(photo_message())))
    assert message == IncomingMessage(
        network="telegram",
        chat_id="42",
        sender_id="42@telegram",
        message_id="42:7",
        text="/s",
        sender_name="Ana Silva",
        media=MediaRef(MediaKind.IMAGE, "large", "image/jpeg", 90000),
        timestamp=1765000000.0,
        extra={"telegram_message_id": "7", "chat_type": "private"},
    )
    assert IncomingMessage.from_payload(json.loads(json.dumps(message.to_payload()))) == message


def test_reply_to_a_sticker_in_a_group_carries_the_quoted_media() -> None:
    group = {"id": -100123, "type": "supergroup", "title": "Memes"}
    quoted = {
        "message_id": 5,
        "from": {"id": 9, "is_bot": False, "first_name": "Bia"},
        "chat": group,
        "date": 1765000000,
        "sticker": {
            "file_id": "stk",
            "file_unique_id": "u",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": True,
            "file_size": 3000,
        },
    }
    text = {"message_id": 6, "from": USER, "chat": group, "date": 1765000001, "text": "/pack add memes"}
    text["reply_to_message"] = quoted
    message = map_update(parse_update(update(text)))
    assert message is not None
    assert message.is_group and message.chat_id == "-100123"
    assert message.media is None
    assert message.quoted_message_id == "-100123:5"
    assert message.quoted_media == MediaRef(MediaKind.STICKER, "stk", "video/webm", 3000, animated=True)


def test_animation_video_and_document_map_to_their_kinds() -> None:
    base = {"from": USER, "chat": PRIVATE, "date": 1765000000}
    animation = {
        "file_id": "gif",
        "file_unique_id": "g",
        "width": 320,
        "height": 240,
        "duration": 2,
        "mime_type": "video/mp4",
    }
    video = {"file_id": "vid", "file_unique_id": "v", "width": 320, "height": 240, "duration": 4}
    document = {"file_id": "doc", "file_unique_id": "d", "file_name": "a.png", "mime_type": "image/png"}
    kinds = []
    for number, extra in enumerate(
        ({"animation": animation, "document": document}, {"video": video}, {"document": document}), start=1
    ):
        mapped = map_update(parse_update(update({"message_id": number, **base, **extra})))
        assert mapped is not None and mapped.media is not None
        kinds.append((mapped.media.kind, mapped.media.ref, mapped.media.seconds))
    assert kinds == [
        (MediaKind.VIDEO, "gif", 2.0),
        (MediaKind.VIDEO, "vid", 4.0),
        (MediaKind.DOCUMENT, "doc", None),
    ]


def test_other_updates_and_bots_are_ignored() -> None:
    edited = {"update_id": 1, "edited_message": photo_message()}
    poll = {
        "update_id": 2,
        "poll": {
            "id": "p",
            "question": "?",
            "options": [],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        },
    }
    from_bot = update({**photo_message(), "from": {"id": 5, "is_bot": True, "first_name": "B"}})
    for payload in (edited, poll, {"update_id": 3}):
        assert parse_update(payload) is None
    assert map_update(parse_update(from_bot)) is None


# --- webhook --------------------------------------------------------------------------------------


class Captured(list):
    def __call__(self, message: IncomingMessage) -> bool:
        self.append(message)
        return True


@pytest.fixture
def captured() -> Captured:
    return Captured()


@pytest.fixture
def client(captured: Captured) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(build_router(make_settings(), captured))
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, body: bytes, secret: str | None = SECRET):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return client.post(PATH, content=body, headers=headers)


def test_webhook_accepts_an_update_with_the_secret(client: TestClient, captured: Captured) -> None:
    response = post(client, json.dumps(update(photo_message())).encode())
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "redelivered": 0}
    assert [m.message_id for m in captured] == ["42:7"]


def test_webhook_refuses_a_missing_or_wrong_secret(client: TestClient, captured: Captured) -> None:
    body = json.dumps(update(photo_message())).encode()
    assert post(client, body, secret=None).status_code == 401
    for wrong in ("", "webhook-secret", SECRET + "x"):
        response = post(client, body, secret=wrong)
        assert response.status_code == 403
        assert SECRET not in response.text
    assert captured == []


@pytest.mark.parametrize(
    "body",
    [
        b"{oops",
        b"[1]",
        b'{"message": {}}',
        b'{"update_id": "1"}',
        b'{"update_id": 1, "message": "x"}',
        b'{"update_id": 1, "message": {"text": "no chat"}}',
    ],
)
def test_webhook_malformed_bodies_are_400(client: TestClient, captured: Captured, body: bytes) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert "not a Telegram update" in response.json()["error"]["message"]
    assert captured == []


def test_webhook_unknown_updates_are_answered_and_ignored(client: TestClient, captured: Captured) -> None:
    body = json.dumps({"update_id": 9, "my_new_kind_of_update": {"x": 1}}).encode()
    assert post(client, body).json() == {"accepted": 0, "redelivered": 0}
    assert captured == []


def test_webhook_huge_body_is_413(client: TestClient, captured: Captured) -> None:
    body = json.dumps(update(photo_message(caption="x" * 70_000))).encode()
    assert post(client, body).status_code == 413
    assert captured == []


def test_webhook_needs_a_secret_to_be_mounted() -> None:
    assert telegram.webhook_configured(make_settings())
    assert not telegram.webhook_configured(make_settings(telegram_webhook_secret=""))


# --- Bot API: download, send, polling ---------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi(token=TOKEN) as server:
        yield server


@pytest.fixture
def transport(api: FakeTelegramApi) -> TelegramTransport:
    return TelegramTransport(make_settings(api.base_url), sleep=lambda _s: None)


def incoming(chat_id: str = "42", telegram_message_id: str = "7") -> IncomingMessage:
    return IncomingMessage(
        network="telegram",
        chat_id=chat_id,
        sender_id="42@telegram",
        message_id=f"{chat_id}:{telegram_message_id}",
        extra={"telegram_message_id": telegram_message_id},
    )


def test_download_uses_get_file_then_the_file_url(api: FakeTelegramApi, transport: TelegramTransport) -> None:
    stored = api.add_file(b"jpeg" * 100)
    assert transport.download(MediaRef(MediaKind.IMAGE, stored.file_id), max_bytes=10_000) == b"jpeg" * 100
    assert api.requests[-1].path.endswith(stored.path)


def test_download_refuses_files_over_the_cap(api: FakeTelegramApi, transport: TelegramTransport) -> None:
    stored = api.add_file(b"v" * 5000)
    with pytest.raises(InvalidInput):
        transport.download(MediaRef(MediaKind.VIDEO, stored.file_id), max_bytes=1000)
    with pytest.raises(MediaUnavailable):
        transport.download(MediaRef(MediaKind.VIDEO, "nope"), max_bytes=1000)


def test_download_error_never_shows_the_token(api: FakeTelegramApi) -> None:
    broken = TelegramTransport(
        make_settings(api.base_url, telegram_bot_token="999:wrong"), sleep=lambda _s: None
    )
    with pytest.raises(MediaUnavailable) as caught:
        broken.download(MediaRef(MediaKind.IMAGE, "x"), max_bytes=1000)
    assert "999:wrong" not in str(caught.value)


def test_sticker_reply_reaches_the_bot_api(api: FakeTelegramApi, transport: TelegramTransport) -> None:
    sticker = static_sticker()
    assert transport.send(incoming(), Reply(ReplyKind.STICKER, data=sticker, mimetype="image/webp")) is None
    [sent] = api.sent
    assert sent["method"] == "sendSticker" and sent["chat_id"] == 42
    assert webp_size(sent["file"]) == (512, 512)
    assert json.loads(sent["params"]["reply_parameters"])["message_id"] == 7


def test_animated_sticker_reply_goes_as_a_video_sticker(
    api: FakeTelegramApi, transport: TelegramTransport
) -> None:
    transport.send(
        incoming(), Reply(ReplyKind.STICKER, data=animated_sticker(20, 100), mimetype="image/webp")
    )
    [sent] = api.sent
    assert sent["method"] == "sendSticker" and sent["filename"] == "sticker.webm"
    assert sent["file"][:4] == b"\x1a\x45\xdf\xa3" and len(sent["file"]) <= 256 * 1024


def test_text_photo_video_and_document_replies(api: FakeTelegramApi, transport: TelegramTransport) -> None:
    transport.send(incoming(), Reply.of_text("✅ ok", quote=False))
    transport.send(incoming(), Reply(ReplyKind.IMAGE, text="🖼️", data=b"\x89PNG", mimetype="image/png"))
    transport.send(incoming(), Reply(ReplyKind.VIDEO, data=b"mp4", mimetype="video/mp4"))
    transport.send(incoming(), Reply(ReplyKind.DOCUMENT, data=b"RIFF", filename="sticker_1.webp"))
    methods = [(s["method"], s.get("filename")) for s in api.sent]
    assert methods == [
        ("sendMessage", None),
        ("sendPhoto", "image.png"),
        ("sendVideo", "video.mp4"),
        ("sendDocument", "sticker_1.webp"),
    ]
    assert "reply_parameters" not in api.sent[0]["params"]
    assert api.sent[1]["params"]["caption"] == "🖼️"


def test_polling_hands_each_message_to_accept_and_moves_the_offset(api: FakeTelegramApi) -> None:
    api.updates = [
        update(photo_message(1), 500),
        {"update_id": 501, "edited_message": photo_message(2)},
        update(photo_message(3), 502),
    ]
    captured = Captured()

    async def run() -> tuple[int, int]:
        async with make_bot(make_settings(api.base_url)) as bot:
            first = await telegram.poll_once(bot, captured, offset=0, timeout=0)
            second = await telegram.poll_once(bot, captured, offset=first, timeout=0)
            return first, second

    assert asyncio.run(run()) == (503, 503)
    assert [m.message_id for m in captured] == ["42:1", "42:3"]
    assert api.updates == []  # the second call confirmed the first batch


# --- /pack send as a Telegram sticker set -------------------------------------------------------------


def test_set_names_follow_telegrams_rules() -> None:
    assert set_name_for("meus-memes-k3x9q", "omnizap_bot") == "meus_memes_k3x9q_by_omnizap_bot"
    assert set_name_for("123-abcde", "omnizap_bot") == "p_123_abcde_by_omnizap_bot"
    assert set_name_for("ção--x__y-abcde", "b") == "cao_x_y_abcde_by_b"
    long = set_name_for("a" * 32 + "-abcde", "a_very_long_bot_name_for_testing_bot")
    assert len(long) <= 64 and long.endswith("_by_a_very_long_bot_name_for_testing_bot") and "__" not in long


def native_pack(stickers: tuple[PackSticker, ...], version: int = 1, name: str = "Meus memes") -> NativePack:
    return NativePack("meus-memes-k3x9q", name, "Ana", stickers, version=version, pack_id="pack-uuid-1")


@pytest.fixture(scope="module")
def pack_stickers() -> tuple[PackSticker, ...]:
    return (
        PackSticker(static_sticker(3), emojis=("😂",)),
        PackSticker(animated_sticker(45, 100), emojis=("🔥", "💯"), animated=True),
        PackSticker(static_sticker(4)),
        PackSticker(static_sticker(5), emojis=("🙂",)),
    )


@pytest.mark.engines
def test_pack_send_creates_a_sticker_set_with_every_sticker_in_telegram_format(
    api: FakeTelegramApi, db, db_settings: Settings, pack_stickers: tuple[PackSticker, ...]
) -> None:
    settings = db_settings.model_copy(
        update={"telegram_bot_token": TOKEN, "telegram_api_base_url": api.base_url}
    )
    transport = TelegramTransport(settings, database=db)
    result = transport.send(incoming(), Reply(ReplyKind.STICKER_PACK, pack=native_pack(pack_stickers)))
    name = "meus_memes_k3x9q_by_omnizap_test_bot"
    assert result == SentPack(link=f"https://t.me/addstickers/{name}", set_name=name)
    state = api.sets[name]
    assert state.owner == 42 and state.title == "Meus memes"
    assert [s.format for s in state.stickers] == ["static", "video", "static", "static"]
    assert [s.emojis for s in state.stickers] == [["😂"], ["🔥", "💯"], ["🙂"], ["🙂"]]
    for sticker in state.stickers:
        if sticker.format == "static":
            assert webp_size(sticker.file.data) == (512, 512) and len(sticker.file.data) <= 512 * 1024
        else:
            data = sticker.file.data
            assert len(data) <= 256 * 1024 and data[:4] == b"\x1a\x45\xdf\xa3"  # EBML (WEBM)
            with av.open(io.BytesIO(data)) as container:
                assert not container.streams.audio
                stream = container.streams.video[0]
                assert (stream.codec_context.name, stream.width, stream.height) == ("vp9", 512, 512)
            assert sticker.duration_s <= 3.0
    with db.read() as connection:
        row = connection.execute(sa.select(chat_telegram_sticker_set)).mappings().one()
    assert (row["pack_key"], row["pack_id"], row["set_name"]) == ("meus-memes-k3x9q", "pack-uuid-1", name)
    assert (row["owner_user_id"], row["synced_version"]) == (42, 1)


@pytest.mark.engines
def test_a_changed_pack_updates_the_set_in_place(
    api: FakeTelegramApi, db, db_settings: Settings, pack_stickers: tuple[PackSticker, ...]
) -> None:
    settings = db_settings.model_copy(
        update={"telegram_bot_token": TOKEN, "telegram_api_base_url": api.base_url}
    )
    transport = TelegramTransport(settings, database=db)
    a, b, c, d = pack_stickers
    transport.send(incoming(), Reply(ReplyKind.STICKER_PACK, pack=native_pack((a, c, d))))
    name = "meus_memes_k3x9q_by_omnizap_test_bot"
    original = {s.file.data: s.file.file_unique_id for s in api.sets[name].stickers}
    api.calls.clear()
    # d removed, b added, order changed, renamed; sent by someone else (the owner stays the creator).
    other = IncomingMessage("telegram", "77", "77@telegram", "77:1", extra={"telegram_message_id": "1"})
    transport.send(other, Reply(ReplyKind.STICKER_PACK, pack=native_pack((c, b, a), version=4, name="Memes")))
    state = api.sets[name]
    assert state.title == "Memes"
    assert [s.format for s in state.stickers] == ["static", "video", "static"]
    assert state.stickers[0].file.file_unique_id == original[state.stickers[0].file.data]
    assert state.stickers[2].file.file_unique_id == original[state.stickers[2].file.data]
    assert api.calls.count("addStickerToSet") == 1  # only b was uploaded
    assert api.calls.count("deleteStickerFromSet") == 1  # only d went away
    assert "createNewStickerSet" not in api.calls
    record = StickerSetRepository(db).get("meus-memes-k3x9q")
    assert record is not None and record.synced_version == 4 and record.owner_user_id == 42
    assert [e.file_unique_id for e in record.entries] == [s.file.file_unique_id for s in state.stickers]


def test_a_webhook_secret_telegram_would_refuse_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="telegram_webhook_secret"):
        make_settings(telegram_webhook_secret="has spaces!")
    with pytest.raises(ValueError, match="telegram_webhook_secret"):
        make_settings(telegram_webhook_secret="x" * 257)
