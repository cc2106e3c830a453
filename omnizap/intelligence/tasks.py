"""Task handlers of the intelligence jobs, by task type, for the worker and the inline poller.

Each has the TaskContext signature (omnizap/platform/queue/context.py): it returns a summary that
is logged with the task, and raises to fail the task (retried with backoff, dead-lettered after
the last attempt). Heavy modules load inside the handlers, so importing this costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omnizap.platform.queue.context import TaskContext, TaskHandler

CLASSIFICATION_CYCLE = "classification_cycle"


def classification_cycle(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Pending assets, then the reprocess queue (omnizap/intelligence/classification/cycle.py).

    A classifier outage raises, so the task is retried with backoff while the assets stay pending."""
    from omnizap.intelligence.classification.cycle import ClassificationCycle

    cycle = ClassificationCycle(
        settings=context.settings,
        database=context.database,
        storage=context.storage,
        worker=context.worker or "classification",
        heartbeat=context.heartbeat,
    )
    report = cycle.run()
    return {**report.as_dict(), "trigger": payload.get("reason")}


TASK_HANDLERS: dict[str, TaskHandler] = {CLASSIFICATION_CYCLE: classification_cycle}
