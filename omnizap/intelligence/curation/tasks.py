"""Worker-queue handlers of theme curation (`curation_cycle`) and rebuild (`rebuild_cycle`).

Both are idempotent: each cycle plans from the data as it is now, so a retried or repeated task
does only what is still to do. Payload (optional): `{"dry_run": true}` plans without writing.
A cycle that finds the other one running (the `auto_theme_packs` lease taken) raises TaskDeferred:
the task goes back to the queue until that lease ends, without counting an attempt, instead of
completing without doing anything. A lost lease or a database error raises, so the task is retried.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from omnizap.intelligence.curation.cycle import CycleKind, run_cycle
from omnizap.platform.queue.context import TaskContext, TaskDeferred, TaskHandler


def _dry_run(payload: Mapping[str, Any]) -> bool:
    value = payload.get("dry_run", False) if isinstance(payload, Mapping) else False
    if not isinstance(value, bool):
        raise ValueError(f"payload dry_run must be true or false, got {value!r}")
    return value


def _run(kind: CycleKind, context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    holder = (
        f"{context.worker or 'worker'}:{context.task_type or kind}:{context.task_id}"
        if context.task_id is not None
        else None
    )
    summary = run_cycle(
        kind,
        database=context.database,
        settings=context.settings,
        dry_run=_dry_run(payload or {}),
        holder=holder,
        heartbeat=context.heartbeat,
    )
    summary.pop("plan", None)  # a dry run's full plan is for the CLI, not the task log
    if summary["status"] == "busy":
        expires = summary.get("lease_expires_at")
        raise TaskDeferred(
            f"the {kind} cycle found the auto_theme_packs lease held by {summary.get('lease_holder')}"
            f" until {expires}",
            retry_at=dt.datetime.fromisoformat(expires) if expires else None,
        )
    return summary


def curation_cycle(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return _run("curation", context, payload)


def rebuild_cycle(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return _run("rebuild", context, payload)


TASK_HANDLERS: dict[str, TaskHandler] = {"curation_cycle": curation_cycle, "rebuild_cycle": rebuild_cycle}
