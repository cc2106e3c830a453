"""The pack service's item operations: append a sticker, take one out, reorder (chat §1.3).

`PackItemsMixin` is one part of `PackService`; each operation is one transaction that bumps the
pack's version with its PACK_UPDATED event (see `internals`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from omnizap.core import text_policy
from omnizap.core.errors import DuplicateSticker, InvalidInput, PackLimitReached, StickerNotFound
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.packs import repository as repo
from omnizap.core.packs.internals import (
    PackServiceBase,
    bump,
    item_row,
    load,
    locked,
    require_assets,
    resolve_id,
    share_if_visible,
)
from omnizap.core.packs.models import Pack, PackItem
from omnizap.core.packs.rules import next_position, normalize_emojis, position_moves, reorder_positions
from omnizap.core.packs.specs import clean_sticker_id, find_item, parse_item_selector
from omnizap.core.text_policy import ACCESSIBILITY_LABEL
from omnizap.platform.db.types import utcnow

_ORDER_SEPARATORS = re.compile(r"[\s,]+")


class PackItemsMixin(PackServiceBase):
    """Adding, removing and reordering the stickers of an owner's pack."""

    def add_sticker(
        self,
        owner_jid: str,
        pack_ref: object,
        sticker_id: str,
        *,
        emojis: str | Sequence[str] | None = None,
        accessibility_label: str | None = None,
    ) -> PackItem:
        """Append a stored sticker to the pack. The first sticker of a pack without a cover becomes
        its cover. Refuses a sticker already in the pack before checking that the pack is full."""
        owner = normalize_owner_jid(owner_jid)
        clean_id = clean_sticker_id(sticker_id)
        emoji_list = normalize_emojis(emojis)
        label = text_policy.optional(ACCESSIBILITY_LABEL, accessibility_label)
        with self.database.read() as connection:
            pack_id = resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = locked(connection, owner, pack_id)
            items = repo.item_rows(connection, pack_id)
            require_assets(connection, [clean_id])
            duplicate = next((item for item in items if item["sticker_id"] == clean_id), None)
            if duplicate is not None:
                raise DuplicateSticker(
                    f"That sticker is already in pack {pack['name']!r} at position {duplicate['position']}; "
                    "a pack holds each sticker once."
                )
            if len(items) >= self.max_items:
                raise PackLimitReached(
                    f"The pack reached the limit of {self.max_items} stickers. Create another pack "
                    "(`omnizap pack create`) or remove a sticker first."
                )
            row = item_row(pack_id, clean_id, next_position(item["position"] for item in items))
            row.update(emojis=emoji_list or None, accessibility_label=label)
            repo.insert_items(connection, [row])
            share_if_visible(connection, pack, [clean_id])
            if pack["cover_sticker_id"] is None:
                changes = {"cover_sticker_id": clean_id}
                bump(connection, pack, changes, "updated", ["cover_sticker_id", "items"])
            else:
                bump(connection, pack, {}, "version_bumped", ["items"])
            return PackItem.from_row(row)

    def remove_sticker(self, owner_jid: str, pack_ref: object, sticker_id_or_position: str | int) -> PackItem:
        """Take one item out (by position or sticker id) and close the gap. The sticker itself stays
        stored. If it was the cover, the new first item becomes the cover (none if the pack is empty)."""
        owner = normalize_owner_jid(owner_jid)
        selector = parse_item_selector(sticker_id_or_position)
        with self.database.read() as connection:
            pack_id = resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = locked(connection, owner, pack_id)
            items = repo.item_rows(connection, pack_id)
            removed = find_item(items, selector)
            if removed is None:
                raise StickerNotFound(
                    f"No sticker at position or with id {selector!r} in pack {pack['name']!r} "
                    f"(it has {len(items)}); see them with `omnizap pack info`."
                )
            repo.delete_item(connection, removed["id"])
            remaining = [item for item in items if item["id"] != removed["id"]]
            now = utcnow()
            current = {item["id"]: item["position"] for item in remaining}
            repo.move_items(connection, position_moves(current, [item["id"] for item in remaining]), now)
            if pack["cover_sticker_id"] == removed["sticker_id"]:
                new_cover = remaining[0]["sticker_id"] if remaining else None
                changes = {"cover_sticker_id": new_cover}
                bump(connection, pack, changes, "updated", ["cover_sticker_id", "items"])
            else:
                bump(connection, pack, {}, "version_bumped", ["items"])
            return PackItem.from_row(removed)

    def reorder(self, owner_jid: str, pack_ref: object, sticker_ids: str | Sequence[str | int]) -> Pack:
        """Move the given stickers to the front, in the given order; the rest keep their order.

        `sticker_ids` are sticker ids, or — when every token is a number — 1-based positions in the
        current order (out-of-range numbers are ignored). The version changes only if the order does.
        """
        owner = normalize_owner_jid(owner_jid)
        raw = [sticker_ids] if isinstance(sticker_ids, str) else list(sticker_ids)
        tokens = [token for value in raw for token in _ORDER_SEPARATORS.split(str(value).strip()) if token]
        if not tokens:
            raise InvalidInput("Send the new order: positions such as 3 1 2, or sticker ids.")
        with self.database.read() as connection:
            pack_id = resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = locked(connection, owner, pack_id)
            items = repo.item_rows(connection, pack_id)
            if len(items) < 2:
                raise InvalidInput(f"The pack needs 2 or more stickers to reorder; it has {len(items)}.")
            current = [item["sticker_id"] for item in items]
            if all(token.isascii() and token.isdigit() for token in tokens):
                indexes = [int(token) for token in tokens]
                requested = [current[index - 1] for index in indexes if 1 <= index <= len(current)]
            else:
                requested = tokens
            if not set(requested) & set(current):
                raise InvalidInput(
                    f"The order sent does not match the pack's stickers: use positions 1-{len(current)} "
                    "or sticker ids shown by `omnizap pack info`."
                )
            new_order = reorder_positions(current, requested)
            if new_order != current:
                item_of = {item["sticker_id"]: item for item in items}
                positions = {item["id"]: item["position"] for item in items}
                moves = position_moves(positions, [item_of[sticker]["id"] for sticker in new_order])
                repo.move_items(connection, moves, utcnow())
                bump(connection, pack, {}, "version_bumped", ["items"])
            return load(connection, pack_id)
