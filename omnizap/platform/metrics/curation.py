"""Theme curation metrics (pipeline §2.13): cycles by kind and status, and what the cycles changed.

- `omnizap_sticker_autopack_cycle_total{cycle,status}`: cycles run; cycle is `curation` or
  `rebuild`, status `ok`, `idle` (nothing to change), `busy` (the other cycle held the lease),
  `disabled`, `dry_run` or `failed`.
- `omnizap_sticker_autopack_cycle_duration_ms{cycle,status}` (histogram, the original's name).
- `omnizap_sticker_autopack_assets_scanned_total{cycle}` (the original's name).
- `omnizap_sticker_autopack_assets_added_total` (the original's name).
- `omnizap_sticker_autopack_assets_removed_total{reason}`: misfits taken out by rebuild.
- `omnizap_sticker_autopack_assets_skipped_total{cycle,reason}`: rows and candidates left out.
- `omnizap_sticker_autopack_packs_created_total`, `omnizap_sticker_autopack_packs_retired_total`.

Label values are the fixed reason constants of the curation planner and row reader, so no data
can create new series. The original's rate gauges are left out: they follow from these counters.
"""

from __future__ import annotations

import threading

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

CYCLE_DURATION_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)


class CurationMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.cycles = Counter(
            "omnizap_sticker_autopack_cycle_total",
            "Theme curation and rebuild cycles, by cycle and outcome.",
            ["cycle", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "omnizap_sticker_autopack_cycle_duration_ms",
            "Duration of one curation or rebuild cycle, in milliseconds.",
            ["cycle", "status"],
            buckets=CYCLE_DURATION_BUCKETS_MS,
            registry=registry,
        )
        self.scanned = Counter(
            "omnizap_sticker_autopack_assets_scanned_total",
            "Classification rows read by curation and rebuild cycles.",
            ["cycle"],
            registry=registry,
        )
        self.added = Counter(
            "omnizap_sticker_autopack_assets_added_total",
            "Stickers added to auto theme packs.",
            registry=registry,
        )
        self.removed = Counter(
            "omnizap_sticker_autopack_assets_removed_total",
            "Misfit stickers taken out of auto theme packs, by reason.",
            ["reason"],
            registry=registry,
        )
        self.skipped = Counter(
            "omnizap_sticker_autopack_assets_skipped_total",
            "Rows and candidates a cycle left out, by reason.",
            ["cycle", "reason"],
            registry=registry,
        )
        self.packs_created = Counter(
            "omnizap_sticker_autopack_packs_created_total",
            "Auto theme pack volumes started.",
            registry=registry,
        )
        self.packs_retired = Counter(
            "omnizap_sticker_autopack_packs_retired_total",
            "Auto theme pack volumes retired (under the minimum size).",
            registry=registry,
        )


_default: CurationMetrics | None = None
_default_lock = threading.Lock()


def default_curation_metrics() -> CurationMetrics:
    """The process-wide instance in prometheus_client's default registry (which `/metrics` and the
    multi-process files read), created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CurationMetrics(REGISTRY)
        return _default
