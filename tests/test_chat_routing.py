"""Which process runs which chat message: `chat_message` for networks built from Settings (serve's
inline poller or `omnizap worker chat`, never both), `chat_message_live:<network>` only in the process
that holds the network's live session (`omnizap bot whatsapp-web`, a console)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from chat_support import chat_settings

from omnizap import pipeline
from omnizap.chat.inbox import CHAT_MESSAGE, accept, task_type_for
from omnizap.chat.messages import IncomingMessage, MediaRef, Reply, SentPack
from omnizap.chat.tasks import TASK_HANDLERS, live_task_handlers
from omnizap.chat.transports import registry
from omnizap.cli.bot_whatsapp_web import start_live_worker
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_worker_task_queue
from omnizap.runtime import Runtime

tasks = sticker_worker_task_queue
LIVE_WEB = "chat_message_live:whatsapp_web"


class RecordingTransport:
    network = "whatsapp_web"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply]] = []
        self.done = threading.Event()

    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        raise AssertionError("no media in these messages")

    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | None:
        self.sent.append((message.message_id, reply))
        self.done.set()
        return None


def message(network: str, message_id: str, text: str = "/menu") -> IncomingMessage:
    return IncomingMessage(
        network=network, chat_id="5511999990001", sender_id="5511999990001@s.whatsapp.net",
        message_id=message_id, text=text,
    )  # fmt: skip


def task_rows(db: Database) -> dict[str, dict[str, Any]]:
    with db.read() as connection:
        found = connection.execute(sa.select(tasks).order_by(tasks.c.id)).mappings()
        return {row["idempotency_key"]: dict(row) for row in found}


@pytest.fixture
def runtime(db: Database, db_settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(chat_settings(db_settings, feature_flag_cache_ttl_ms=0))
    runtime.__dict__["database"] = db
    yield runtime


@pytest.fixture
def live_transport() -> Iterator[RecordingTransport]:
    transport = RecordingTransport()
    registry.register("whatsapp_web", lambda _settings: transport)
    yield transport
    registry.unregister("whatsapp_web")


def test_task_type_per_network() -> None:
    assert task_type_for("whatsapp_cloud") == CHAT_MESSAGE
    assert task_type_for("telegram") == CHAT_MESSAGE
    assert task_type_for("whatsapp_web") == LIVE_WEB
    assert task_type_for("console") == "chat_message_live:console"
    assert set(TASK_HANDLERS) == {CHAT_MESSAGE}  # what the pipeline knows: never a live type
    assert set(live_task_handlers("whatsapp_web")) == {LIVE_WEB}
    with pytest.raises(ValueError, match="not a live network"):
        live_task_handlers("telegram")


@pytest.mark.engines
def test_accept_enqueues_each_network_under_its_type(db: Database) -> None:
    for network in ("whatsapp_cloud", "telegram", "whatsapp_web"):
        assert accept(db, message(network, f"{network}-1"))
    found = {key: row["task_type"] for key, row in task_rows(db).items()}
    assert found == {
        "chat:whatsapp_cloud:whatsapp_cloud-1": CHAT_MESSAGE,
        "chat:telegram:telegram-1": CHAT_MESSAGE,
        "chat:whatsapp_web:whatsapp_web-1": LIVE_WEB,
    }


@pytest.mark.engines
def test_serve_pollers_and_the_chat_worker_never_take_a_live_task(
    runtime: Runtime, live_transport: RecordingTransport
) -> None:
    accept(runtime.database, message("whatsapp_web", "web-1"))
    handlers = pipeline.task_handlers(runtime.settings)
    inline = pipeline.inline_workers(runtime, handlers=handlers)
    chat_worker = pipeline.dedicated_worker(runtime, "chat", handlers=handlers)
    assert pipeline.WORKER_TASK_TYPES["chat"] == (CHAT_MESSAGE,)
    every_kind = {kind for worker in [*inline, chat_worker] for kind in worker.options.kinds}
    assert CHAT_MESSAGE in every_kind
    assert not [kind for kind in every_kind if kind.startswith("chat_message_live")]
    for worker in inline:
        worker.run_once()
    runtime.flags.set_flag(
        "enable_worker_dedicated_processes", enabled=True, rollout_percent=100, updated_by="test"
    )
    chat_worker.run_once()
    assert task_rows(runtime.database)["chat:whatsapp_web:web-1"]["status"] == "pending"
    assert live_transport.sent == []
    # The bot process's worker runs it, through the live transport it registered.
    assert pipeline.live_chat_worker(runtime, "whatsapp_web").run_once() == 1
    assert task_rows(runtime.database)["chat:whatsapp_web:web-1"]["status"] == "completed"
    assert [message_id for message_id, _reply in live_transport.sent] == ["web-1"]


@pytest.mark.engines
def test_the_live_worker_takes_only_its_own_network(
    runtime: Runtime, live_transport: RecordingTransport
) -> None:
    accept(runtime.database, message("whatsapp_cloud", "cloud-1"))
    accept(runtime.database, message("console", "console-1"))
    assert pipeline.live_chat_worker(runtime, "whatsapp_web").run_once() == 0
    statuses = {key: row["status"] for key, row in task_rows(runtime.database).items()}
    assert statuses == {"chat:whatsapp_cloud:cloud-1": "pending", "chat:console:console-1": "pending"}


@pytest.mark.engines
def test_the_whatsapp_web_bot_runs_its_messages_in_its_own_process(
    runtime: Runtime, live_transport: RecordingTransport
) -> None:
    worker = start_live_worker(runtime)
    try:
        accept(runtime.database, message("whatsapp_web", "web-2"))
        assert live_transport.done.wait(60), "the bot's live worker never answered"
        deadline = time.monotonic() + 60
        while task_rows(runtime.database)["chat:whatsapp_web:web-2"]["status"] != "completed":
            assert time.monotonic() < deadline, "the task was answered but never completed"
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [message_id for message_id, _reply in live_transport.sent] == ["web-2"]
