"""Cost of the `ranking_refresh` task (full and targeted) and of what API processes still do.

    python -m bench.ranking_refresh [--packs 10000] [--runs 7] [--database-url URL] [--existing]

Generates `--packs` packs the way `bench.catalog_reads` does (fresh SQLite file, or the empty
database at `--database-url`), then times, in one process, each step with CPU time beside wall time:

- the task: the first full refresh (no memory of earlier runs: a new worker), later full refreshes
  (order unchanged, and order changed so a generation is published), targeted refreshes of 1 and of
  50 packs after likes (generation published; and inside the debounce window: deferred), and a
  follow-up (publishes what was deferred, computes nothing);
- an API process: adopting a generation another process published, reloading one pack's record
  after its like (live signals until the refresh catches up), and the full index reload.

Times are medians over `--runs` (a like is recorded before each targeted run; generations are dated
back before each run that should publish, so the debounce windows do not turn it into a deferral).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.catalog_reads import generate
from omnizap.catalog import tasks
from omnizap.catalog.service import CatalogService
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.db.schema import (
    sticker_catalog_generation,
    sticker_pack,
    sticker_pack_engagement,
    sticker_pack_interaction_event,
)
from omnizap.platform.db.types import utcnow
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.storage import local_storage


def measure(step: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Median and max wall ms, median CPU ms of `step`; `before` runs untimed ahead of each call."""
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        if before is not None:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return {
        "median": statistics.median(walls),
        "max": max(walls),
        "cpu": statistics.median(cpus),
        "last": result,
    }


def report(name: str, numbers: dict[str, Any]) -> None:
    last = numbers["last"]
    detail = ""
    if isinstance(last, dict) and "generation" in last:
        written = last["snapshots_written"]
        detail = f"  [{last['mode']}, derived {last['derived']}, written {written}, {last['generation']}]"
    print(f"{name:58} {numbers['median']:8.0f} ms {numbers['max']:8.0f} ms {numbers['cpu']:8.0f} ms{detail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--existing", action="store_true", help="use the catalog at --database-url as it is")
    arguments = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="omnizap-bench-refresh-"))
    url = arguments.database_url or f"sqlite:///{folder / 'catalog.db'}"
    settings = Settings(_env_file=None, database_url=url, sticker_storage_dir=folder / "stickers")
    database = Database(settings.database_url)
    if not arguments.existing:
        upgrade(database)
        started = time.perf_counter()
        generate(database, arguments.packs)
        print(f"generation took {time.perf_counter() - started:.1f} s ({settings.database_url})")
    flags = FeatureFlags(database, cache_ttl_ms=settings.feature_flag_cache_ttl_ms)
    context = TaskContext(
        settings=settings,
        database=database,
        storage=local_storage(settings),
        flags=flags,
        task_type="ranking_refresh",
    )
    handler = tasks.TASK_HANDLERS["ranking_refresh"]
    with database.read() as connection:
        public = [
            row[0]
            for row in connection.execute(
                sa.select(sticker_pack.c.id)
                .join(sticker_pack_engagement, sticker_pack_engagement.c.pack_id == sticker_pack.c.id)
                .where(sticker_pack.c.visibility == "public")
                .order_by(sticker_pack.c.id)
            )
        ]
    chooser = random.Random(11)

    def like(pack_ids: list[str], count: int = 25) -> None:
        """What the interactions service commits: counters and interaction events."""
        now = utcnow()
        with database.transaction() as connection:
            for pack_id in pack_ids:
                connection.execute(
                    sticker_pack_engagement.update()
                    .where(sticker_pack_engagement.c.pack_id == pack_id)
                    .values(like_count=sticker_pack_engagement.c.like_count + count, updated_at=now)
                )
                connection.execute(
                    sticker_pack_interaction_event.insert(),
                    [{"pack_id": pack_id, "interaction": "open", "created_at": now} for _ in range(count)],
                )

    def age_generations() -> None:
        window = max(
            settings.sticker_catalog_ranking_debounce_seconds,
            settings.sticker_catalog_ranking_refresh_seconds,
        )
        past = utcnow() - dt.timedelta(seconds=window + 1)
        with database.transaction() as connection:
            connection.execute(sticker_catalog_generation.update().values(started_at=past, finished_at=past))

    def run(payload: dict[str, Any]) -> dict[str, Any]:
        return dict(handler(context, payload))

    print(
        f"\n{f'step ({len(public)} public packs with engagement)':58} {'median':>11} {'max':>11} {'CPU':>11}"
    )
    report("task: first full refresh (new worker process)", measure(lambda: run({}), 1))
    report(
        "task: full refresh, nothing new (last generation < 60 s old)",
        measure(lambda: run({"full": True}), arguments.runs),
    )
    report(
        "task: full refresh after likes on 50 packs, publishes",
        measure(
            lambda: run({}),
            arguments.runs,
            before=lambda: (like(chooser.sample(public, 50)), age_generations()),
        ),
    )
    one: list[str] = []

    def like_one() -> None:
        one[:] = [chooser.choice(public)]
        like(one)

    report(
        "task: targeted, 1 pack liked, publishes",
        measure(
            lambda: run({"pack_ids": one}), arguments.runs, before=lambda: (like_one(), age_generations())
        ),
    )
    report(
        "task: targeted, 1 pack liked, inside the debounce window",
        measure(lambda: run({"pack_ids": one}), arguments.runs, before=like_one),
    )
    report(
        "task: follow-up (publishes what was deferred)",
        measure(lambda: run({"pack_ids": [], "follow_up": True}), 1),
    )
    fifty: list[str] = []

    def like_fifty() -> None:
        fifty[:] = chooser.sample(public, 50)
        like(fifty)
        age_generations()

    report(
        "task: targeted, 50 packs liked, publishes",
        measure(lambda: run({"pack_ids": fifty}), arguments.runs, before=like_fifty),
    )

    catalog = CatalogService(database, settings, flags=flags)
    catalog.list_packs()  # load the index and adopt the newest generation
    report("API: first index load (adopts the newest generation)", measure(catalog._reload_index, 1))

    def publish_elsewhere() -> None:
        like_one()
        age_generations()
        run({"pack_ids": one})

    report(
        "API: adopt a generation published by the task (poll)",
        measure(catalog.poll_changes, arguments.runs, before=publish_elsewhere),
    )

    def like_unrefreshed() -> None:
        like_one()

    report(
        "API: reload one pack after its like (live signals)",
        measure(lambda: catalog._refresh_packs(one), arguments.runs, before=like_unrefreshed),
    )
    report("API: full index reload (TTL)", measure(catalog._reload_index, 3))
    database.dispose()


if __name__ == "__main__":
    main()
