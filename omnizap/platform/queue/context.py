"""What a task handler receives: the services it may use and a way to keep its lease alive.

Handlers live with their domain (intelligence, delivery, catalog) and have the signature
`handler(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]`: the returned
summary is logged with the task. Raising fails the task (it is retried with backoff, and lands in
the dead-letter table after its last attempt). A handler that works longer than a lease calls
`context.heartbeat()` now and then; when that returns False the lease was lost (another worker may
have the task) and the handler should stop without committing more work.

A handler that cannot run now for a reason that is no failure (another process holds the lease
the job needs) raises `TaskDeferred`: the task goes back to pending until `retry_at`, the attempt
is not counted, and the worker reports the outcome `deferred` (log, metric, `omnizap queue status`)
instead of completing a task that did nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.storage.base import Storage


class TaskDeferred(Exception):
    """The task cannot run now and should run again at `retry_at` (None: soon); not a failure."""

    def __init__(self, reason: str, *, retry_at: dt.datetime | None = None) -> None:
        super().__init__(reason)
        self.retry_at = retry_at


def _always_held() -> bool:
    return True


@dataclass
class TaskContext:
    settings: Settings
    database: Database
    storage: Storage
    flags: FeatureFlags
    task_type: str = ""
    task_id: int | None = None
    attempt: int = 1
    worker: str = ""
    heartbeat: Callable[[], bool] = _always_held
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("omnizap.tasks"))


class TaskHandler(Protocol):
    def __call__(self, context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any] | None: ...
