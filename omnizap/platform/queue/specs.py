"""The three tables that speak the queue protocol, and which of their columns mean what."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from omnizap.platform.db.schema import (
    domain_event_outbox,
    domain_event_outbox_dlq,
    sticker_asset_reprocess_dlq,
    sticker_asset_reprocess_queue,
    sticker_worker_task_dlq,
    sticker_worker_task_queue,
)


@dataclass(frozen=True)
class QueueSpec:
    """One queue table and its dead-letter table.

    `kind_column` is what workers filter on (task type, event type, reprocess reason);
    `available_column` holds "not before"; `copied_columns` go to the dead-letter row beside the
    protocol's own columns, and back when a purged row is replayed.
    """

    name: str
    table: sa.Table
    dlq_table: sa.Table
    dlq_ref_column: str
    kind_column: str
    available_column: str
    copied_columns: tuple[str, ...]
    notify_channel: str


TASK_QUEUE = QueueSpec(
    name="sticker_worker_tasks",
    table=sticker_worker_task_queue,
    dlq_table=sticker_worker_task_dlq,
    dlq_ref_column="task_id",
    kind_column="task_type",
    available_column="scheduled_at",
    copied_columns=("task_type", "payload", "idempotency_key"),
    notify_channel="omnizap_worker_tasks",
)

OUTBOX = QueueSpec(
    name="domain_event_outbox",
    table=domain_event_outbox,
    dlq_table=domain_event_outbox_dlq,
    dlq_ref_column="outbox_event_id",
    kind_column="event_type",
    available_column="available_at",
    copied_columns=("event_type", "aggregate_type", "aggregate_id", "payload", "idempotency_key"),
    notify_channel="omnizap_domain_events",
)

REPROCESS_QUEUE = QueueSpec(
    name="sticker_reprocess",
    table=sticker_asset_reprocess_queue,
    dlq_table=sticker_asset_reprocess_dlq,
    dlq_ref_column="reprocess_id",
    kind_column="reason",
    available_column="scheduled_at",
    copied_columns=("asset_id", "reason", "idempotency_key"),
    notify_channel="omnizap_reprocess",
)

QUEUES: dict[str, QueueSpec] = {spec.name: spec for spec in (TASK_QUEUE, OUTBOX, REPROCESS_QUEUE)}
