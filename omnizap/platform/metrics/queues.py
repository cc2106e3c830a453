"""`omnizap_queue_depth{queue}`: queue and dead-letter sizes, counted in the database at scrape time.

Counting at scrape time (instead of a gauge each process sets) gives every API process the same,
current answer and needs no bookkeeping when workers start or die. Labels are the original's
(pipeline §11: `sticker_worker_tasks_*`, `domain_event_outbox_*`, `sticker_reprocess_*`) plus the
dead-letter tables, which the original lacked for the reprocess queue: `*_dlq` counts rows not yet
replayed, so a replay brings the gauge back down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily

from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    domain_event_outbox,
    domain_event_outbox_dlq,
    sticker_asset_reprocess_dlq,
    sticker_asset_reprocess_queue,
    sticker_worker_task_dlq,
    sticker_worker_task_queue,
)

logger = logging.getLogger(__name__)

# (table, label prefix, statuses reported)
_QUEUES: tuple[tuple[sa.Table, str, tuple[str, ...]], ...] = (
    (sticker_worker_task_queue, "sticker_worker_tasks", ("pending", "processing", "failed")),
    (domain_event_outbox, "domain_event_outbox", ("pending", "processing", "failed")),
    (sticker_asset_reprocess_queue, "sticker_reprocess", ("pending", "processing", "failed")),
)
_DEAD_LETTERS: tuple[tuple[sa.Table, str], ...] = (
    (sticker_worker_task_dlq, "sticker_worker_task_dlq"),
    (domain_event_outbox_dlq, "domain_event_outbox_dlq"),
    (sticker_asset_reprocess_dlq, "sticker_reprocess_dlq"),
)
QUEUE_DEPTH_LABELS: tuple[str, ...] = tuple(
    f"{prefix}_{status}" for _, prefix, statuses in _QUEUES for status in statuses
) + tuple(label for _, label in _DEAD_LETTERS)


def read_queue_depths(database: Database) -> dict[str, int]:
    """Every label of QUEUE_DEPTH_LABELS with its current row count (zeros included)."""
    depths = dict.fromkeys(QUEUE_DEPTH_LABELS, 0)
    with database.read() as connection:
        for table, prefix, statuses in _QUEUES:
            rows = connection.execute(
                sa.select(table.c.status, sa.func.count())
                .where(table.c.status.in_(statuses))
                .group_by(table.c.status)
            )
            for status, count in rows:
                depths[f"{prefix}_{status}"] = int(count)
        for table, label in _DEAD_LETTERS:
            count = connection.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.replayed_at.is_(None))
            ).scalar_one()
            depths[label] = int(count)
    return depths


class QueueDepthCollector:
    """Yields `omnizap_queue_depth` from the database, and `omnizap_queue_depth_scrape_ok` (1 or 0) so
    a database outage shows as a missing reading rather than as empty queues.

    `extra_depths` are more readers of `{label: count}` for the same family, from services the
    platform must not import (the catalog's `sticker_pack_score_snapshot_pending`); the web app
    passes them. One family, so the exposition never names `omnizap_queue_depth` twice."""

    def __init__(
        self, database: Database, extra_depths: Iterable[Callable[[], Mapping[str, int]]] = ()
    ) -> None:
        self.database = database
        self.extra_depths = tuple(extra_depths)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily(
            "omnizap_queue_depth_scrape_ok", "1 when queue depths could be read from the database."
        )
        try:
            depths = read_queue_depths(self.database)
            for reader in self.extra_depths:
                depths.update(reader())
        except Exception as exc:  # an unreachable database must not break the whole scrape
            logger.warning("queue depths unavailable: %s", type(exc).__name__)
            ok.add_metric([], 0)
            yield ok
            return
        gauge = GaugeMetricFamily(
            "omnizap_queue_depth", "Rows waiting in each queue and dead-letter table.", labels=["queue"]
        )
        for label, count in depths.items():
            gauge.add_metric([label], count)
        yield gauge
        ok.add_metric([], 1)
        yield ok
