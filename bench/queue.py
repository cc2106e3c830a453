"""Task queue throughput and enqueue→start latency, with real worker processes.

    python -m bench.queue [--database-url URL] [--tasks 20000] [--workers 4] [--batch 32]
                          [--latency-tasks 200] [--poll-ms 2500]

1. Throughput: enqueues `--tasks` tasks, starts `--workers` processes that claim (`--batch` at a
   time, SKIP LOCKED on PostgreSQL/MySQL) and complete each task in its own transaction, and reports
   tasks/s from the first claim to the last completion.
2. Latency: one dedicated worker process waits for work as `omnizap worker` does (LISTEN/NOTIFY on
   PostgreSQL, polling every `--poll-ms` elsewhere); the bench enqueues one task every 20 ms and the
   handler records how long after its enqueue it started. Reports median and p95.

Without `--database-url` a fresh SQLite database in a temporary folder is used. With a PostgreSQL or
MySQL URL the database must exist and be migrated or empty (the bench migrates it and empties the
task queue first).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.db.schema import sticker_worker_task_queue
from omnizap.platform.queue.protocol import Queue
from omnizap.platform.queue.specs import TASK_QUEUE

TARGETS = {"throughput_tasks_per_second": 2000.0, "median_latency_ms": 50.0}


def _throughput_worker(url: str, batch: int, per_batch: bool, results: Any) -> None:
    database = Database(url, pool_size=2)
    queue = Queue(database, TASK_QUEUE)
    done = 0
    first = None
    while True:
        items = queue.claim("bench", limit=batch)
        if not items:
            break
        first = first or time.time()
        if per_batch:
            done += queue.complete_many(items)
            continue
        for item in items:
            queue.complete(item)
            done += 1
    results.put((done, first, time.time()))
    database.dispose()


def throughput(url: str, tasks: int, workers: int, batch: int, per_batch: bool) -> dict[str, float]:
    database = Database(url, pool_size=2)
    queue = Queue(database, TASK_QUEUE)
    with database.transaction() as connection:
        connection.execute(sticker_worker_task_queue.delete())
        for index in range(tasks):
            queue.enqueue(
                values={"task_type": "bench_cycle", "payload": {"n": index}},
                idempotency_key=f"bench:{index}",
                connection=connection,
            )
    results: Any = multiprocessing.get_context("spawn").Queue()
    processes = [
        multiprocessing.get_context("spawn").Process(
            target=_throughput_worker, args=(url, batch, per_batch, results)
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    reports = [results.get() for _ in processes]
    for process in processes:
        process.join()
    started = min(report[1] for report in reports if report[1])
    finished = max(report[2] for report in reports)
    completed = sum(report[0] for report in reports)
    with database.read() as connection:
        left = connection.execute(
            sa.select(sa.func.count()).where(sticker_worker_task_queue.c.status != "completed")
        ).scalar_one()
    database.dispose()
    elapsed = finished - started
    return {
        "tasks": completed,
        "not_completed": int(left),
        "seconds": round(elapsed, 2),
        "tasks_per_second": round(completed / elapsed, 1),
    }


def _latency_worker(url: str, poll_ms: int, ready: Any, results: Any, expected: int) -> None:
    from omnizap.pipeline import base_context
    from omnizap.platform.queue.waker import waker_for
    from omnizap.platform.queue.worker import QueueWorker, WorkerOptions
    from omnizap.runtime import Runtime

    runtime = Runtime(settings=Settings(_env_file=None, database_url=url))
    delays: list[float] = []

    def handle(context: Any, payload: Any) -> dict[str, Any]:
        delays.append(time.time() - float(payload["enqueued_at"]))
        if len(delays) >= expected:
            worker.stop()
        return {}

    worker = QueueWorker(
        Queue(runtime.database, TASK_QUEUE),
        {"bench_cycle": handle},
        base_context(runtime),
        WorkerOptions("latency", ["bench_cycle"], poll_interval=poll_ms / 1000),
        waker=waker_for(runtime.database, [TASK_QUEUE.notify_channel]),
    )
    worker.run_once()
    ready.set()
    worker.run()
    results.put(delays)


def latency(url: str, count: int, poll_ms: int) -> dict[str, float]:
    database = Database(url, pool_size=2)
    queue = Queue(database, TASK_QUEUE)
    with database.transaction() as connection:
        connection.execute(sticker_worker_task_queue.delete())
    context = multiprocessing.get_context("spawn")
    ready, results = context.Event(), context.Queue()
    process = context.Process(target=_latency_worker, args=(url, poll_ms, ready, results, count))
    process.start()
    ready.wait(60)
    time.sleep(0.5)  # let the worker reach its wait (LISTEN) before the first task
    for index in range(count):
        queue.enqueue(
            values={"task_type": "bench_cycle", "payload": {"enqueued_at": time.time()}},
            idempotency_key=f"latency:{index}",
        )
        time.sleep(0.02)
    delays = results.get(timeout=max(120, count * poll_ms / 1000 * 2))
    process.join(30)
    database.dispose()
    ordered = sorted(delays)
    return {
        "tasks": len(delays),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--latency-tasks", type=int, default=200)
    parser.add_argument("--poll-ms", type=int, default=2500)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'queue-bench.db'}"
    database = Database(url)
    upgrade(database)
    engine = database.dialect
    database.dispose()
    for per_batch in (False, True):
        result = throughput(url, args.tasks, args.workers, args.batch, per_batch)
        completion = "one transaction per batch" if per_batch else "one transaction per task"
        print(
            f"{engine}: {result['tasks']} tasks claimed+completed by {args.workers} worker processes "
            f"(claims of {args.batch}, {completion}) in {result['seconds']} s = "
            f"{result['tasks_per_second']} tasks/s "
            f"({result['not_completed']} left; target ≥ {TARGETS['throughput_tasks_per_second']:.0f} "
            "on PostgreSQL)"
        )
    waits = latency(url, args.latency_tasks, args.poll_ms)
    print(
        f"{engine}: enqueue→start over {waits['tasks']} tasks: median {waits['median_ms']} ms, "
        f"p95 {waits['p95_ms']} ms, max {waits['max_ms']} ms "
        f"({'LISTEN/NOTIFY' if engine == 'postgresql' else f'polling every {args.poll_ms} ms'}; "
        f"target median ≤ {TARGETS['median_latency_ms']:.0f} ms on PostgreSQL)"
    )


if __name__ == "__main__":
    main()
