"""Metrics of the queue consumers: tasks and events run, by outcome and consuming mode.

- `omnizap_worker_tasks_total{queue,task_type,mode,outcome}`: outcome completed|deferred|retry|dead|lost
  (deferred: the lease its job needs was taken; put back without counting an attempt)
- `omnizap_worker_task_duration_ms{queue,task_type,mode}` (histogram)

They live on prometheus_client's default registry: inside `omnizap serve` (the inline poller) they
are shared through PROMETHEUS_MULTIPROC_DIR like the HTTP metrics; a dedicated worker serves them
itself with `omnizap worker … --metrics-port`.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TASK_DURATION_BUCKETS_MS = (5, 20, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)

TASKS_TOTAL = Counter(
    "omnizap_worker_tasks_total",
    "Queue rows a worker ran, by outcome (completed, deferred, retry, dead, lost lease).",
    ["queue", "task_type", "mode", "outcome"],
)
TASK_DURATION_MS = Histogram(
    "omnizap_worker_task_duration_ms",
    "Time a handler took, in milliseconds.",
    ["queue", "task_type", "mode"],
    buckets=TASK_DURATION_BUCKETS_MS,
)


def observe_task(*, queue: str, kind: str, mode: str, outcome: str, seconds: float) -> None:
    TASKS_TOTAL.labels(queue, kind[:64], mode, outcome).inc()
    TASK_DURATION_MS.labels(queue, kind[:64], mode).observe(seconds * 1000.0)
