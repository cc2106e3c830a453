"""Task handlers of the delivery part, for the worker pipeline (`TASK_HANDLERS`).

`object_storage_sync` uploads sticker files to the object store:

- payload `{}`: one periodic batch (STICKER_OBJECT_STORAGE_SYNC_BATCH_SIZE) of the oldest assets
  never uploaded; schedule it every minute or so, and it also retries earlier failures;
- payload `{"asset_ids": [...]}` (at most 500): exactly these, e.g. enqueued for the
  STICKER_ASSET_CREATED outbox event so a new sticker is uploaded within seconds.

Idempotent: an asset already uploaded is only confirmed by HEAD. When the store is unreachable the
handler raises (the queue retries with backoff); a file that cannot be uploaded is reported in the
summary and left on disk, never lost. With object storage off (or
STICKER_OBJECT_STORAGE_UPLOAD_ON_WRITE=false) the task does nothing and says so.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from omnizap.delivery.sync import ObjectSync
from omnizap.platform.queue.context import TaskContext, TaskHandler
from omnizap.platform.storage import ObjectStorageConfig, S3Storage

OBJECT_STORAGE_SYNC = "object_storage_sync"
MAX_ASSET_IDS = 500


@functools.lru_cache(maxsize=4)
def _store(config: ObjectStorageConfig) -> S3Storage:
    """One client per configuration per process: building a boto3 client costs tens of ms."""
    return S3Storage(config)


def _asset_ids(payload: Mapping[str, Any]) -> list[str] | None:
    value = payload.get("asset_ids")
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, str) and 0 < len(item) <= 36 for item in value
    ):
        raise ValueError("payload asset_ids must be a list of sticker asset ids (strings of 1-36 chars)")
    if len(value) > MAX_ASSET_IDS:
        raise ValueError(f"payload asset_ids has {len(value)} ids; enqueue at most {MAX_ASSET_IDS} per task")
    return value


def sync_object_storage(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = context.settings
    asset_ids = _asset_ids(payload)
    if not settings.sticker_object_storage_enabled:
        return {"skipped": "object storage is off (STICKER_OBJECT_STORAGE_ENABLED)"}
    if not settings.sticker_object_storage_upload_on_write:
        return {"skipped": "uploads are manual (STICKER_OBJECT_STORAGE_UPLOAD_ON_WRITE=false)"}
    # A configuration that cannot work raises ObjectStorageConfigError, failing the task by name.
    store = _store(ObjectStorageConfig.from_settings(settings))
    sync = ObjectSync(context.database, context.storage, store)
    if asset_ids is not None:
        report = sync.sync_assets(asset_ids, should_continue=context.heartbeat)
    else:
        report = sync.sync_pending(
            settings.sticker_object_storage_sync_batch_size, should_continue=context.heartbeat
        )
    summary = report.to_dict()
    summary["problems"] = summary["problems"][:20]  # a summary, not a log
    if report.has_problems:
        context.logger.warning("object storage sync: %s", {k: v for k, v in summary.items() if v})
    return summary


TASK_HANDLERS: dict[str, TaskHandler] = {OBJECT_STORAGE_SYNC: sync_object_storage}
