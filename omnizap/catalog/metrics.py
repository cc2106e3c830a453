"""Scrape-time gauges of the ranking pipeline's health, registered by the web app's /metrics.

- `omnizap_score_snapshot_pending`: reachable packs whose score snapshot cannot be read (missing,
  another formula version, computed before the pack's last edit or interaction, or older than
  STICKER_SCORE_SNAPSHOT_MAX_AGE_MS), so their signals are computed live on every load. The
  original's `sticker_pack_score_snapshot_pending` counted an in-memory set of one process; this
  is counted in the database, so every API process reports the same number and a worker that died
  with work pending still shows. It should come back to about 0 after each refresh; a number that
  only grows means no `ranking_refresh` task runs (the runbook's condition for keeping
  `enable_ranking_snapshot_read` on is "snapshot freshness healthy").
- `omnizap_ranking_generation_age_seconds`: age of the newest ready ranking generation (how old the
  orders of the score sorts are); absent before the first one.
- `omnizap_ranking_scrape_ok`: 1, or 0 when the database could not be read (then the two above are
  missing rather than zero).
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


def read_ranking_health(
    database: Database, settings: Settings, now: dt.datetime | None = None
) -> tuple[int, float | None]:
    """(packs whose snapshot is pending, age in seconds of the newest generation or None)."""
    now = now or utcnow()
    max_age = dt.timedelta(milliseconds=settings.sticker_score_snapshot_max_age_ms)
    with database.read() as connection:
        pending = repo.snapshot_pending_count(
            connection, stale_before=now - max_age, source_version=SNAPSHOT_SOURCE_VERSION
        )
        finished = connection.execute(
            sa.select(sa.func.max(sticker_catalog_generation.c.finished_at)).where(
                sticker_catalog_generation.c.status == "ready"
            )
        ).scalar_one_or_none()
    age = None if finished is None else max(0.0, (now - finished).total_seconds())
    return pending, age


class RankingHealthCollector:
    """Yields the gauges of the module doc, read from the database at each scrape."""

    def __init__(self, database: Database, settings: Settings, clock: Callable[[], dt.datetime] = utcnow):
        self.database = database
        self.settings = settings
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily("omnizap_ranking_scrape_ok", "1 when ranking health could be read.")
        try:
            pending, age = read_ranking_health(self.database, self.settings, self.clock())
        except Exception as exc:  # an unreachable database must not break the whole scrape
            logger.warning("ranking health unavailable: %s", type(exc).__name__)
            ok.add_metric([], 0)
            yield ok
            return
        yield GaugeMetricFamily(
            "omnizap_score_snapshot_pending",
            "Reachable packs whose score snapshot is missing, outdated or past its freshness bound.",
            value=pending,
        )
        if age is not None:
            yield GaugeMetricFamily(
                "omnizap_ranking_generation_age_seconds",
                "Age of the newest ready ranking generation.",
                value=age,
            )
        ok.add_metric([], 1)
        yield ok
