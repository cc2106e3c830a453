"""Catalog task handlers: `ranking_refresh` builds score snapshots and ranking generations.

The build used to run inside every API process (≈2 s of CPU per generation on 10,000 packs, paid
by whichever worker was answering requests). It is a task now, run by whatever executes tasks (the
inline poller of `omnizap serve`, or dedicated workers); API processes only adopt what it
publishes (`CatalogService`).

Payloads (what the outbox consumer and the scheduler enqueue):

- `{"pack_ids": ["…", …]}`: targeted. Recomputes those packs' snapshots (and those of listed packs
  whose snapshot is missing or stale), deletes the snapshots of named packs that are gone, and
  publishes a new generation if an order changed: not sooner than
  STICKER_CATALOG_RANKING_DEBOUNCE_SECONDS after the previous one when packs joined or left the
  listing, STICKER_CATALOG_RANKING_REFRESH_SECONDS when likes and opens only reordered it.
- `{}` or `{"full": true}`: full rebuild of every reachable pack, the cadence run every
  STICKER_SCORE_SNAPSHOT_REFRESH_INTERVAL_MS.
- `{"pack_ids": [], "follow_up": true}`: enqueued by this handler when a generation it wanted to
  publish was debounced; it runs when the debounce window ends and publishes without waiting again.
  One follow-up per superseded generation and window (its idempotency key names both), however many
  refreshes were debounced meanwhile.

Idempotent: a refresh recomputes from the database whatever ran before, so a retried or duplicated
task only costs time. A task that loses its lease stops before writing more (`RefreshAbandoned`).
"""

from __future__ import annotations

import os
import socket
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from omnizap.catalog.derive import SNAPSHOT_READ_FLAG
from omnizap.catalog.rankings import RankingStore, RefreshResult
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.queue.protocol import Queue
from omnizap.platform.queue.specs import TASK_QUEUE

RANKING_REFRESH = "ranking_refresh"
MAX_NAMED_PACKS = 50_000  # a payload naming more is a producer bug, not a refresh
FOLLOW_UP_PRIORITY = 60

# One store per database in this process: it remembers what it computed and wrote (classification
# facts, quality bases, snapshot fingerprints), so consecutive refreshes skip that work.
_stores: weakref.WeakKeyDictionary[Database, RankingStore] = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def _store(database: Database, settings: Settings) -> RankingStore:
    with _stores_lock:
        store = _stores.get(database)
        if store is None or store.settings is not settings:
            name = f"{socket.gethostname()}:{os.getpid()}:tasks"
            store = RankingStore(database, settings, name)
            _stores[database] = store
        return store


def parse_payload(payload: Mapping[str, Any] | None) -> tuple[list[str] | None, bool]:
    """(pack ids or None for a full rebuild, follow-up?) from a `ranking_refresh` payload."""
    payload = payload or {}
    if not isinstance(payload, Mapping):
        raise ValueError(f"ranking_refresh payload must be an object, got {type(payload).__name__}")
    follow_up = bool(payload.get("follow_up"))
    if payload.get("full") or "pack_ids" not in payload:
        return None, follow_up
    raw = payload["pack_ids"]
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise ValueError('ranking_refresh "pack_ids" must be a list of pack id strings')
    if len(raw) > MAX_NAMED_PACKS:
        raise ValueError(f'ranking_refresh "pack_ids" names {len(raw)} packs; at most {MAX_NAMED_PACKS}')
    ids = []
    for value in raw:
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise ValueError(f'ranking_refresh "pack_ids" holds {value!r}, not a pack id')
        ids.append(str(value).strip())
    return list(dict.fromkeys(ids)), follow_up


def follow_up_key(result: RefreshResult) -> str:
    """One follow-up per generation it would supersede and window: deferrals share it, and a pack
    joining the listing is not held back by a follow-up queued for the longer reorder window."""
    return f"{RANKING_REFRESH}:follow-up:after-generation-{result.generation_id or 0}:{result.window}"


def enqueue_follow_up(database: Database, result: RefreshResult) -> bool:
    """Queue the refresh that publishes what `result` deferred; False if one is queued already
    (the idempotency key dedupes concurrent deferrals)."""
    assert result.follow_up_at is not None
    return Queue(database, TASK_QUEUE).enqueue(
        values={"task_type": RANKING_REFRESH, "payload": {"pack_ids": [], "follow_up": True}},
        idempotency_key=follow_up_key(result),
        priority=FOLLOW_UP_PRIORITY,
        available_at=max(result.follow_up_at, utcnow()),
    )


def ranking_refresh(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """Handler of `ranking_refresh` tasks (payloads in the module doc); returns the refresh summary."""
    pack_ids, follow_up = parse_payload(payload)
    store = _store(context.database, context.settings)
    result = store.refresh(
        pack_ids,
        snapshot_read=context.flags.decider(SNAPSHOT_READ_FLAG),
        debounce=not follow_up,
        heartbeat=context.heartbeat,
    )
    summary = result.summary()
    if result.follow_up_at is not None:
        summary["follow_up_enqueued"] = enqueue_follow_up(context.database, result)
    return summary


TASK_HANDLERS = {RANKING_REFRESH: ranking_refresh}
