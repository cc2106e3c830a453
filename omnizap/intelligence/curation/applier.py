"""Writes a plan through PackService, one pack per transaction, within the cycle's budgets.

Before every write `keep_alive` confirms the `auto_theme_packs` lease (and the task's own lease);
when it cannot, the cycle stops with what is already committed — each write is a whole pack
change with its PACK_UPDATED event, so stopping between two leaves nothing half done. A pack that
vanished or stopped being a theme pack since the plan was made is skipped and counted; database
errors propagate (the task fails and is retried).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from omnizap.core.errors import InvalidInput, PackLimitReached, PackNotFound
from omnizap.core.packs.service import PackService, ThemePackSpec
from omnizap.intelligence.curation.planner import NOT_SHAREABLE, Plan
from omnizap.intelligence.curation.policy import CurationPolicy

PACK_GONE = "pack_gone"
PACK_LIMIT = "pack_limit"
CANDIDATE_TAKEN = "candidate_taken"


class LeaseLost(RuntimeError):
    """The cycle could no longer confirm it holds the auto_theme_packs lease; it stopped writing."""


@dataclass
class ApplyResult:
    added: int = 0
    removed: Counter[str] = field(default_factory=Counter)  # reason -> stickers
    released: int = 0
    packs_created: int = 0
    packs_updated: int = 0
    packs_retired: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())


class PlanApplier:
    def __init__(self, packs: PackService, policy: CurationPolicy, keep_alive: Callable[[], None]) -> None:
        self.packs = packs
        self.policy = policy
        self.keep_alive = keep_alive

    def apply(self, plan: Plan) -> ApplyResult:
        result = ApplyResult()
        additions_left = self.policy.max_additions
        removals_left = self.policy.max_removals
        owner = self.policy.owner_jid
        for edit in plan.edits:
            # The planner already fits the budgets; these caps make the guarantee local to the writer.
            # Stickers that are not shareable always go: privacy is not rationed by a budget.
            add = edit.add[: max(0, additions_left)]
            private = [pair for pair in edit.remove if pair[1] == NOT_SHAREABLE]
            budgeted = [pair for pair in edit.remove if pair[1] != NOT_SHAREABLE]
            remove = private + budgeted[: max(0, removals_left)]
            reasons = dict(remove)
            self.keep_alive()
            try:
                change = self.packs.update_theme_pack(
                    owner,
                    edit.pack_id,
                    add=add,
                    remove=[asset_id for asset_id, _ in remove],
                    name=edit.name,
                    description=edit.description,
                    ready_min_items=self.policy.ready_min_items,
                )
            except (PackNotFound, InvalidInput):
                result.refused[PACK_GONE] += 1
                continue
            additions_left -= len(change.added)
            removals_left -= sum(1 for asset_id in change.removed if reasons.get(asset_id) != NOT_SHAREABLE)
            result.added += len(change.added)
            result.refused[CANDIDATE_TAKEN] += len(add) - len(change.added)
            for asset_id in change.removed:
                result.removed[reasons.get(asset_id, "unknown")] += 1
            result.packs_updated += int(change.changed)
        for retirement in plan.retirements:
            self.keep_alive()
            misfits = dict(retirement.removed)
            try:
                released = self.packs.retire_theme_pack(owner, retirement.pack_id)
            except (PackNotFound, InvalidInput):
                result.refused[PACK_GONE] += 1
                continue
            for asset_id in released:
                if asset_id in misfits:
                    result.removed[misfits[asset_id]] += 1
                else:
                    result.released += 1
            result.packs_retired += 1
        for volume in plan.creations:
            if additions_left < self.policy.min_group_size:
                result.refused[PACK_LIMIT] += 1
                continue
            self.keep_alive()
            spec = ThemePackSpec(
                owner_jid=owner,
                name=volume.name,
                publisher=self.policy.publisher,
                description=volume.description,
                visibility=self.policy.visibility,
                theme_key=volume.theme_key,
                volume=volume.volume,
                sensitive=volume.sensitive,
            )
            try:
                pack = self.packs.create_theme_pack(
                    spec,
                    volume.stickers[:additions_left],
                    min_items=self.policy.min_group_size,
                    ready_min_items=self.policy.ready_min_items,
                    pack_limit=self.policy.global_pack_limit,
                )
            except PackLimitReached:
                result.refused[PACK_LIMIT] += 1
                continue
            if pack is None:
                result.refused[CANDIDATE_TAKEN] += len(volume.stickers)
                continue
            additions_left -= pack.sticker_count
            result.added += pack.sticker_count
            result.refused[CANDIDATE_TAKEN] += len(volume.stickers) - pack.sticker_count
            result.packs_created += 1
        result.refused = +result.refused  # drop zero counts
        return result
