"""The background pipeline, composed: which task types exist, who consumes them, what events start.

This is the one place that knows every domain's handlers (like `runtime.py` knows every service),
so the platform's queue code stays free of domain imports.

Consuming modes. Each task type (and the outbox, as `domain_event_outbox`) is consumed either by the
inline poller of `omnizap serve` or by a dedicated `omnizap worker` process. The decision is
`enable_worker_dedicated_processes` for the subject `<cohort>:<task type>`, asked the same way by
both sides, so at a partial rollout every type is consumed by exactly one mode within a cohort
(the original asked with different subjects on each side, so a type could be consumed by both
modes or by neither). The cohort is STICKER_WORKER_PIPELINE_COHORT_KEY, else STICKER_DEDICATED_
WORKER_COHORT_KEY, else the host name, in that order for every process, so the server and the
workers of one host share it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omnizap.catalog import repository as catalog_repository
from omnizap.config import Settings, cohort_key
from omnizap.platform.outbox.consumer import (
    ConsumerOptions,
    DomainEvent,
    FollowUp,
    OutboxConsumer,
    OutboxHandler,
)
from omnizap.platform.outbox.events import (
    ENGAGEMENT_RECORDED,
    PACK_UPDATED,
    STICKER_ASSET_CREATED,
    STICKER_CLASSIFIED,
)
from omnizap.platform.queue.context import TaskContext, TaskHandler
from omnizap.platform.queue.protocol import Queue, RetryPolicy
from omnizap.platform.queue.scheduler import Schedule, Scheduler
from omnizap.platform.queue.specs import OUTBOX, TASK_QUEUE
from omnizap.platform.queue.waker import waker_for
from omnizap.platform.queue.worker import QueueWorker, WorkerOptions
from omnizap.runtime import Runtime

logger = logging.getLogger(__name__)

DEDICATED_FLAG = "enable_worker_dedicated_processes"
OUTBOX_FLAG = "enable_domain_event_outbox"
OUTBOX_CONSUMER = "domain_event_outbox"

CLASSIFICATION_CYCLE = "classification_cycle"
CURATION_CYCLE = "curation_cycle"
REBUILD_CYCLE = "rebuild_cycle"
RANKING_REFRESH = "ranking_refresh"
OBJECT_STORAGE_SYNC = "object_storage_sync"
CHAT_MESSAGE = "chat_message"  # chat networks built from Settings; live ones have their own types

# `omnizap worker NAME` → the task types it consumes ("outbox" and "scheduler" are special).
WORKER_TASK_TYPES: dict[str, tuple[str, ...]] = {
    "classification": (CLASSIFICATION_CYCLE,),
    "curation": (CURATION_CYCLE,),
    "rebuild": (REBUILD_CYCLE,),
    "ranking": (RANKING_REFRESH,),
    "storage": (OBJECT_STORAGE_SYNC,),
    "chat": (CHAT_MESSAGE,),
}
WORKER_NAMES: tuple[str, ...] = (*WORKER_TASK_TYPES, "outbox", "scheduler")


def task_handlers(settings: Settings) -> dict[str, TaskHandler]:
    """Every task type this release can run, with its handler (imported here, when first needed, so
    `omnizap --help` and the web workers never load them)."""
    from omnizap.catalog.tasks import TASK_HANDLERS as catalog_tasks
    from omnizap.chat.tasks import TASK_HANDLERS as chat_tasks
    from omnizap.delivery.tasks import TASK_HANDLERS as delivery_tasks
    from omnizap.intelligence.curation.tasks import TASK_HANDLERS as curation_tasks
    from omnizap.intelligence.tasks import TASK_HANDLERS as classification_tasks

    handlers: dict[str, TaskHandler] = {
        **classification_tasks,
        **curation_tasks,
        **catalog_tasks,
        **delivery_tasks,
        **chat_tasks,
    }
    if not settings.sticker_object_storage_enabled:
        handlers.pop(OBJECT_STORAGE_SYNC, None)
    return handlers


# --- queues and contexts -------------------------------------------------------------------------
def task_queue(runtime: Runtime) -> Queue:
    settings = runtime.settings
    return Queue(
        runtime.database,
        TASK_QUEUE,
        retry=RetryPolicy.from_settings(settings),
        lease_seconds=settings.sticker_worker_task_lock_timeout_seconds,
    )


def outbox_queue(runtime: Runtime) -> Queue:
    settings = runtime.settings
    return Queue(
        runtime.database,
        OUTBOX,
        retry=RetryPolicy.from_settings(settings),
        lease_seconds=settings.domain_event_outbox_lock_timeout_seconds,
    )


def base_context(runtime: Runtime) -> TaskContext:
    return TaskContext(
        settings=runtime.settings,
        database=runtime.database,
        storage=runtime.storage,
        flags=runtime.flags,
    )


def pipeline_cohort(settings: Settings) -> str:
    """The cohort of this process for consumer modes, the same for `serve` and every worker."""
    return cohort_key(
        settings.sticker_worker_pipeline_cohort_key or settings.sticker_dedicated_worker_cohort_key
    )


def dedicated_consumes(runtime: Runtime, cohort: str, kind: str) -> bool:
    """True when, for this cohort, `kind` belongs to the dedicated workers (else to the inline poller)."""
    return runtime.flags.is_enabled(DEDICATED_FLAG, f"{cohort}:{kind}", fallback=False)


# --- schedules and events ------------------------------------------------------------------------
def schedules(settings: Settings, handlers: Mapping[str, TaskHandler]) -> list[Schedule]:
    """The periodic cycles (cadences from the original's variables), for the types that exist."""
    planned = [
        Schedule(CLASSIFICATION_CYCLE, settings.sticker_worker_classification_cadence_ms / 1000, priority=70),
        Schedule(CURATION_CYCLE, settings.sticker_worker_curation_cadence_ms / 1000, priority=55),
        Schedule(REBUILD_CYCLE, settings.sticker_worker_rebuild_cadence_ms / 1000, priority=50),
        Schedule(
            RANKING_REFRESH,
            settings.sticker_score_snapshot_refresh_interval_ms / 1000,
            priority=45,
            payload={"full": True},
        ),
        Schedule(OBJECT_STORAGE_SYNC, settings.sticker_object_storage_sync_cadence_ms / 1000, priority=40),
    ]
    return [schedule for schedule in planned if schedule.task_type in handlers]


def outbox_handlers(handlers: Mapping[str, TaskHandler]) -> dict[str, OutboxHandler]:
    """What each domain event starts, limited to the task types that exist (pipeline §6.3)."""

    def only_known(follow_ups: Sequence[FollowUp]) -> list[FollowUp]:
        return [follow_up for follow_up in follow_ups if follow_up.task_type in handlers]

    def asset_created(context: TaskContext, event: DomainEvent) -> list[FollowUp]:
        asset_id = str(event.payload.get("asset_id") or event.aggregate_id)
        return only_known(
            [
                FollowUp(CLASSIFICATION_CYCLE, {"reason": "domain_event"}, priority=80, keyed="per_window"),
                # New stickers reach the object store within seconds, not at the next periodic sync.
                FollowUp(OBJECT_STORAGE_SYNC, {"asset_ids": [asset_id]}, priority=75),
            ]
        )

    def asset_classified(context: TaskContext, event: DomainEvent) -> list[FollowUp]:
        asset_id = str(event.payload.get("asset_id") or event.aggregate_id)
        with context.database.read() as connection:
            pack_ids = sorted(catalog_repository.packs_holding_assets(connection, [asset_id]))
        follow_ups = [FollowUp(CURATION_CYCLE, {"reason": "domain_event"}, priority=65, keyed="per_window")]
        if pack_ids:
            follow_ups.append(FollowUp(RANKING_REFRESH, {"pack_ids": pack_ids}, priority=60))
        return only_known(follow_ups)

    def pack_touched(context: TaskContext, event: DomainEvent) -> list[FollowUp]:
        pack_id = str(event.payload.get("pack_id") or event.aggregate_id)
        return only_known([FollowUp(RANKING_REFRESH, {"pack_ids": [pack_id]}, priority=60)])

    return {
        STICKER_ASSET_CREATED: asset_created,
        STICKER_CLASSIFIED: asset_classified,
        PACK_UPDATED: pack_touched,
        ENGAGEMENT_RECORDED: pack_touched,
    }


# --- consumers -----------------------------------------------------------------------------------
def dedicated_worker(
    runtime: Runtime, worker_name: str, *, handlers: Mapping[str, TaskHandler] | None = None
) -> QueueWorker:
    """`omnizap worker <name>` for a task worker."""
    settings = runtime.settings
    handlers = task_handlers(settings) if handlers is None else handlers
    kinds = WORKER_TASK_TYPES[worker_name]
    missing = [kind for kind in kinds if kind not in handlers]
    if missing:
        hint = " (set STICKER_OBJECT_STORAGE_ENABLED=true)" if OBJECT_STORAGE_SYNC in missing else ""
        raise ValueError(f"this installation has no handler for {', '.join(missing)}{hint}")
    cohort = pipeline_cohort(settings)

    def allowed(kind: str) -> bool:
        if not settings.sticker_dedicated_workers_enabled:
            return False
        return settings.sticker_dedicated_worker_force_enabled or dedicated_consumes(runtime, cohort, kind)

    queue = task_queue(runtime)
    return QueueWorker(
        queue,
        handlers,
        base_context(runtime),
        WorkerOptions(
            name=f"{worker_name}@{cohort}",
            kinds=kinds,
            mode="dedicated",
            batch_size=settings.sticker_dedicated_worker_max_tasks_per_tick,
            poll_interval=settings.sticker_dedicated_worker_poll_interval_ms / 1000,
            allowed=allowed,
        ),
        waker=waker_for(runtime.database, [TASK_QUEUE.notify_channel]),
    )


def outbox_consumer(
    runtime: Runtime, *, mode: str, handlers: Mapping[str, TaskHandler] | None = None
) -> OutboxConsumer:
    """The outbox consumer, dedicated (`omnizap worker outbox`) or inline (in `omnizap serve`)."""
    settings = runtime.settings
    handlers = task_handlers(settings) if handlers is None else handlers
    cohort = pipeline_cohort(settings)
    # The consumer's own cohort key only changes whom the outbox flag's rollout counts it as.
    outbox_subject = (
        f"domain_event_consumer:{cohort_key(settings.sticker_domain_event_consumer_cohort_key or cohort)}"
    )

    def enabled() -> bool:
        if not settings.sticker_domain_event_consumer_enabled:
            return False
        if not runtime.flags.is_enabled(OUTBOX_FLAG, outbox_subject, fallback=True):
            return False
        if mode == "inline" and settings.sticker_worker_pipeline_inline_poller_force_enabled:
            return True
        if mode == "dedicated" and settings.sticker_dedicated_worker_force_enabled:
            return True
        return dedicated_consumes(runtime, cohort, OUTBOX_CONSUMER) == (mode == "dedicated")

    return OutboxConsumer(
        outbox_queue(runtime),
        task_queue(runtime),
        outbox_handlers(handlers),
        base_context(runtime),
        ConsumerOptions(
            name=f"outbox-{mode}@{cohort}",
            batch_size=settings.sticker_domain_event_consumer_batch_size,
            poll_interval=settings.sticker_domain_event_consumer_poller_interval_ms / 1000,
            window_seconds=settings.sticker_domain_event_consumer_window_seconds,
            enabled=enabled,
        ),
        waker=waker_for(runtime.database, [OUTBOX.notify_channel]),
    )


def live_chat_worker(runtime: Runtime, network: str) -> QueueWorker:
    """The worker of a process that holds a live chat session (`omnizap bot whatsapp-web`): it runs
    that network's `chat_message_live:<network>` tasks and nothing else, whatever the rollout flag
    says (no other process could send its replies)."""
    from omnizap.chat.tasks import live_task_handlers

    settings = runtime.settings
    handlers = live_task_handlers(network)
    return QueueWorker(
        task_queue(runtime),
        handlers,
        base_context(runtime),
        WorkerOptions(
            name=f"chat-{network}@{pipeline_cohort(settings)}",
            kinds=tuple(handlers),
            mode="dedicated",
            poll_interval=settings.sticker_dedicated_worker_poll_interval_ms / 1000,
        ),
        waker=waker_for(runtime.database, [TASK_QUEUE.notify_channel]),
    )


def inline_workers(
    runtime: Runtime, *, handlers: Mapping[str, TaskHandler] | None = None
) -> list[QueueWorker]:
    """One inline consumer per task type (a long classification cycle does not hold up ranking);
    `chat_message` gets CHAT_WORKER_THREADS of them, polling every CHAT_WORKER_POLL_INTERVAL_MS."""
    settings = runtime.settings
    handlers = task_handlers(settings) if handlers is None else handlers
    cohort = pipeline_cohort(settings)

    def allowed(kind: str) -> bool:
        if not settings.sticker_worker_pipeline_inline_poller_enabled:
            return False
        return settings.sticker_worker_pipeline_inline_poller_force_enabled or not dedicated_consumes(
            runtime, cohort, kind
        )

    def consumers(kind: str) -> list[tuple[str, float]]:
        """(name, poll interval) of each consumer of `kind`: several quick ones for chat messages,
        whose senders are waiting (bench.chat_console), one per other type."""
        if kind != CHAT_MESSAGE:
            return [(f"inline-{kind}@{cohort}", settings.sticker_worker_pipeline_poller_interval_ms / 1000)]
        poll = settings.chat_worker_poll_interval_ms / 1000
        count = settings.chat_consumers
        return [(f"inline-{kind}@{cohort}" + (f"#{n}" if n else ""), poll) for n in range(count)]

    return [
        QueueWorker(
            task_queue(runtime),
            handlers,
            base_context(runtime),
            WorkerOptions(name=name, kinds=(kind,), mode="inline", poll_interval=poll, allowed=allowed),
            waker=waker_for(runtime.database, [TASK_QUEUE.notify_channel]),
        )
        for kind in handlers
        for name, poll in consumers(kind)
    ]


def scheduler(runtime: Runtime, *, handlers: Mapping[str, TaskHandler] | None = None) -> Scheduler:
    settings = runtime.settings
    return Scheduler(
        task_queue(runtime),
        schedules(settings, task_handlers(settings) if handlers is None else handlers),
        retention=dt.timedelta(hours=settings.sticker_worker_completed_retention_hours),
        extra_queues=[outbox_queue(runtime)],
    )


@dataclass
class InlinePipeline:
    """What `omnizap serve` runs beside the web workers: scheduler, inline pollers, outbox consumer."""

    runtime: Runtime

    def __post_init__(self) -> None:
        self.scheduler = scheduler(self.runtime)
        self.workers = inline_workers(self.runtime)
        self.consumer = outbox_consumer(self.runtime, mode="inline")
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        interval = self.runtime.settings.sticker_worker_scheduler_interval_ms / 1000
        targets = [
            ("pipeline-scheduler", lambda: self.scheduler.run(interval)),
            ("pipeline-outbox", self.consumer.run),
            *((f"pipeline-{worker.options.kinds[0]}", worker.run) for worker in self.workers),
        ]
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> None:
        """Stop taking work; wait up to `timeout` seconds for running tasks to finish."""
        self.scheduler.stop()
        self.consumer.stop()
        for worker in self.workers:
            worker.stop()
        for thread in self._threads:
            thread.join(timeout)
        still_running = [thread.name for thread in self._threads if thread.is_alive()]
        if still_running:
            logger.warning("pipeline threads still busy at shutdown: %s (leases will expire)", still_running)
