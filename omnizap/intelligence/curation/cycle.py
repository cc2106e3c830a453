"""One curation or rebuild cycle: lease, snapshot, plan, apply, metrics, summary.

Both cycles edit the same auto packs, so both hold the `auto_theme_packs` lease for the whole
cycle (the original let a curation and a rebuild worker race, pipeline §0). The lease is renewed in
the background every third of STICKER_AUTO_PACK_BY_TAGS_LEASE_SECONDS, so a crashed cycle blocks
the next one for at most that long. A cycle that finds the lease taken ends at once with status
`busy` and changes nothing (as a task it is deferred until the lease ends, `tasks.py`). A dry run
reads and plans without the lease and writes nothing.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from omnizap.config import Settings
from omnizap.core.errors import InvalidInput
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.packs.service import PackService
from omnizap.intelligence.curation.applier import ApplyResult, LeaseLost, PlanApplier
from omnizap.intelligence.curation.planner import Plan, plan_curation, plan_rebuild
from omnizap.intelligence.curation.policy import LEASE_NAME, CurationPolicy
from omnizap.intelligence.curation.snapshot import load_snapshot
from omnizap.platform import leases
from omnizap.platform.db import Database
from omnizap.platform.metrics.curation import CurationMetrics, default_curation_metrics

CycleKind = Literal["curation", "rebuild"]


def default_holder() -> str:
    return f"{socket.gethostname() or 'host'}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _LeaseKeeper:
    """Confirms the lease before each write: the background renewal still holds it, and the
    task's own heartbeat says so too. Either failing raises LeaseLost before the write."""

    def __init__(self, lease: leases.KeptLease, heartbeat: Callable[[], bool] | None) -> None:
        self.lease = lease
        self.heartbeat = heartbeat

    def __call__(self) -> None:
        if not self.lease.held():
            raise LeaseLost(f"lease {LEASE_NAME!r} was lost; stopped before the next write")
        if self.heartbeat is not None and not self.heartbeat():
            raise LeaseLost("the task's lease was lost; stopped before the next write")


def _plan_summary(plan: Plan) -> dict[str, Any]:
    return {
        "candidates": plan.candidates,
        "accepted": plan.accepted,
        "planned_additions": plan.additions,
        "planned_removals": plan.removals,
        "planned_new_packs": len(plan.creations),
        "planned_retirements": len(plan.retirements),
        "planned_pack_edits": len(plan.edits),
        "skipped": dict(sorted(plan.skipped.items())),
    }


def _result_summary(result: ApplyResult) -> dict[str, Any]:
    return {
        "added": result.added,
        "removed": result.removed_total,
        "removed_by_reason": dict(sorted(result.removed.items())),
        "released": result.released,
        "packs_created": result.packs_created,
        "packs_updated": result.packs_updated,
        "packs_retired": result.packs_retired,
        "refused": dict(sorted(result.refused.items())),
    }


def run_cycle(
    kind: CycleKind,
    *,
    database: Database,
    settings: Settings,
    dry_run: bool = False,
    holder: str | None = None,
    heartbeat: Callable[[], bool] | None = None,
    metrics: CurationMetrics | None = None,
    packs: PackService | None = None,
) -> dict[str, Any]:
    """Run one cycle and return its summary (`status`: ok, idle, busy, disabled or dry_run).

    Raises on a misconfigured owner, on database errors and on a lost lease (LeaseLost), after
    counting the cycle as failed; whatever was written before stays consistent.
    """
    metrics = metrics or default_curation_metrics()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {"cycle": kind, "dry_run": dry_run, "timings_ms": timings}
    status = "failed"
    try:
        enabled = (
            settings.sticker_auto_pack_by_tags_enabled
            if kind == "curation"
            else settings.sticker_auto_pack_by_tags_rebuild_enabled
        )
        if not enabled:
            status = "disabled"
            return summary
        packs = packs or PackService(database, settings)
        policy = CurationPolicy.from_settings(settings, pack_item_limit=packs.max_items)
        try:
            owner = normalize_owner_jid(policy.owner_jid)
        except InvalidInput as exc:
            raise InvalidInput(f"STICKER_AUTO_PACK_OWNER_JID is not a usable owner: {exc}") from exc
        policy = replace(policy, owner_jid=owner)
        if dry_run:
            plan = _plan(kind, database, policy, owner, timings)
            summary.update(_count_scan(plan, metrics, kind))
            summary["plan"] = describe_plan(plan)
            status = "dry_run"
            return summary
        lease = leases.KeptLease(database, LEASE_NAME, holder or default_holder(), policy.lease_seconds)
        if not lease.take():
            other = leases.current_holder(database, LEASE_NAME)
            summary["lease_holder"] = other[0] if other else None
            summary["lease_expires_at"] = other[1].isoformat() if other else None
            status = "busy"
            return summary
        with lease:
            plan = _plan(kind, database, policy, owner, timings)
            summary.update(_count_scan(plan, metrics, kind))
            if plan.is_empty:
                status = "idle"
                summary.update(_result_summary(ApplyResult()))
                return summary
            keeper = _LeaseKeeper(lease, heartbeat)
            applying = time.perf_counter()
            result = PlanApplier(packs, policy, keeper).apply(plan)
            timings["write_ms"] = round((time.perf_counter() - applying) * 1000, 1)
        summary.update(_result_summary(result))
        metrics.added.inc(result.added)
        for reason, count in result.removed.items():
            metrics.removed.labels(reason).inc(count)
        metrics.packs_created.inc(result.packs_created)
        metrics.packs_retired.inc(result.packs_retired)
        status = "ok"
        return summary
    finally:
        duration_ms = (time.perf_counter() - started) * 1000
        summary["status"] = status
        summary["duration_ms"] = round(duration_ms, 1)
        metrics.cycles.labels(kind, status).inc()
        metrics.duration.labels(kind, status).observe(duration_ms)


def _plan(
    kind: CycleKind, database: Database, policy: CurationPolicy, owner: str, timings: dict[str, float]
) -> Plan:
    started = time.perf_counter()
    snapshot = load_snapshot(database, policy, owner)
    loaded = time.perf_counter()
    plan = plan_curation(snapshot, policy) if kind == "curation" else plan_rebuild(snapshot, policy)
    timings["read_ms"] = round((loaded - started) * 1000, 1)
    timings["plan_ms"] = round((time.perf_counter() - loaded) * 1000, 1)
    plan.scanned = snapshot.scanned
    return plan


def _count_scan(plan: Plan, metrics: CurationMetrics, kind: str) -> dict[str, Any]:
    metrics.scanned.labels(kind).inc(plan.scanned)
    for reason, count in plan.skipped.items():
        metrics.skipped.labels(kind, reason).inc(count)
    return {"scanned": plan.scanned, **_plan_summary(plan)}


def describe_plan(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (what a dry run prints)."""
    return {
        "edits": [
            {
                "pack_id": edit.pack_id,
                "theme_key": edit.theme_key,
                "volume": edit.volume,
                "add": list(edit.add),
                "remove": [{"sticker_id": sid, "reason": reason} for sid, reason in edit.remove],
                "rename": edit.name,
                "pack_status": edit.pack_status,
            }
            for edit in plan.edits
        ],
        "new_packs": [
            {
                "theme_key": new.theme_key,
                "sensitive": new.sensitive,
                "volume": new.volume,
                "name": new.name,
                "stickers": list(new.stickers),
            }
            for new in plan.creations
        ],
        "retirements": [
            {
                "pack_id": retired.pack_id,
                "theme_key": retired.theme_key,
                "volume": retired.volume,
                "reason": retired.reason,
                "released": len(retired.released),
                "removed": dict(Counter(reason for _, reason in retired.removed)),
            }
            for retired in plan.retirements
        ],
    }
