"""The auto-collector: every sticker made for a user lands in one of that user's packs (chat §5).

Where it goes, in order:
1. The user's own pack — the most recently updated pack that is neither a collector nor a theme
   pack — if it still has room.
2. Otherwise one of the user's collector packs with room, unlisted ones first, then the most
   recently updated.
3. Otherwise a new unlisted collector pack `<base><n>` (`STICKER_PACK_AUTO_PACK_NAME`, smallest
   free n) holding the sticker.

Step 2 is also where stickers go once the user's own pack is full. The original skipped it then and
made a new one-sticker pack for every later sticker (chat §5.4 item 5); here a full user pack
followed by 70 stickers gives collector packs of 30, 30 and 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from omnizap.config import Settings
from omnizap.core import text_policy
from omnizap.core.errors import DuplicateSticker, PackLimitReached
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.packs.models import Pack
from omnizap.core.packs.rules import COLLECTOR_DESCRIPTION, next_auto_pack_name
from omnizap.core.packs.service import PackService, pack_kind
from omnizap.core.text_policy import PUBLISHER

CollectStatus = Literal["added", "duplicate", "skipped"]

COLLECTOR_VISIBILITY = "unlisted"
# A concurrent collect can fill the chosen pack between choosing and adding; then choose again.
_PLACEMENT_ATTEMPTS = 3


@dataclass(frozen=True)
class CollectResult:
    status: CollectStatus
    pack: Pack | None
    reason: str | None = None


class AutoCollector:
    """Puts a user's new sticker into one of their packs.

    Collector packs are created `unlisted`, and the collector never changes a pack's visibility
    afterwards: if the user published their collector pack (or made it private) that choice stands.
    The original forced such a pack back to `unlisted` on the next sticker; it is still used, but
    unlisted collector packs with room are preferred.
    """

    def __init__(self, pack_service: PackService, settings: Settings) -> None:
        self.packs = pack_service
        self.settings = settings

    def collect(self, owner_jid: str, sticker_id: str, *, sender_name: str | None = None) -> CollectResult:
        """Add the stored sticker to the right pack of `owner_jid`.

        `added` with the pack it went to, `duplicate` with the pack already holding it, or `skipped`
        (collector disabled, or no sticker id). A new pack that would exceed the owner's pack limit
        raises PackLimitReached; the sticker itself stays stored.
        """
        if not self.settings.sticker_pack_auto_collect_enabled:
            return CollectResult("skipped", None, "disabled")
        if not str(sticker_id or "").strip():
            return CollectResult("skipped", None, "invalid_sticker")
        owner = normalize_owner_jid(owner_jid)
        sticker = str(sticker_id).strip()
        for _ in range(_PLACEMENT_ATTEMPTS):
            result = self._place(owner, sticker, sender_name)
            if result is not None:
                return result
        raise PackLimitReached(
            "Every pack chosen for this sticker filled up while it was being added; try again."
        )

    def _place(self, owner: str, sticker: str, sender_name: str | None) -> CollectResult | None:
        """One attempt; None when the chosen pack filled up concurrently."""
        packs = self.packs.list_packs(owner)
        base = self.packs.auto_pack_base
        own = [pack for pack in packs if pack_kind(pack, base) == "user"]
        collectors = [pack for pack in packs if pack_kind(pack, base) == "collector"]
        primary = own[0] if own else None
        candidates = ([primary] if primary else []) + collectors
        holding = self.packs.packs_containing(sticker, [pack.id for pack in candidates])

        if primary is not None and primary.id in holding:
            return CollectResult("duplicate", primary, "already_in_pack")
        target: Pack | None = None
        if primary is not None and primary.sticker_count < self.packs.max_items:
            target = primary
        else:
            already = next((pack for pack in collectors if pack.id in holding), None)
            if already is not None:
                return CollectResult("duplicate", already, "already_in_pack")
            # Stable sort: unlisted first, each group still most recently updated first.
            preferred = sorted(collectors, key=lambda pack: pack.visibility != COLLECTOR_VISIBILITY)
            target = next((pack for pack in preferred if pack.sticker_count < self.packs.max_items), None)

        if target is None:
            return CollectResult("added", self._new_collector(owner, sticker, sender_name, packs, primary))
        try:
            self.packs.add_sticker(owner, target.id, sticker)
        except DuplicateSticker:  # added concurrently by another collect of the same sticker
            return CollectResult("duplicate", self.packs.resolve(owner, target.id), "already_in_pack")
        except PackLimitReached:
            return None
        return CollectResult("added", self.packs.resolve(owner, target.id))

    def _new_collector(
        self, owner: str, sticker: str, sender_name: str | None, packs: list[Pack], full: Pack | None
    ) -> Pack:
        # The sender's display name is derived, not typed into this field: made to fit, never refused.
        publisher = (
            text_policy.fit(PUBLISHER, sender_name)
            or (full.publisher if full is not None else None)
            or text_policy.fit(PUBLISHER, self.settings.sticker_default_publisher)
            or "OmniZap"
        )
        return self.packs.create_pack(
            owner,
            next_auto_pack_name([pack.name for pack in packs], self.packs.auto_pack_base),
            publisher=publisher,
            description=COLLECTOR_DESCRIPTION,
            visibility=COLLECTOR_VISIBILITY,
            is_auto_pack=True,
            initial_sticker_ids=[sticker],
        )
