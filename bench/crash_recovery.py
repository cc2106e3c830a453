"""How long after a SIGKILL a killed worker's task runs again, with real `omnizap worker` processes.

    python -m bench.crash_recovery --database-url postgresql://postgres@127.0.0.1:5432/omz_crash \
        [--scenario classification|curation|serve|outbox] [--restart-delay 5]

The database must exist; the bench migrates it and empties its queue, lease and sticker tables.
Every setting is the default except where the scenario must make its task slow and observable:

- `classification`: 40 pending stickers and a CLIP service on loopback (`clip-http` backend) that
  takes 1 s per sticker, so a classification cycle runs for ~20 s while it holds the
  `classification_pending` lease.
- `serve`: the classification scenario run by the inline pipeline of `omnizap serve --workers 1`
  (no dedicated worker; the whole process group is SIGKILLed, as systemd's KillMode does).
- `curation`: `omnizap worker curation` whose handler is the real `curation_cycle` after a 120 s
  sleep inside the task (the real cycle is too fast to kill mid-way); it measures the queue's own
  recovery, which every dedicated task worker shares.
- `outbox`: `omnizap worker outbox` whose event handlers sleep 120 s first; one ENGAGEMENT_RECORDED
  event. Events are leased for DOMAIN_EVENT_OUTBOX_LOCK_TIMEOUT_SECONDS (900) without renewal.

Steps: start worker A, enqueue one task, wait until A runs it (and, for classification, holds the
lease and has written a row), SIGKILL A, start worker B after `--restart-delay` seconds (systemd's
RestartSec), and time from the kill until (1) B claims the task again, (2) B does the task's work
again (for classification: B holds `classification_pending` and writes the next row). Prints JSON.
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.catalog_slo import free_port
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.db.schema import (
    domain_event_outbox,
    platform_lease,
    sticker_asset,
    sticker_asset_classification,
    sticker_worker_task_queue,
)

TASKS = sticker_worker_task_queue
CURATION_CHILD = """
import sys, time
from omnizap.cli.main import cli
from omnizap.intelligence.curation import tasks

real = tasks.curation_cycle
def slow(context, payload):
    print("task started", flush=True)
    time.sleep(120)
    return real(context, payload)
tasks.TASK_HANDLERS["curation_cycle"] = slow
cli(["worker", "curation"])
"""


OUTBOX_CHILD = """
import time
from omnizap import pipeline
from omnizap.cli.main import cli

real = pipeline.outbox_handlers
def slow_handlers(handlers):
    def slow(handler):
        def run(context, event):
            print("task started", flush=True)
            time.sleep(120)
            return handler(context, event)
        return run
    return {name: slow(handler) for name, handler in real(handlers).items()}
pipeline.outbox_handlers = slow_handlers
cli(["worker", "outbox"])
"""


def _slow_clip_server(seconds_per_sticker: float) -> str:
    """A CLIP HTTP service that answers every sticker as a cartoon after `seconds_per_sticker`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(seconds_per_sticker)
            labels = {"cartoon": 0.8, "anime illustration": 0.2}
            body = json.dumps(
                {
                    "category": "cartoon",
                    "confidence": 0.8,
                    "all_scores": labels,
                    "top_labels": [{"label": k, "score": v} for k, v in labels.items()],
                    "entropy": 0.5,
                    "confidence_margin": 0.6,
                    "nsfw_score": 0.01,
                    "is_nsfw": False,
                    "ambiguous": False,
                    "model": "slow-bench",
                }
            ).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}/classify"


def _stickers(url: str, storage: Path, count: int) -> None:
    from PIL import Image

    from omnizap.config import Settings
    from omnizap.core.stickers.service import StickerService
    from omnizap.platform.storage import LocalStorage

    settings = Settings(_env_file=None, database_url=url, sticker_storage_dir=storage)
    database = Database(url)
    service = StickerService(database, LocalStorage(storage), settings)
    for index in range(count):
        image = Image.new("RGB", (512, 512), ((index * 37) % 256, (index * 91) % 256, 128))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        service.ingest(buffer.getvalue(), owner_jid="5511900000000@s.whatsapp.net")
    database.dispose()


def _reset(database: Database) -> None:
    upgrade(database)
    with database.transaction() as connection:
        for table in (TASKS, domain_event_outbox, platform_lease, sticker_asset_classification):
            connection.execute(table.delete())
        connection.execute(sticker_asset.delete())


def _wait(what: str, condition: Callable[[], Any], timeout: float = 600.0, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def _task(
    database: Database, task_id: int | None = None, task_type: str | None = None
) -> dict[str, Any] | None:
    """Row `task_id`, else the first row of `task_type` (the scheduler and the outbox add others);
    task type "outbox": the outbox table."""
    table = domain_event_outbox if task_type == "outbox" else TASKS
    query = sa.select(table).order_by(table.c.id).limit(1)
    if task_id is not None:
        query = query.where(table.c.id == task_id)
    elif table is TASKS:
        query = query.where(TASKS.c.task_type == task_type)
    with database.read() as connection:
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def _lease(database: Database, name: str) -> dict[str, Any] | None:
    with database.read() as connection:
        row = (
            connection.execute(sa.select(platform_lease).where(platform_lease.c.name == name))
            .mappings()
            .first()
        )
    return dict(row) if row else None


def _classified(database: Database) -> int:
    with database.read() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).select_from(sticker_asset_classification)
            ).scalar_one()
        )


def _reclaimed(database: Database, task_id: int, task_type: str, old_token: str) -> dict[str, Any] | None:
    """The task row once another claim than `old_token` holds (or finished) it."""
    row = _task(database, task_id, task_type)
    if row is None or (row["attempts"] < 2 and row["worker_token"] in (None, old_token)):
        return None
    return row


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    # Its own process group, so a SIGKILL reaches `omnizap serve`'s HTTP workers too.
    return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def run(url: str, scenario: str, restart_delay: float) -> dict[str, Any]:
    database = Database(url)
    _reset(database)
    work = Path(tempfile.mkdtemp(prefix="omz-crash-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "STICKER_STORAGE_DIR": str(work / "stickers"),
        # Route the task type to dedicated workers whatever the rollout flag says (not a timing).
        "STICKER_DEDICATED_WORKER_FORCE_ENABLED": "true",
    }
    python = [sys.executable, "-c"]
    if scenario in ("classification", "serve"):
        _stickers(url, work / "stickers", 40)
        env.update(
            {
                "STICKER_CLASSIFIER_BACKEND": "clip-http",
                "CLIP_CLASSIFIER_API_URL": _slow_clip_server(1.0),
                "STICKER_CLASSIFICATION_BACKGROUND_BATCH_SIZE": "2",
            }
        )
        command = [*python, "from omnizap.cli.main import cli; cli(['worker', 'classification'])"]
        if scenario == "serve":
            del env["STICKER_DEDICATED_WORKER_FORCE_ENABLED"]  # the default: every type inline
            port = free_port()
            command = [
                *python,
                f"from omnizap.cli.main import cli; cli(['serve', '--port', '{port}', '--workers', '1'])",
            ]
        task_type = "classification_cycle"
    elif scenario == "outbox":
        command = [*python, OUTBOX_CHILD]
        task_type = "outbox"
    else:
        command = [*python, CURATION_CHILD]
        task_type = "curation_cycle"
    first = _start(command, env, work / "worker-a.log")
    try:
        if task_type == "outbox":
            from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED, publish_event

            with database.transaction() as connection:
                publish_event(
                    connection,
                    event_type=ENGAGEMENT_RECORDED,
                    aggregate_type="sticker_pack",
                    aggregate_id="bench-pack",
                    payload={"pack_id": "bench-pack"},
                    idempotency_key="bench:crash-recovery",
                )
        else:
            subprocess.run(
                [*python, f"from omnizap.cli.main import cli; cli(['queue', 'enqueue', '{task_type}'])"],
                env=env,
                check=True,
                capture_output=True,
            )
        _wait(
            "worker A to claim the task",
            lambda: (_task(database, task_type=task_type) or {}).get("status") == "processing",
        )
        if scenario in ("classification", "serve"):
            _wait("worker A to classify a sticker", lambda: _classified(database) > 0)
            before = _lease(database, "classification_pending")
            assert before is not None, "worker A does not hold the pending lease"
        else:
            _wait(
                "worker A to start the task", lambda: b"task started" in (work / "worker-a.log").read_bytes()
            )
        claimed = _task(database, task_type=task_type)
        assert claimed is not None
        classified_at_kill = _classified(database)
        os.killpg(first.pid, signal.SIGKILL)
        killed = time.monotonic()
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    time.sleep(restart_delay)
    second = _start(command, env, work / "worker-b.log")
    try:
        # Every milestone is polled in one loop, so a slow one never delays noticing another.
        checks: dict[str, Callable[[], Any]] = {
            "task_claimed_again_after_s": lambda: _reclaimed(
                database, claimed["id"], task_type, claimed["worker_token"]
            )
        }
        if scenario in ("classification", "serve"):
            checks["pending_lease_taken_after_s"] = lambda: (
                (lease := _lease(database, "classification_pending")) is not None
                and lease["holder"] != before["holder"]
            )
            checks["next_sticker_classified_after_s"] = lambda: _classified(database) > classified_at_kill
        result: dict[str, Any] = {"scenario": scenario, "restart_delay_s": restart_delay}
        seen: dict[str, Any] = {}

        def all_seen() -> bool:
            for name, check in checks.items():
                if name not in seen and (value := check()):
                    seen[name] = value
                    result[name] = round(time.monotonic() - killed, 1)
            return len(seen) == len(checks)

        _wait("worker B to resume the work", all_seen, timeout=1200.0)
        reclaimed = seen["task_claimed_again_after_s"]
        result["attempts_after_reclaim"] = reclaimed["attempts"]
        deferred = (reclaimed.get("last_error") or "").startswith("deferred")
        result["deferred_once"] = deferred or "deferred" in (work / "worker-b.log").read_text(
            errors="replace"
        )
        result["logs"] = str(work)
        return result
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        try:
            second.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--scenario", choices=("classification", "curation", "serve", "outbox"), default="classification"
    )
    parser.add_argument("--restart-delay", type=float, default=5.0, help="seconds, as systemd's RestartSec")
    args = parser.parse_args()
    print(json.dumps(run(args.database_url, args.scenario, args.restart_delay), indent=2))


if __name__ == "__main__":
    main()
