"""The chat bot end to end over real HTTP: a uvicorn server with the webhooks, the real task queue,
the `omnizap worker chat` consumer, and the loopback fakes of the Graph API and the Telegram Bot API,
on every engine."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import sqlalchemy as sa
from chat_support import asset_count, chat_settings
from fakes.graph_api import FakeGraphApi
from fakes.telegram_api import FakeTelegramApi
from media_factory import animated_gif, encode_image, photo_like_image, png_bomb
from PIL import Image

from omnizap import pipeline
from omnizap.chat import store
from omnizap.chat.messages import MediaKind, MediaRef
from omnizap.config import Settings
from omnizap.core.stickers.media import validate_whatsapp_sticker
from omnizap.platform.db import Database
from omnizap.platform.db.schema import chat_message_media, sticker_worker_task_queue
from omnizap.platform.db.types import utcnow
from omnizap.runtime import Runtime

pytestmark = pytest.mark.engines
tasks = sticker_worker_task_queue

PHONE_ID = "109876543210"
GRAPH_TOKEN = "EAAacceptance-token"
APP_SECRET = "app-secret-acceptance"
WA_ID = "5511999990001"
TG_TOKEN = "123456:acceptance-token"
TG_SECRET = "tg-webhook-secret"


# --- the stack -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    runtime: Runtime
    url: str
    graph: FakeGraphApi
    telegram: FakeTelegramApi

    def post_whatsapp(self, payload: dict[str, Any], *, signature: str | None = "valid") -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "valid":
            digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return httpx.post(f"{self.url}/webhooks/whatsapp", content=body, headers=headers, timeout=30)

    def post_telegram(self, payload: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.url}/webhooks/telegram",
            json=payload,
            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
            timeout=30,
        )

    def run_worker(self) -> int:
        """`omnizap worker chat`'s consumer, run until no chat task is due; returns how many ran."""
        worker = pipeline.dedicated_worker(self.runtime, "chat")
        total = 0
        while ran := worker.run_once():
            total += ran
        return total

    def task_rows(self) -> list[dict[str, Any]]:
        with self.runtime.database.read() as connection:
            return [dict(row) for row in connection.execute(sa.select(tasks).order_by(tasks.c.id)).mappings()]

    def graph_texts(self) -> list[str]:
        return [sent["text"]["body"] for sent in self.graph.sent if sent["type"] == "text"]


def stack_settings(db_settings: Settings, graph: FakeGraphApi, telegram: FakeTelegramApi) -> Settings:
    return chat_settings(
        db_settings,
        whatsapp_cloud_phone_number_id=PHONE_ID,
        whatsapp_cloud_token=GRAPH_TOKEN,
        whatsapp_cloud_app_secret=APP_SECRET,
        whatsapp_cloud_verify_token="verify",
        whatsapp_graph_api_base_url=graph.base_url,
        telegram_bot_token=TG_TOKEN,
        telegram_webhook_secret=TG_SECRET,
        telegram_api_base_url=telegram.base_url,
        sticker_worker_pipeline_enabled=False,
        sticker_dedicated_worker_force_enabled=True,
        http_access_log=False,
        feature_flag_cache_ttl_ms=0,
    )


@pytest.fixture
def stack(db: Database, db_settings: Settings) -> Iterator[Stack]:
    import uvicorn

    from omnizap.web.app import create_app

    with (
        FakeGraphApi(token=GRAPH_TOKEN, phone_number_id=PHONE_ID) as graph,
        FakeTelegramApi(token=TG_TOKEN) as telegram,
    ):
        runtime = Runtime(stack_settings(db_settings, graph, telegram))
        runtime.__dict__["database"] = db
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.05)
        try:
            yield Stack(runtime, f"http://127.0.0.1:{port}", graph, telegram)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            graph.release()


# --- WhatsApp Cloud API payloads -----------------------------------------------------------------------
def notification(*messages: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": WA_ID}],
        "messages": list(messages),
    }
    change = {"field": "messages", "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [change]}]}


def media_message(message_id: str, kind: str, media_id: str, caption: str = "", mime: str = "") -> dict:
    body: dict[str, Any] = {"id": media_id, "mime_type": mime or "image/jpeg", "sha256": "x"}
    if caption:
        body["caption"] = caption
    return {"from": WA_ID, "id": message_id, "timestamp": "1765000000", "type": kind, kind: body}


def text_message(message_id: str, text: str, *, quoting: str = "") -> dict[str, Any]:
    message: dict[str, Any] = {
        "from": WA_ID, "id": message_id, "timestamp": "1765000001", "type": "text", "text": {"body": text},
    }  # fmt: skip
    if quoting:
        message["context"] = {"from": "15550001111", "id": quoting}
    return message


def photo(seed: int = 1, size: int = 96) -> bytes:
    return encode_image(photo_like_image(size, size, seed=seed), "JPEG")


def sticker_uploads(graph: FakeGraphApi) -> list[bytes]:
    ids = [sent["sticker"]["id"] for sent in graph.sent if sent["type"] == "sticker"]
    return [graph.media[media_id].data for media_id in ids]


# --- Cloud API ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "garbage"])
def test_cloud_webhook_with_a_wrong_or_missing_signature_does_nothing(stack: Stack, signature: str | None):
    media_id = stack.graph.add_media(photo(), "image/jpeg")
    response = stack.post_whatsapp(
        notification(media_message("wamid.BAD", "image", media_id, "/s")), signature=signature
    )
    assert response.status_code == (401 if signature is None else 403)
    assert stack.task_rows() == []
    assert stack.run_worker() == 0 and stack.graph.sent == []


def test_cloud_sticker_command_is_queued_then_answered_with_a_valid_sticker(stack: Stack):
    media_id = stack.graph.add_media(photo(seed=2, size=300), "image/jpeg")
    started = time.perf_counter()
    response = stack.post_whatsapp(notification(media_message("wamid.S1", "image", media_id, "/s")))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and response.json() == {"accepted": 1, "redelivered": 0}
    # Answered with the work queued, not done: the task row exists and nothing was sent yet.
    [row] = stack.task_rows()
    assert (row["task_type"], row["status"]) == ("chat_message", "pending")
    assert stack.graph.sent == []
    print(f"webhook answered in {elapsed * 1000:.1f} ms")  # measured, not asserted (shared CI cores)
    assert stack.run_worker() == 1
    [sticker] = sticker_uploads(stack.graph)
    info = validate_whatsapp_sticker(sticker)
    with Image.open(io.BytesIO(sticker)) as image:
        assert (image.format, image.size) == ("WEBP", (512, 512))
    assert not info.is_animated
    [sent_sticker] = [sent for sent in stack.graph.sent if sent["type"] == "sticker"]
    assert sent_sticker["to"] == WA_ID and sent_sticker["context"] == {"message_id": "wamid.S1"}
    assert [row["status"] for row in stack.task_rows()] == ["completed"]


def test_cloud_redelivered_message_is_processed_and_answered_once(stack: Stack):
    media_id = stack.graph.add_media(photo(seed=3), "image/jpeg")
    payload = notification(media_message("wamid.R1", "image", media_id, "/s"))
    first = stack.post_whatsapp(payload)
    assert stack.run_worker() == 1
    again = stack.post_whatsapp(payload)  # Meta retries when it missed our 200
    assert first.json() == {"accepted": 1, "redelivered": 0}
    assert again.status_code == 200 and again.json() == {"accepted": 0, "redelivered": 1}
    assert stack.run_worker() == 0
    assert len(sticker_uploads(stack.graph)) == 1
    assert asset_count(stack.runtime.database) == 1


def test_cloud_toimg_replying_to_the_bots_sticker_and_to_a_sent_sticker(stack: Stack):
    from chat_network_support import static_sticker

    from omnizap.core.stickers.convert import sticker_to_png

    def say(message: dict[str, Any]) -> None:
        assert stack.post_whatsapp(notification(message)).status_code == 200
        stack.run_worker()

    def last_image() -> bytes:
        images = [sent for sent in stack.graph.sent if sent["type"] == "image"]
        return stack.graph.media[images[-1]["image"]["id"]].data

    for number, seed in ((1, 4), (2, 5)):
        say(
            media_message(
                f"wamid.Q{number}", "image", stack.graph.add_media(photo(seed=seed), "image/jpeg"), "/s"
            )
        )
    first, second = sticker_uploads(stack.graph)
    assert sticker_to_png(first) != sticker_to_png(second)
    first_message_id = stack.graph.sent_ids[[s["type"] for s in stack.graph.sent].index("sticker")]
    # Meta's webhook names only the quoted message's id; the task finds the media the bot sent with
    # it, not the sender's last sticker (the second one).
    say(text_message("wamid.Q3", "/toimg", quoting=first_message_id))
    assert last_image() == sticker_to_png(first)
    # A sticker the person sends, quoted after they made another one.
    theirs = static_sticker(7)
    say(media_message("wamid.Q4", "sticker", stack.graph.add_media(theirs, "image/webp"), mime="image/webp"))
    say(media_message("wamid.Q5", "image", stack.graph.add_media(photo(seed=6), "image/jpeg"), "/s"))
    say(text_message("wamid.Q6", "/toimg", quoting="wamid.Q4"))
    assert last_image() == sticker_to_png(theirs)
    assert "Send or reply to a sticker" not in "\n".join(stack.graph_texts())


def test_remembered_media_stays_in_its_chat_and_old_rows_are_pruned(db: Database):
    ref = MediaRef(MediaKind.STICKER, ref="media-1", mimetype="image/webp")
    store.remember_message_media(db, "whatsapp_cloud", "chat-a", "wamid.OLD", ref)
    with db.transaction() as connection:
        connection.execute(chat_message_media.update().values(created_at=utcnow() - dt.timedelta(days=8)))
    assert store.message_media(db, "whatsapp_cloud", "chat-a", "wamid.OLD") is None  # too old to quote
    store.remember_message_media(db, "whatsapp_cloud", "chat-a", "wamid.NEW", ref)
    with db.read() as connection:
        kept = connection.execute(sa.select(chat_message_media.c.message_id)).scalars().all()
    assert kept == ["wamid.NEW"]  # the insert pruned the week-old row
    assert store.message_media(db, "whatsapp_cloud", "chat-a", "wamid.NEW") == ref
    assert store.message_media(db, "whatsapp_cloud", "chat-b", "wamid.NEW") is None  # another chat
    assert store.message_media(db, "telegram", "chat-a", "wamid.NEW") is None
    store.remember_message_media(db, "whatsapp_cloud", "chat-a", "x" * 500, ref)  # unkeyable: skipped
    assert store.message_media(db, "whatsapp_cloud", "chat-a", "x" * 500) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pdf-as-image", "is not an image, GIF, video or sticker I can read"),
        ("bomb", "too large once opened"),
        ("huge", "the limit is 1.00 MB"),
    ],
)
def test_cloud_hostile_media_gets_a_clear_reply_and_nothing_is_stored(stack: Stack, name: str, expected: str):
    data = {
        "pdf-as-image": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        "bomb": png_bomb(),
        "huge": b"\xff\xd8\xff\xe0" + b"\x00" * (1024 * 1024 + 1),
    }[name]
    media_id = stack.graph.add_media(data, "image/jpeg")  # the network says it is a JPEG
    stack.post_whatsapp(notification(media_message(f"wamid.H-{name}", "image", media_id, "/s")))
    assert stack.run_worker() == 1
    assert expected in "\n".join(stack.graph_texts())
    assert sticker_uploads(stack.graph) == []
    assert asset_count(stack.runtime.database) == 0
    assert [row["status"] for row in stack.task_rows()] == ["completed"]  # a reply, not a crash


# --- Telegram -----------------------------------------------------------------------------------------
TG_USER = {"id": 42, "is_bot": False, "first_name": "Ana"}
TG_CHAT = {"id": 42, "type": "private", "first_name": "Ana"}


def tg_update(update_id: int, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {"from": TG_USER, "chat": TG_CHAT, "date": 1765000000, **message},
    }


def tg_photo(stack: Stack, update_id: int, seed: int) -> dict[str, Any]:
    stored = stack.telegram.add_file(photo(seed=seed, size=200), "photos/p.jpg")
    size = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "width": 200, "height": 200}
    return tg_update(update_id, {"message_id": update_id, "photo": [size], "caption": "/s"})


def test_telegram_photo_with_s_returns_a_sticker(stack: Stack):
    response = stack.post_telegram(tg_photo(stack, 10, seed=5))
    assert response.status_code == 200
    assert [row["status"] for row in stack.task_rows()] == ["pending"]
    assert stack.run_worker() == 1
    [sticker] = [sent for sent in stack.telegram.sent if sent["method"] == "sendSticker"]
    assert sticker["chat_id"] == 42
    validate_whatsapp_sticker(sticker["file"])  # the stored WhatsApp sticker, which Telegram accepts
    with Image.open(io.BytesIO(sticker["file"])) as image:
        assert image.size == (512, 512)


def test_telegram_pack_send_creates_a_sticker_set_in_telegrams_format(stack: Stack, tmp_path: Path):
    for update_id, seed in ((20, 6), (21, 7), (22, 8)):
        stack.post_telegram(tg_photo(stack, update_id, seed))
    stack.post_telegram(tg_update(23, {"message_id": 23, "text": '/pack create "Gatos"'}))
    stack.run_worker()
    stack.post_telegram(tg_update(24, {"message_id": 24, "text": "/pack list"}))
    stack.run_worker()
    texts = "\n".join(sent["params"].get("text", "") for sent in stack.telegram.sent)
    assert "Pack created" in texts
    keys = re.findall(r"`(gatos-[a-z0-9]{5})`", texts)
    assert keys, texts
    for update_id, seed in ((25, 6), (26, 7)):  # add two of the stickers to the new pack
        stack.post_telegram(tg_photo(stack, update_id, seed))
        stack.run_worker()
        add = f"/pack add {keys[0]}"
        stack.post_telegram(tg_update(update_id + 10, {"message_id": update_id + 10, "text": add}))
        stack.run_worker()
    stored = stack.telegram.add_file(animated_gif(8, (96, 96)), "animations/a.mp4")
    animation = {
        "file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
        "width": 96, "height": 96, "duration": 1,
    }  # fmt: skip
    stack.post_telegram(tg_update(27, {"message_id": 27, "animation": animation, "caption": "/s"}))
    stack.run_worker()
    stack.post_telegram(tg_update(37, {"message_id": 37, "text": f"/pack add {keys[0]}"}))
    stack.run_worker()
    stack.post_telegram(tg_update(40, {"message_id": 40, "text": f"/pack send {keys[0]}"}))
    assert stack.run_worker() == 1
    [state] = stack.telegram.sets.values()
    assert state.owner == 42
    assert sorted(sticker.format for sticker in state.stickers) == ["static", "static", "video"]
    for sticker in state.stickers:
        data = sticker.file.data
        if sticker.format == "static":
            with Image.open(io.BytesIO(data)) as image:
                assert (image.format, image.size) == ("WEBP", (512, 512))
            assert len(data) <= 512 * 1024
        else:  # Telegram has no animated WebP: a VP9 WEBM of at most 3 s and 256 KB, no audio
            assert data[:4] == b"\x1a\x45\xdf\xa3" and len(data) <= 256 * 1024
            with av.open(io.BytesIO(data)) as container:
                assert not container.streams.audio
                stream = container.streams.video[0]
                assert (stream.codec_context.name, stream.width, stream.height) == ("vp9", 512, 512)
            assert sticker.duration_s <= 3.0
    links = "\n".join(sent["params"].get("text", "") for sent in stack.telegram.sent)
    assert "t.me/addstickers/" in links


# --- processes: SIGKILL mid-task, the rate limit across workers ----------------------------------------
def worker_environment(stack: Stack, **extra: str) -> dict[str, str]:
    settings = stack.runtime.settings
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "STICKER_STORAGE_DIR": str(settings.sticker_storage_dir),
        "WHATSAPP_CLOUD_PHONE_NUMBER_ID": PHONE_ID,
        "WHATSAPP_CLOUD_TOKEN": GRAPH_TOKEN,
        "WHATSAPP_CLOUD_APP_SECRET": APP_SECRET,
        "WHATSAPP_CLOUD_VERIFY_TOKEN": "verify",
        "WHATSAPP_GRAPH_API_BASE_URL": stack.graph.base_url,
        "CHAT_LOCALE": "en",
        "STICKER_DEDICATED_WORKER_FORCE_ENABLED": "true",
        "LOG_FORMAT": "text",
        **extra,
    }


def test_worker_killed_mid_task_leaves_the_message_to_be_retried_and_answered_once(stack: Stack):
    stack.graph.hold_downloads = True  # the worker's media download waits here until released
    media_id = stack.graph.add_media(photo(seed=9), "image/jpeg")
    assert (
        stack.post_whatsapp(notification(media_message("wamid.K1", "image", media_id, "/s"))).status_code
        == 200
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "omnizap.cli.main", "worker", "chat"],
        env=worker_environment(stack),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not stack.graph.download_started.wait(0.1):
            assert child.poll() is None, "the worker exited before taking the task"
            assert time.monotonic() < deadline, "the worker never started the task"
        child.send_signal(signal.SIGKILL)  # provably inside the task: its download is in flight
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    [stuck] = stack.task_rows()
    assert (stuck["status"], stuck["attempts"]) == ("processing", 1)
    assert stack.graph.sent == []
    stack.graph.release()
    assert stack.run_worker() == 0  # its lease still runs: nobody takes it twice
    with stack.runtime.database.transaction() as connection:  # the lease runs out (not 15 minutes here)
        connection.execute(tasks.update().values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert stack.run_worker() == 1
    [done] = stack.task_rows()
    assert (done["status"], done["attempts"]) == ("completed", 2)
    assert len(sticker_uploads(stack.graph)) == 1  # one answer
    assert asset_count(stack.runtime.database) == 1


RATE_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from omnizap.chat.messages import IncomingMessage
    from omnizap.chat.tasks import process_message
    from omnizap.config import Settings
    from omnizap.pipeline import base_context
    from omnizap.runtime import Runtime

    name, count, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])

    class Recorder:
        network = "whatsapp_cloud"

        def __init__(self):
            self.texts = []

        def download(self, media, *, max_bytes):
            raise AssertionError("no media")

        def send(self, message, reply):
            self.texts.append(reply.text)

    context = base_context(Runtime(Settings()))
    while not go.exists():  # both processes start their commands together
        time.sleep(0.01)
    for number in range(count):
        recorder = Recorder()
        message = IncomingMessage(
            network="whatsapp_cloud", chat_id="5511999990001", sender_id="5511999990001@s.whatsapp.net",
            message_id=f"{name}-{number}", text="/menu",
        )
        outcome = process_message(context, message, recorder)
        print(json.dumps({"outcome": outcome, "texts": recorder.texts}), flush=True)
    """
)


def test_rate_limit_holds_across_two_worker_processes(stack: Stack, tmp_path: Path):
    budget, per_process = 5, 8
    go = tmp_path / "go"
    environment = worker_environment(
        stack, STICKER_PACK_RATE_MAX_ACTIONS=str(budget), STICKER_PACK_RATE_WINDOW_MS="3600000"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RATE_CHILD, name, str(per_process), str(go)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    go.touch()
    outcomes: list[str] = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-3000:]
        results = [json.loads(line) for line in out.splitlines()]
        assert len(results) == per_process
        outcomes += [result["outcome"] for result in results]
        limited = [result for result in results if result["outcome"] == "rate_limited"]
        assert all("Too many actions" in result["texts"][0] for result in limited)
    assert outcomes.count("menu") == budget  # the budget, whichever process took each slot
    assert outcomes.count("rate_limited") == 2 * per_process - budget


def test_cloud_hostile_text_gets_clear_replies(stack: Stack):
    lines = {
        "wamid.T1": "/pack create " + "a" * 10_000,  # 10,000 characters
        "wamid.T2": "/pegatina",  # a language we don't speak
        "wamid.T3": "/stiker",
        "wamid.T4": "/x\x00\x07\x1b[31m",  # control characters
        "wamid.T5": '/pack create "Flood" ' + "|" * 3000,  # a `|` flood
        "wamid.T6": "|" * 10_000,  # not a command: no answer
    }
    for message_id, text in lines.items():
        assert stack.post_whatsapp(notification(text_message(message_id, text))).status_code == 200
    assert stack.run_worker() == len(lines)
    texts = stack.graph_texts()
    assert any("Message too long: 10013 characters" in text for text in texts)
    assert sum("Unknown command" in text for text in texts) == 3
    assert any("Pack created" in text for text in texts)
    assert not any(char in text for text in texts for char in "\x00\x07\x1b")
    assert len(texts) == 5  # one answer each; the plain `|` text gets none
    assert {row["status"] for row in stack.task_rows()} == {"completed"}
