"""WhatsApp Cloud API transport: webhook (signature, verify, mapping), download and send against a
loopback fake of the Graph API, driven through pywa's real client."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from chat_network_support import static_sticker, webp_size
from fakes.graph_api import FakeGraphApi
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
    ReplyNotSupported,
    SentMedia,
)
from omnizap.chat.transports import whatsapp_cloud
from omnizap.chat.transports.whatsapp_cloud import WhatsAppCloudTransport, build_router, map_update
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput

PHONE_ID = "109876543210"
TOKEN = "EAAtest-token"
SECRET = "app-secret-123"
VERIFY = "verify-me"
PATH = "/webhooks/whatsapp"


def make_settings(base_url: str = "https://graph.facebook.com", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "whatsapp_cloud_phone_number_id": PHONE_ID,
        "whatsapp_cloud_token": TOKEN,
        "whatsapp_cloud_app_secret": SECRET,
        "whatsapp_cloud_verify_token": VERIFY,
        "whatsapp_graph_api_base_url": base_url,
        "http_max_body_bytes": 64 * 1024,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notification(*messages: dict, phone_number_id: str = PHONE_ID, statuses: list | None = None) -> dict:
    value: dict = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511999999999"}],
        "messages": list(messages),
    }
    if statuses is not None:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}],
    }


def image_with_caption(message_id: str = "wamid.IMG1") -> dict:
    return {
        "from": "5511999999999",
        "id": message_id,
        "timestamp": "1765000000",
        "type": "image",
        "image": {"caption": "/s", "mime_type": "image/jpeg", "sha256": "abc", "id": "media-42"},
    }


class Captured:
    def __init__(self, answer: bool = True) -> None:
        self.messages: list[IncomingMessage] = []
        self.answer = answer

    def __call__(self, message: IncomingMessage) -> bool:
        self.messages.append(message)
        return self.answer


@pytest.fixture
def captured() -> Captured:
    return Captured()


@pytest.fixture
def client(captured: Captured) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(build_router(make_settings(), captured))
    with TestClient(app) as test_client:
        yield test_client


def post(client: TestClient, payload: object, signature: str | None = "auto", raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Hub-Signature-256"] = sign(body)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post(PATH, content=body, headers=headers)


# --- webhook security -----------------------------------------------------------------------------


def test_missing_signature_is_401_and_nothing_is_accepted(client: TestClient, captured: Captured) -> None:
    response = post(client, notification(image_with_caption()), signature=None)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]["message"]
    assert captured.messages == []


def test_wrong_signature_is_403_and_nothing_is_accepted(client: TestClient, captured: Captured) -> None:
    body = json.dumps(notification(image_with_caption())).encode()
    for signature in (sign(body, "other-secret"), "sha256=00", "garbage", sign(body + b" ")):
        response = post(client, None, signature=signature, raw=body)
        assert response.status_code == 403, signature
    assert captured.messages == []


def test_verify_handshake_answers_the_challenge_only_with_the_right_token(client: TestClient) -> None:
    ok = client.get(
        PATH, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    )
    assert ok.status_code == 200
    assert ok.text == "1158201444"
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"},
        {"hub.challenge": "1158201444"},
    ):
        refused = client.get(PATH, params=params)
        assert refused.status_code == 403
        assert "1158201444" not in refused.text


# --- webhook mapping ------------------------------------------------------------------------------


def test_image_with_caption_is_accepted_as_the_sticker_command(
    client: TestClient, captured: Captured
) -> None:
    response = post(client, notification(image_with_caption()))
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "redelivered": 0}
    assert captured.messages == [
        IncomingMessage(
            network="whatsapp_cloud",
            chat_id="5511999999999",
            sender_id="5511999999999@s.whatsapp.net",
            message_id="wamid.IMG1",
            text="/s",
            sender_name="Ana",
            media=MediaRef(kind=MediaKind.IMAGE, ref="media-42", mimetype="image/jpeg"),
            timestamp=1765000000.0,
            extra={"wa_id": "5511999999999"},
        )
    ]
    # The payload survives the queue's JSON round trip.
    message = captured.messages[0]
    assert IncomingMessage.from_payload(json.loads(json.dumps(message.to_payload()))) == message


def test_text_quoting_a_sticker_carries_the_quoted_message_id(client: TestClient, captured: Captured) -> None:
    reply = {
        "from": "5511999999999",
        "id": "wamid.TXT2",
        "timestamp": "1765000001",
        "type": "text",
        "text": {"body": "/pack add meus-memes-k3x9q"},
        "context": {"from": "15550001111", "id": "wamid.STICKER1"},
    }
    sticker = {
        "from": "5511999999999",
        "id": "wamid.STK3",
        "timestamp": "1765000002",
        "type": "sticker",
        "sticker": {"mime_type": "image/webp", "sha256": "x", "id": "media-7", "animated": True},
    }
    assert post(client, notification(reply, sticker)).status_code == 200
    text, sticker_message = captured.messages
    assert text.text == "/pack add meus-memes-k3x9q"
    assert text.quoted_message_id == "wamid.STICKER1"
    assert text.media is None and text.quoted_media is None  # the webhook never carries quoted media
    assert sticker_message.media == MediaRef(
        kind=MediaKind.STICKER, ref="media-7", mimetype="image/webp", animated=True
    )


def test_video_document_and_voice_map_to_their_kinds() -> None:
    messages = [
        {
            "from": "1",
            "id": "a",
            "type": "video",
            "video": {"id": "v1", "mime_type": "video/mp4", "caption": "/s"},
        },
        {"from": "1", "id": "b", "type": "document", "document": {"id": "d1", "filename": "x.pdf"}},
        {"from": "1", "id": "c", "type": "audio", "audio": {"id": "o1", "voice": True}},
    ]
    mapped = map_update(notification(*messages), phone_number_id=PHONE_ID)
    assert [m.media.kind for m in mapped if m.media] == [MediaKind.VIDEO, MediaKind.DOCUMENT, MediaKind.VOICE]
    assert mapped[1].media is not None and mapped[1].media.filename == "x.pdf"


def test_statuses_unknown_types_and_other_numbers_are_ignored(client: TestClient, captured: Captured) -> None:
    reaction = {"from": "1", "id": "r", "type": "reaction", "reaction": {"message_id": "m", "emoji": "👍"}}
    unknown = {"from": "1", "id": "u", "type": "unsupported", "errors": [{"code": 131051}]}
    statuses = [{"id": "wamid.X", "status": "delivered", "timestamp": "1", "recipient_id": "1"}]
    assert post(client, notification(reaction, unknown, statuses=statuses)).json() == {
        "accepted": 0,
        "redelivered": 0,
    }
    assert post(client, notification(image_with_caption(), phone_number_id="999")).status_code == 200
    assert captured.messages == []


def test_redelivery_is_answered_200(captured: Captured) -> None:
    app = FastAPI()
    app.include_router(build_router(make_settings(), Captured(answer=False)))
    with TestClient(app) as test_client:
        response = post(test_client, notification(image_with_caption()))
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "redelivered": 1}


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'{"object": "page", "entry": []}', b'"text"', "\u00ff".encode("latin-1")],
)
def test_malformed_bodies_are_400_with_a_reason(client: TestClient, captured: Captured, raw: bytes) -> None:
    response = post(client, None, raw=raw)
    assert response.status_code == 400
    assert "not a WhatsApp notification" in response.json()["error"]["message"]
    assert captured.messages == []


def test_odd_shapes_inside_a_valid_notification_do_not_crash(client: TestClient, captured: Captured) -> None:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            "x",
            {"changes": "y"},
            {"changes": [{"field": "messages", "value": {"metadata": [], "messages": {}}}]},
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": PHONE_ID},
                            "messages": [{"type": "image", "image": "z"}, 5],
                        },
                    }
                ]
            },
        ],
    }
    assert post(client, payload).status_code == 200
    assert captured.messages == []


def test_huge_body_is_413_before_any_work(client: TestClient, captured: Captured) -> None:
    body = json.dumps(notification(image_with_caption())).encode() + b" " * (70 * 1024)
    response = post(client, None, raw=body)
    assert response.status_code == 413
    assert captured.messages == []


def test_router_is_configured_only_with_every_setting() -> None:
    assert whatsapp_cloud.is_configured(make_settings())
    assert not whatsapp_cloud.is_configured(make_settings(whatsapp_cloud_app_secret=""))


# --- download and send against the fake Graph API ---------------------------------------------------


@pytest.fixture
def graph() -> Iterator[FakeGraphApi]:
    with FakeGraphApi(token=TOKEN, phone_number_id=PHONE_ID) as server:
        yield server


@pytest.fixture
def transport(graph: FakeGraphApi) -> WhatsAppCloudTransport:
    return WhatsAppCloudTransport(make_settings(graph.base_url), sleep=lambda _seconds: None)


def incoming(message_id: str = "wamid.IN1") -> IncomingMessage:
    return IncomingMessage(
        network="whatsapp_cloud",
        chat_id="5511999999999",
        sender_id="5511999999999@s.whatsapp.net",
        message_id=message_id,
        text="/s",
    )


def test_sticker_reply_reaches_the_graph_api_as_an_uploaded_webp(
    graph: FakeGraphApi, transport: WhatsAppCloudTransport
) -> None:
    sticker = static_sticker()
    sent_media = transport.send(incoming(), Reply(ReplyKind.STICKER, data=sticker, mimetype="image/webp"))
    [upload] = graph.uploads
    # The new message's id and its media, so a later quote of the bot's sticker finds the media.
    assert sent_media == SentMedia(
        message_id="wamid.fake1001", media=MediaRef(MediaKind.STICKER, ref=upload.id, mimetype="image/webp")
    )
    assert upload.mime_type == "image/webp"
    assert webp_size(upload.data) == (512, 512)
    [sent] = graph.sent
    assert sent["messaging_product"] == "whatsapp"
    assert sent["to"] == "5511999999999"
    assert sent["type"] == "sticker"
    assert sent["sticker"] == {"id": upload.id}
    assert sent["context"] == {"message_id": "wamid.IN1"}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in graph.requests)
    assert all(r.path.startswith(("/v", "/download")) for r in graph.requests)


def test_text_image_video_and_document_replies(
    graph: FakeGraphApi, transport: WhatsAppCloudTransport
) -> None:
    transport.send(incoming(), Reply.of_text("✅ done", quote=False))
    transport.send(incoming(), Reply(ReplyKind.IMAGE, text="🖼️", data=b"\x89PNG fake", mimetype="image/png"))
    transport.send(incoming(), Reply(ReplyKind.VIDEO, data=b"mp4 bytes", mimetype="video/mp4"))
    transport.send(
        incoming(),
        Reply(ReplyKind.DOCUMENT, text="📦", data=b"RIFF", mimetype="image/webp", filename="sticker_1.webp"),
    )
    text, image, video, document = graph.sent
    assert text["type"] == "text" and text["text"]["body"] == "✅ done" and "context" not in text
    assert image["type"] == "image" and image["image"]["caption"] == "🖼️"
    assert video["type"] == "video"
    assert document["document"]["filename"] == "sticker_1.webp"
    assert [u.mime_type for u in graph.uploads] == ["image/png", "video/mp4", "image/webp"]


def test_native_pack_is_not_supported(transport: WhatsAppCloudTransport, graph: FakeGraphApi) -> None:
    pack = NativePack("k-abcde", "Pack", "Me", (PackSticker(static_sticker()),))
    with pytest.raises(ReplyNotSupported):
        transport.send(incoming(), Reply(ReplyKind.STICKER_PACK, pack=pack))
    assert graph.sent == []


def test_download_fetches_the_url_then_the_bytes_with_the_token(
    graph: FakeGraphApi, transport: WhatsAppCloudTransport
) -> None:
    media_id = graph.add_media(b"jpeg-bytes" * 10, "image/jpeg")
    data = transport.download(MediaRef(MediaKind.IMAGE, media_id), max_bytes=1024)
    assert data == b"jpeg-bytes" * 10
    paths = [r.path for r in graph.requests]
    assert paths[-1] == f"/download/{media_id}"
    assert paths[-2].endswith(f"/{media_id}")


def test_download_retries_transient_failures(graph: FakeGraphApi, transport: WhatsAppCloudTransport) -> None:
    media_id = graph.add_media(b"x" * 100, "image/jpeg")
    graph.fail_next = {"lookup": [500], "download": [503, 429]}
    assert transport.download(MediaRef(MediaKind.IMAGE, media_id), max_bytes=1024) == b"x" * 100


def test_download_gives_up_with_media_unavailable(
    graph: FakeGraphApi, transport: WhatsAppCloudTransport
) -> None:
    with pytest.raises(MediaUnavailable):
        transport.download(MediaRef(MediaKind.IMAGE, "no-such-media"), max_bytes=1024)
    media_id = graph.add_media(b"x", "image/jpeg")
    graph.fail_next = {"download": [500, 500, 500]}
    with pytest.raises(MediaUnavailable, match="3 tries"):
        transport.download(MediaRef(MediaKind.IMAGE, media_id), max_bytes=1024)


def test_download_refuses_media_over_the_cap(graph: FakeGraphApi, transport: WhatsAppCloudTransport) -> None:
    media_id = graph.add_media(b"y" * 5000, "video/mp4")
    with pytest.raises(InvalidInput, match="limit"):
        transport.download(MediaRef(MediaKind.VIDEO, media_id), max_bytes=1000)
    with pytest.raises(InvalidInput):
        transport.download(MediaRef(MediaKind.VIDEO, media_id, declared_size=10**9), max_bytes=1000)


def test_wrong_token_is_reported_not_retried(graph: FakeGraphApi) -> None:
    transport = WhatsAppCloudTransport(
        make_settings(graph.base_url, whatsapp_cloud_token="wrong"), sleep=lambda _s: None
    )
    media_id = graph.add_media(b"x", "image/jpeg")
    with pytest.raises(MediaUnavailable, match="401"):
        transport.download(MediaRef(MediaKind.IMAGE, media_id), max_bytes=1024)
    assert len(graph.requests) == 1
