"""Chat bot speed through the real queue path: `/s` of a photo, 50 chats at once, webhook answers.

    python -m bench.chat_console [--database-url URL] [--runs 30] [--chats 50] [--workers N]
                                 [--webhook-requests 300] [--size 640] [--json results.json]

(a) `/s` end to end, one message at a time: the console transport's path (`inbox.accept` → the
    `chat_message` task claimed from the queue → ingest → sticker reply), in this process. Each run
    sends a different photo (`--size` px JPEG) from a different person, so neither the asset dedupe
    nor the rate limit short-cuts anything. Warm-up runs first (imports, fonts, connections).
(b) `--chats` people send `/s` with their own photo at the same moment: every message is enqueued
    first, then drained by `--workers` queue workers (default: as many as `omnizap serve` runs for
    `chat_message` here, `Settings.chat_consumers`: one per CPU, 1-4). Latency is enqueue → sticker
    sent.
(c) The WhatsApp Cloud API webhook under a real uvicorn on loopback: a signed notification with a
    `/s` image is POSTed over a kept-alive connection; the answer comes once the task is queued
    (nothing else runs in the request). Median and p95 of the round trip.

Without `--database-url` a fresh SQLite database in a temporary folder is used; with a PostgreSQL
or MySQL URL the database must exist (it is migrated; each run uses new people and message ids).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import io
import json
import random
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bench.catalog_slo import free_port
from omnizap.config import Settings
from omnizap.platform.db.migrate import upgrade
from omnizap.runtime import Runtime

WARM_UP = 3
APP_SECRET = "bench-app-secret"
PHONE_ID = "109876543210"


@dataclass
class Result:
    case: str
    runs: int
    median_ms: float
    p95_ms: float
    max_ms: float
    target: str


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p95 is a measured run)."""
    ordered = sorted(samples)
    rank = max(1, round(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(case: str, samples: list[float], target: str) -> Result:
    return Result(
        case=case,
        runs=len(samples),
        median_ms=round(statistics.median(samples), 1),
        p95_ms=round(percentile(samples, 0.95), 1),
        max_ms=round(max(samples), 1),
        target=target,
    )


def photo(seed: int, size: int) -> bytes:
    """A distinct photo-like JPEG: a gradient with random shapes (never the same bytes twice)."""
    chooser = random.Random(seed)
    image = Image.new("RGB", (size, size * 3 // 4))
    draw = ImageDraw.Draw(image)
    for row in range(0, image.height, 4):
        shade = (row * 255 // image.height + seed) % 256
        draw.rectangle([0, row, image.width, row + 4], fill=(shade, 120, 255 - shade))
    for _ in range(25):
        x, y = chooser.randrange(image.width), chooser.randrange(image.height)
        radius = chooser.randrange(10, size // 5)
        color = tuple(chooser.randrange(256) for _ in range(3))
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def bench_settings(database_url: str, folder: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "sticker_storage_dir": folder / "stickers",
        "chat_locale": "en",
        "http_access_log": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


class StickerClock:
    """Console echo that records when each sticker reply went out, per person."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.lock = threading.Lock()

    def echo_for(self, sender: str) -> Any:
        def echo(line: str) -> None:
            if line.startswith("[sticker]"):
                with self.lock:
                    self.sent.setdefault(sender, time.perf_counter())

        return echo


def single_messages(runtime: Runtime, folder: Path, runs: int, size: int, tag: str) -> Result:
    from omnizap.chat.console import ConsoleSession
    from omnizap.chat.transports.console import ConsoleTransport

    clock = StickerClock()
    samples: list[float] = []
    for index in range(WARM_UP + runs):
        sender = f"55119{tag}{index:04d}@s.whatsapp.net"
        path = folder / f"single-{index}.jpg"
        path.write_bytes(photo(10_000 + index, size))
        transport = ConsoleTransport(folder / "out" / "single", echo=clock.echo_for(sender))
        session = ConsoleSession(runtime, transport, sender_id=sender, base_dir=folder)
        started = time.perf_counter()
        session.send_line(f"/s @{path.name}")
        elapsed = (time.perf_counter() - started) * 1000
        if sender not in clock.sent:
            raise SystemExit(f"run {index}: the bot sent no sticker (see the log)")
        if index >= WARM_UP:
            samples.append(elapsed)
    return summary(f"(a) /s of a {size} px photo, one at a time", samples, "median ≤ 150 ms")


def burst(runtime: Runtime, folder: Path, chats: int, workers: int, size: int, tag: str) -> Result:
    from omnizap.chat.console import ConsoleSession
    from omnizap.chat.inbox import accept, task_type_for
    from omnizap.chat.tasks import live_task_handlers
    from omnizap.chat.transports.console import ConsoleTransport
    from omnizap.pipeline import base_context, task_queue
    from omnizap.platform.queue.worker import QueueWorker, WorkerOptions

    clock = StickerClock()
    messages = []
    for index in range(chats):
        sender = f"55118{tag}{index:04d}@s.whatsapp.net"
        path = folder / f"burst-{index}.jpg"
        path.write_bytes(photo(20_000 + index, size))
        transport = ConsoleTransport(folder / "out" / "burst", echo=clock.echo_for(sender))
        session = ConsoleSession(runtime, transport, sender_id=sender, base_dir=folder)
        messages.append((sender, session.message_for(f"/s @{path.name}")))
    enqueued: dict[str, float] = {}
    for sender, message in messages:
        enqueued[sender] = time.perf_counter()
        accept(runtime.database, message)

    def drain(worker: QueueWorker) -> None:
        while len(clock.sent) < chats and worker.run_once():
            pass

    # Console messages are `chat_message_live:console` tasks (only the process holding the console
    # runs them); the handler is the one `chat_message` tasks of the HTTP networks run.
    console_type = task_type_for("console")
    pool = [
        QueueWorker(
            task_queue(runtime),
            live_task_handlers("console"),
            base_context(runtime),
            WorkerOptions(name=f"bench-{tag}-{number}", kinds=(console_type,), mode="inline"),
        )
        for number in range(workers)
    ]
    threads = [threading.Thread(target=drain, args=(worker,)) for worker in pool]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    missing = [sender for sender, _ in messages if sender not in clock.sent]
    if missing:
        raise SystemExit(f"{len(missing)} of {chats} chats got no sticker (see the log)")
    samples = [(clock.sent[sender] - enqueued[sender]) * 1000 for sender, _ in messages]
    case = f"(b) {chats} chats send /s at once, {workers} worker{'s' if workers > 1 else ''}"
    return summary(case, samples, "p95 ≤ 2000 ms")


def webhook(database_url: str, folder: Path, requests: int) -> Result:
    """A signed Cloud API notification per request against `create_app` under uvicorn."""
    import uvicorn

    from omnizap.web.app import create_app

    settings = bench_settings(
        database_url,
        folder,
        whatsapp_cloud_phone_number_id=PHONE_ID,
        whatsapp_cloud_token="bench-token",
        whatsapp_cloud_app_secret=APP_SECRET,
        whatsapp_cloud_verify_token="bench-verify",
    )
    runtime = Runtime(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    run = uuid.uuid4().hex[:8]
    samples: list[float] = []
    try:
        for index in range(WARM_UP + requests):
            body = json.dumps(_notification(f"wamid.bench.{run}.{index}", f"5511977{index:06d}")).encode()
            signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
            started = time.perf_counter()
            connection.request("POST", settings.whatsapp_webhook_path, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read()
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status != 200:
                raise SystemExit(f"webhook answered {answer.status}")
            if index >= WARM_UP:
                samples.append(elapsed)
    finally:
        connection.close()
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()
    return summary("(c) WhatsApp Cloud webhook, signed /s image, answer", samples, "median and p95 ≤ 50 ms")


def _notification(message_id: str, sender: str) -> dict[str, Any]:
    message = {
        "from": sender,
        "id": message_id,
        "timestamp": str(int(time.time())),
        "type": "image",
        "image": {"caption": "/s", "mime_type": "image/jpeg", "sha256": "abc", "id": f"media-{message_id}"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Bench"}, "wa_id": sender}],
        "messages": [message],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}],
    }


def run(arguments: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="omnizap-chat-bench-") as temporary:
        folder = Path(temporary)
        database_url = arguments.database_url or f"sqlite:///{folder / 'omnizap.db'}"
        # People never hit the per-sender rate limit here: each message comes from someone new.
        runtime = Runtime(bench_settings(database_url, folder))
        upgrade(runtime.database)
        workers = arguments.workers or runtime.settings.chat_consumers
        tag = f"{random.randrange(10_000):04d}"
        try:
            results = [
                single_messages(runtime, folder, arguments.runs, arguments.size, tag),
                burst(runtime, folder, arguments.chats, workers, arguments.size, tag),
            ]
        finally:
            runtime.close()
        results.append(webhook(database_url, folder, arguments.webhook_requests))
        return results


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite database")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--workers", type=int, default=0, help="default: what `omnizap serve` runs")
    parser.add_argument("--webhook-requests", type=int, default=300)
    parser.add_argument("--size", type=int, default=640, help="photo width in px (height: 3/4 of it)")
    parser.add_argument("--json", help="also write the results to this file")
    arguments = parser.parse_args()
    results = run(arguments)
    print("| case | runs | median ms | p95 ms | max ms | target |")
    print("|---|---:|---:|---:|---:|---|")
    for result in results:
        print(
            f"| {result.case} | {result.runs} | {result.median_ms} | {result.p95_ms} | {result.max_ms} "
            f"| {result.target} |"
        )
    if arguments.json:
        Path(arguments.json).write_text(json.dumps([asdict(result) for result in results], indent=2))


if __name__ == "__main__":
    main()
