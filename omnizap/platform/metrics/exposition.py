"""One `/metrics` scrape: this process's registry, or every worker's files in multi-process mode.

Multi-process mode (prometheus_client's): each worker process writes its counters and histograms to
memory-mapped files under PROMETHEUS_MULTIPROC_DIR, and a scrape served by any worker adds up the
files of all workers, living and exited, so the counts are those of the whole server. The variable
must be in the environment before the workers import prometheus_client; `omnizap serve` sets it and
empties the folder at start (`prepare_multiprocess_dir`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the original's (prom-client) exposition format


class SupportsCollect(Protocol):
    def collect(self) -> Iterable[Any]: ...


def values_are_shared() -> bool:
    """True when prometheus_client was imported with PROMETHEUS_MULTIPROC_DIR set (file-backed values)."""
    return values.ValueClass is not values.MutexValue


def prepare_multiprocess_dir(path: Path) -> Path:
    """Create `path` and remove the metric files in it: counts left by an earlier server run must not
    be added to this one's. Only prometheus_client's `*.db` files go; nothing else is touched."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("*.db"):
        leftover.unlink()
    return path


class _Forward:
    """Collects from another registry, so per-scrape collectors can be added without touching it.

    `*_created` samples are dropped: multi-process mode has none, and both modes should expose the
    same series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        for family in self.registry.collect():
            if family.name.endswith("_created"):
                continue
            family.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
            yield family


class MetricsExposition:
    """Renders the Prometheus text for a scrape: recorded metrics plus scrape-time collectors."""

    def __init__(self, *, own_registry: CollectorRegistry | None, multiprocess_dir: Path | None) -> None:
        if multiprocess_dir is not None and not values_are_shared():
            raise RuntimeError(
                "PROMETHEUS_MULTIPROC_DIR is configured but prometheus_client keeps values in memory: "
                "the variable must be set in the environment before the process starts"
            )
        if multiprocess_dir is None and own_registry is None:
            raise ValueError("single-process metrics need the registry they were recorded in")
        self.own_registry = own_registry
        self.multiprocess_dir = multiprocess_dir

    @property
    def multiprocess(self) -> bool:
        return self.multiprocess_dir is not None

    def render(self, extra_collectors: Iterable[SupportsCollect] = ()) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        if self.multiprocess_dir is not None:
            MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        else:
            assert self.own_registry is not None
            registry.register(_Forward(self.own_registry))
        for collector in extra_collectors:
            registry.register(collector)
        return generate_latest(registry)
