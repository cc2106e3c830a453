"""The four rollout flags of the runbook and what each means when its row is absent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlagDefault:
    name: str
    is_enabled: int
    rollout_percent: int
    fallback: bool
    description: str


FLAG_DEFAULTS: dict[str, FlagDefault] = {
    flag.name: flag
    for flag in (
        FlagDefault("enable_ranking_snapshot_read", 1, 100, True, "Catalog reads ranking score snapshots"),
        FlagDefault("enable_domain_event_outbox", 1, 100, True, "Outbox consumer dispatches domain events"),
        FlagDefault(
            "enable_worker_dedicated_processes", 0, 100, False, "Dedicated workers consume tasks, not inline"
        ),
        FlagDefault(
            "enable_object_storage_delivery", 0, 100, False, "Sticker files delivered by signed object URL"
        ),
    )
}
