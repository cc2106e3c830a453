"""Classification metrics with the original's names (pipeline §1.4):

- `omnizap_sticker_classification_cycle_duration_ms{status}` (histogram)
- `omnizap_sticker_classification_cycle_total{status}`: status is completed, deferred (another
  worker held the pending-assets lease), skipped or failed
- `omnizap_sticker_classification_assets_total{outcome}`: processed (attempted), classified,
  fallback (the invalid-image row was written) and failed (left as it was, tried again later)

Registered once per process in prometheus_client's default registry, which `/metrics` and the
multi-process files of `omnizap serve` read.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

CYCLE_STATUSES = ("completed", "skipped", "failed")
CYCLE_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000)


class ClassificationMetrics:
    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.cycle_duration = Histogram(
            "omnizap_sticker_classification_cycle_duration_ms",
            "Duration of classification cycles, in milliseconds.",
            ["status"],
            buckets=CYCLE_BUCKETS_MS,
            registry=registry,
        )
        self.cycles = Counter(
            "omnizap_sticker_classification_cycle",
            "Classification cycles run, by how they ended.",
            ["status"],
            registry=registry,
        )
        self.assets = Counter(
            "omnizap_sticker_classification_assets",
            "Assets handled by classification, by outcome.",
            ["outcome"],
            registry=registry,
        )

    def cycle(self, status: str, duration_ms: float) -> None:
        self.cycle_duration.labels(status).observe(duration_ms)
        self.cycles.labels(status).inc()

    def outcomes(self, counts: Mapping[str, int]) -> None:
        for outcome, count in counts.items():
            if count:
                self.assets.labels(outcome).inc(count)


@functools.cache
def classification_metrics() -> ClassificationMetrics:
    """The process's instance (metrics can be registered only once per registry)."""
    return ClassificationMetrics()
