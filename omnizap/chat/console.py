"""A console chat session: each line becomes an IncomingMessage that goes through `inbox.accept`
and is then run as its chat task (`chat_message_live:console`) in this process — the same path a
webhook takes.

Line syntax: text as typed; `@path` attaches a file (the first one counts); `>@path` makes the message
a reply to a message carrying that file (a quoted sticker, say). Paths with spaces: `@"my cat.jpg"`.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from omnizap.chat.inbox import accept, idempotency_key, task_type_for
from omnizap.chat.messages import IncomingMessage, MediaRef, Reply, ReplyNotSupported, SentPack
from omnizap.chat.tasks import live_task_handlers
from omnizap.chat.transports import registry
from omnizap.chat.transports.console import NETWORK, ConsoleTransport, media_for_path
from omnizap.platform.db.schema import sticker_worker_task_queue
from omnizap.platform.queue.worker import QueueWorker, WorkerOptions
from omnizap.runtime import Runtime

WAIT_FOR_OTHER_WORKER_SECONDS = 60.0
CONSOLE_TASK = task_type_for(NETWORK)  # only console sessions claim it (serve's pollers never do)
# `@path`, `>@path`, `@"path with spaces"` at the start of a word
_ATTACHMENT = re.compile(r'(?:^|(?<=\s))(>?@)(?:"([^"]+)"|(\S+))')


class _ConsoleHub:
    """The one transport registered for the console network: it hands each reply to the session
    of the person who wrote the message, so several console users can share one process (tests)."""

    network = NETWORK

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str], ConsoleTransport] = {}
        self.fallback: ConsoleTransport | None = None

    def _for(self, message: IncomingMessage) -> ConsoleTransport:
        found = self.sessions.get((message.chat_id, message.sender_id)) or self.fallback
        if found is None:
            raise ReplyNotSupported("no console session is open for this chat")
        return found

    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        transport = self.fallback or next(iter(self.sessions.values()))
        return transport.download(media, max_bytes=max_bytes)

    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | None:
        return self._for(message).send(message, reply)


_hub = _ConsoleHub()
registry.register(NETWORK, lambda _settings: _hub)


class ConsoleInputError(ValueError):
    """A line that cannot become a message (a file that does not exist, unbalanced quotes)."""


def parse_line(line: str, base_dir: Path) -> tuple[str, MediaRef | None, MediaRef | None]:
    """(text, attached media, quoted media) of one console line. Only words starting with `@` or
    `>@` are taken out; the rest of the text stays as typed (quotes and apostrophes included)."""
    media: MediaRef | None = None
    quoted: MediaRef | None = None
    for match in _ATTACHMENT.finditer(line):
        path = (base_dir / (match.group(2) or match.group(3))).expanduser()
        if not path.is_file():
            raise ConsoleInputError(f"no such file: {path}")
        ref = media_for_path(path)
        if match.group(1) == ">@":
            quoted = quoted or ref
        else:
            media = media or ref
    text = _ATTACHMENT.sub("", line)
    return " ".join(text.split()) if media or quoted else text.strip(), media, quoted


@dataclass
class ConsoleSession:
    runtime: Runtime
    transport: ConsoleTransport
    sender_id: str
    sender_name: str = ""
    group_id: str | None = None
    group_admin: bool = False
    base_dir: Path = field(default_factory=Path.cwd)

    def __post_init__(self) -> None:
        _hub.sessions[(self.group_id or self.sender_id, self.sender_id)] = self.transport
        _hub.fallback = _hub.fallback or self.transport
        from omnizap.pipeline import base_context, task_queue

        self.queue = task_queue(self.runtime)
        self.worker = QueueWorker(
            self.queue,
            live_task_handlers(NETWORK),
            base_context(self.runtime),
            WorkerOptions(name=f"console-{uuid.uuid4().hex[:8]}", kinds=(CONSOLE_TASK,), mode="inline"),
        )

    def message_for(self, line: str, *, message_id: str | None = None) -> IncomingMessage:
        text, media, quoted = parse_line(line, self.base_dir)
        return IncomingMessage(
            network=NETWORK,
            chat_id=self.group_id or self.sender_id,
            sender_id=self.sender_id,
            message_id=message_id or uuid.uuid4().hex,
            text=text,
            sender_name=self.sender_name,
            is_group=self.group_id is not None,
            sender_is_group_admin=self.group_admin,
            media=media,
            quoted_media=quoted,
            timestamp=time.time(),
        )

    def send_line(self, line: str, *, message_id: str | None = None) -> bool:
        """Accept one line as a message and run its task here; False for a redelivered message id."""
        return self.deliver(self.message_for(line, message_id=message_id))

    def deliver(self, message: IncomingMessage) -> bool:
        accepted = accept(self.runtime.database, message)
        self.run_until_done(idempotency_key(message.network, message.message_id))
        return accepted

    def _status(self, key: str) -> str | None:
        table = sticker_worker_task_queue
        with self.runtime.database.read() as connection:
            return connection.execute(
                sa.select(table.c.status).where(table.c.idempotency_key == key)
            ).scalar()

    def run_until_done(self, key: str) -> None:
        """Run due chat tasks until ours has run (another worker may take it: then wait for it)."""
        deadline = time.monotonic() + WAIT_FOR_OTHER_WORKER_SECONDS
        while time.monotonic() < deadline:
            if self._status(key) in {"completed", "failed", None}:
                return
            batch = self.queue.claim(self.worker.options.name, kinds=[CONSOLE_TASK], limit=1)
            if batch:
                self.worker.execute(batch[0])
                continue
            time.sleep(0.1)  # our task is leased by another process or waiting for a retry
