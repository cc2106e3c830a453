"""Scrape-time readings of the ranking pipeline's health, for the web app's /metrics.

- `omnizap_queue_depth{queue="sticker_pack_score_snapshot_pending"}` (the original's label, through
  `QueueDepthCollector(extra_depths=…)`): reachable packs whose score snapshot cannot be read as it
  is — missing, another formula version, computed before the pack's last edit or interaction, or
  older than STICKER_SCORE_SNAPSHOT_MAX_AGE_MS. The original counted an in-memory set of one
  process; this is counted in the database, so every API process reports the same number and work
  left by a dead worker still shows. It rises with each like and falls back to about 0 after the
  refresh; a number that only grows means no `ranking_refresh` task runs (the runbook keeps
  `enable_ranking_snapshot_read` on only while snapshot freshness is healthy).
- `omnizap_ranking_generation_age_seconds`: age of the newest ready ranking generation (how old the
  orders of the score sorts are); absent before the first one or when the database cannot be read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily

from omnizap.catalog import repository as repo
from omnizap.catalog.derive import SNAPSHOT_SOURCE_VERSION
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_catalog_generation
from omnizap.platform.db.types import utcnow

logger = logging.getLogger(__name__)

SNAPSHOT_PENDING_LABEL = "sticker_pack_score_snapshot_pending"


def snapshot_pending(database: Database, settings: Settings, now: dt.datetime | None = None) -> int:
    """Reachable packs whose snapshot cannot be read as it is (the rule of `derive.snapshot_is_fresh`)."""
    max_age = dt.timedelta(milliseconds=settings.sticker_score_snapshot_max_age_ms)
    with database.read() as connection:
        return repo.snapshot_pending_count(
            connection, stale_before=(now or utcnow()) - max_age, source_version=SNAPSHOT_SOURCE_VERSION
        )


def snapshot_pending_depth(
    database: Database, settings: Settings, clock: Callable[[], dt.datetime] = utcnow
) -> Callable[[], dict[str, int]]:
    """A reader for `QueueDepthCollector(extra_depths=…)`."""
    return lambda: {SNAPSHOT_PENDING_LABEL: snapshot_pending(database, settings, clock())}


def generation_age_seconds(database: Database, now: dt.datetime | None = None) -> float | None:
    with database.read() as connection:
        finished = connection.execute(
            sa.select(sa.func.max(sticker_catalog_generation.c.finished_at)).where(
                sticker_catalog_generation.c.status == "ready"
            )
        ).scalar_one_or_none()
    return None if finished is None else max(0.0, ((now or utcnow()) - finished).total_seconds())


class RankingGenerationCollector:
    """Yields `omnizap_ranking_generation_age_seconds`, read from the database at each scrape."""

    def __init__(self, database: Database, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            age = generation_age_seconds(self.database, self.clock())
        except Exception as exc:  # the queue depths' scrape_ok already reports the outage
            logger.warning("ranking generation age unavailable: %s", type(exc).__name__)
            return
        if age is not None:
            yield GaugeMetricFamily(
                "omnizap_ranking_generation_age_seconds",
                "Age of the newest ready ranking generation.",
                value=age,
            )
