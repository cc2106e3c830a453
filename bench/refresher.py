"""Stand-in for the task pipeline's ranking work while `bench.catalog_slo --refresher` runs.

    python -m bench.refresher [--poll-ms 2000] [--full-every-ms 300000]   (DATABASE_URL from the env)

Until `omnizap serve` runs its inline poller, nothing executes `ranking_refresh` tasks. This process
does what the outbox consumer, the scheduler and the poller will do for rankings, in one loop:
tail `domain_event_outbox` (without claiming: it only reads ids) and run a targeted refresh for the
packs the new events name; run the follow-ups the handler queued once they are due (then delete
them); run a full refresh every `--full-every-ms`. On SIGTERM it prints what it ran and its CPU time.
"""

from __future__ import annotations

import argparse
import collections
import signal
import threading
import time
from typing import Any

import sqlalchemy as sa

from omnizap.catalog.tasks import RANKING_REFRESH, TASK_HANDLERS
from omnizap.config import get_settings
from omnizap.platform.db.schema import domain_event_outbox, sticker_worker_task_queue
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.context import TaskContext
from omnizap.runtime import Runtime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--poll-ms", type=int, default=2000)
    parser.add_argument("--full-every-ms", type=int, default=None, help="default STICKER_SCORE_SNAPSHOT_…")
    arguments = parser.parse_args()
    runtime = Runtime(get_settings())
    settings = runtime.settings
    database = runtime.database
    context = TaskContext(
        settings=settings,
        database=database,
        storage=runtime.storage,
        flags=runtime.flags,
        task_type=RANKING_REFRESH,
    )
    handler = TASK_HANDLERS[RANKING_REFRESH]
    full_every = (arguments.full_every_ms or settings.sticker_score_snapshot_refresh_interval_ms) / 1000
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    outcomes: collections.Counter[str] = collections.Counter()
    seconds: collections.defaultdict[str, float] = collections.defaultdict(float)

    def run(kind: str, payload: dict[str, Any]) -> None:
        summary = handler(context, payload) or {}
        outcomes[f"{kind} {summary.get('generation')}"] += 1
        seconds[kind] += float(summary.get("seconds") or 0)

    with database.read() as connection:
        last_id = int(connection.execute(sa.select(sa.func.max(domain_event_outbox.c.id))).scalar() or 0)
    run("full", {})
    last_full = time.monotonic()
    cpu_started = time.process_time()
    while not stop.wait(arguments.poll_ms / 1000):
        with database.read() as connection:
            events = connection.execute(
                sa.select(
                    domain_event_outbox.c.id,
                    domain_event_outbox.c.aggregate_type,
                    domain_event_outbox.c.aggregate_id,
                )
                .where(domain_event_outbox.c.id > last_id)
                .order_by(domain_event_outbox.c.id)
                .limit(5000)
            ).all()
            due = connection.execute(
                sa.select(sticker_worker_task_queue.c.id, sticker_worker_task_queue.c.payload).where(
                    sticker_worker_task_queue.c.task_type == RANKING_REFRESH,
                    sticker_worker_task_queue.c.status == "pending",
                    sticker_worker_task_queue.c.scheduled_at <= utcnow(),
                )
            ).all()
        if events:
            last_id = int(events[-1].id)
            packs = sorted({event.aggregate_id for event in events if event.aggregate_type == "sticker_pack"})
            if packs:
                run("targeted", {"pack_ids": packs})
        for task_id, payload in due:
            run("follow-up", dict(payload or {}))
            with database.transaction() as connection:
                connection.execute(
                    sticker_worker_task_queue.delete().where(sticker_worker_task_queue.c.id == task_id)
                )
        if time.monotonic() - last_full >= full_every:
            run("full", {})
            last_full = time.monotonic()
    cpu = time.process_time() - cpu_started
    print(
        f"refresher: {dict(outcomes)}; handler seconds {dict(seconds)}; process CPU {cpu:.1f} s", flush=True
    )
    runtime.close()


if __name__ == "__main__":
    main()
