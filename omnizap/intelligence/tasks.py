"""Task handlers of the intelligence jobs, by task type, for the worker and the inline poller.

Each has the TaskContext signature (omnizap/platform/queue/context.py): it returns a summary that
is logged with the task, and raises to fail the task (retried with backoff, dead-lettered after
the last attempt). Heavy modules load inside the handlers, so importing this costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omnizap.platform.queue.context import TaskContext, TaskDeferred, TaskHandler

CLASSIFICATION_CYCLE = "classification_cycle"


def classification_cycle(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Pending assets, then the reprocess queue (omnizap/intelligence/classification/cycle.py).

    A classifier outage raises, so the task is retried with backoff while the assets stay pending.
    When another worker holds the pending-assets lease the cycle still does the reprocess queue,
    then raises TaskDeferred: the task runs again when that lease ends (no attempt counted)."""
    from omnizap.intelligence.classification.cycle import ClassificationCycle

    cycle = ClassificationCycle(
        settings=context.settings,
        database=context.database,
        storage=context.storage,
        worker=context.worker or "classification",
        heartbeat=context.heartbeat,
    )
    report = cycle.run()
    summary = {**report.as_dict(), "trigger": payload.get("reason")}
    if report.lease_busy is not None:
        done = {"reprocess": summary["reprocess"], "reprocess_rows": summary["reprocess_rows"]}
        raise TaskDeferred(f"{report.lease_busy}; did {done}", retry_at=report.lease_busy.retry_at)
    return summary


TASK_HANDLERS: dict[str, TaskHandler] = {CLASSIFICATION_CYCLE: classification_cycle}
