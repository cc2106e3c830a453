"""Theme curation's writes to its own packs (system-owned auto packs, pipeline §2.8-§2.12): start a
volume, update one, retire one. `ThemePacksMixin` is one part of `PackService`.

Curation writes only packs that are the system owner's, flagged auto and theme-marked; every method
re-checks that under the pack's row lock, so a user-managed pack is never touched even if a plan was
made from stale data. Each call is one transaction with one version and event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from omnizap.core import text_policy
from omnizap.core.errors import InvalidInput, PackLimitReached
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.packs import repository as repo
from omnizap.core.packs.internals import (
    PackServiceBase,
    bump,
    insert_pack,
    item_row,
    load,
    lock_owner,
    locked,
)
from omnizap.core.packs.models import Pack
from omnizap.core.packs.rules import is_theme_pack, optional_description, position_moves, validate_visibility
from omnizap.core.packs.specs import ThemePackChange, ThemePackSpec, clean_sticker_id, theme_pack_status
from omnizap.core.text_policy import PACK_NAME, PUBLISHER, THEME_KEY
from omnizap.platform.db.types import utcnow


class ThemePacksMixin(PackServiceBase):
    """Create, update and retire theme packs (curation's volumes)."""

    def create_theme_pack(
        self,
        spec: ThemePackSpec,
        sticker_ids: Sequence[str],
        *,
        min_items: int,
        ready_min_items: int,
        pack_limit: int | None,
    ) -> Pack | None:
        """Start a theme volume holding `sticker_ids` (in order; the first is the cover).

        Stickers that reached any pack since the plan was made are left out, and if fewer than
        `min_items` remain nothing is written (None): a volume never starts undersized. `pack_limit`
        bounds the owner's live packs (the system owner's limit is curation's global pack limit, not
        the per-user STICKER_PACK_MAX_PACKS_PER_OWNER).
        """
        owner = normalize_owner_jid(spec.owner_jid)
        wanted = list(dict.fromkeys(clean_sticker_id(value) for value in sticker_ids))[: self.max_items]
        values: dict[str, Any] = {
            "name": text_policy.required(PACK_NAME, spec.name),
            "publisher": text_policy.required(PUBLISHER, spec.publisher),
            "description": optional_description(spec.description),
            "visibility": validate_visibility(spec.visibility),
            "is_auto_pack": 1,
            "is_sensitive": 1 if spec.sensitive else 0,
            "pack_theme_key": text_policy.required(THEME_KEY, spec.theme_key),
            "pack_volume": int(spec.volume),
        }
        if not is_theme_pack(values["name"], values["description"], values["pack_theme_key"]):
            raise InvalidInput("A theme pack needs its [auto-theme:<key>] marker or theme key.")
        with self.database.transaction() as connection:
            lock_owner(connection, owner)  # first, so the pack count below is exact
            packed = repo.stickers_in_any_pack(connection, wanted)
            shareable = repo.shareable_ids(connection, wanted)
            chosen = [sid for sid in wanted if sid in shareable and sid not in packed]
            if len(chosen) < max(1, min_items):
                return None
            if pack_limit is not None and repo.count_live_packs(connection, owner) >= pack_limit:
                raise PackLimitReached(
                    f"Theme pack limit reached ({pack_limit}) for {owner}; raise "
                    "STICKER_AUTO_PACK_BY_TAGS_GLOBAL_PACK_LIMIT or retire packs."
                )
            pack_status, status = theme_pack_status(len(chosen), ready_min_items)
            now = utcnow()
            values.update(pack_status=pack_status, status=status, last_rebalanced_at=now)
            pack_id = insert_pack(connection, owner, values, cover=chosen[0], key_suffix=self._key_suffix)
            rows = [item_row(pack_id, sid, position) for position, sid in enumerate(chosen, 1)]
            repo.insert_items(connection, rows)
            return load(connection, pack_id)

    def update_theme_pack(
        self,
        owner_jid: str,
        pack_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        name: str | None = None,
        description: str | None = None,
        ready_min_items: int,
    ) -> ThemePackChange:
        """Remove and append stickers and refresh the derived fields of one theme pack.

        Removals of stickers no longer in the pack and additions of stickers already in any pack
        are skipped (the plan may be older than the data); additions stop at the pack's item limit.
        Kept items keep their order, new ones follow in the given order, the cover is the first item
        unless it is still in the pack. `pack_status`/`status` follow the final count. Nothing
        changes (no version, no event) when there is nothing to do.
        """
        owner = normalize_owner_jid(owner_jid)
        with self.database.transaction() as connection:
            pack = _locked_theme_pack(connection, owner, pack_id)
            items = repo.item_rows(connection, pack_id)
            dropping = set(remove)
            removed = [item for item in items if item["sticker_id"] in dropping]
            kept = [item for item in items if item["sticker_id"] not in dropping]
            in_pack = {item["sticker_id"] for item in items}
            wanted = [sid for sid in dict.fromkeys(add) if sid not in in_pack]
            packed = repo.stickers_in_any_pack(connection, wanted)
            shareable = repo.shareable_ids(connection, wanted)
            room = max(0, self.max_items - len(kept))
            added = [sid for sid in wanted if sid in shareable and sid not in packed][:room]
            count = len(kept) + len(added)
            pack_status, status = theme_pack_status(count, ready_min_items)
            changes: dict[str, Any] = {}
            if name is not None and text_policy.required(PACK_NAME, name) != pack["name"]:
                changes["name"] = text_policy.required(PACK_NAME, name)
            if description is not None and optional_description(description) != pack["description"]:
                changes["description"] = optional_description(description)
            if pack["pack_status"] != pack_status:
                changes["pack_status"] = pack_status
            if pack["status"] != status:
                changes["status"] = status
            order = [item["sticker_id"] for item in kept] + added
            cover = pack["cover_sticker_id"] if pack["cover_sticker_id"] in order else None
            if cover is None and order:
                cover = order[0]
            if cover != pack["cover_sticker_id"]:
                changes["cover_sticker_id"] = cover
            if not removed and not added and not changes:
                return ThemePackChange(load(connection, pack_id), (), (), False)
            now = utcnow()
            repo.delete_items(connection, [item["id"] for item in removed])
            current = {item["id"]: item["position"] for item in kept}
            repo.move_items(connection, position_moves(current, [item["id"] for item in kept]), now)
            rows = [item_row(pack_id, sid, len(kept) + index) for index, sid in enumerate(added, 1)]
            repo.insert_items(connection, rows)
            fields = sorted(set(changes) | ({"items"} if removed or added else set()))
            changes["last_rebalanced_at"] = now
            bump(connection, pack, changes, "updated", fields)
            return ThemePackChange(
                load(connection, pack_id),
                tuple(added),
                tuple(item["sticker_id"] for item in removed),
                True,
            )

    def retire_theme_pack(self, owner_jid: str, pack_id: str) -> tuple[str, ...]:
        """Retire a theme volume: its items are taken out (the stickers stay stored and become
        candidates again) and the pack is archived and soft-deleted, its key staying reserved.
        Returns the stickers released."""
        owner = normalize_owner_jid(owner_jid)
        with self.database.transaction() as connection:
            pack = _locked_theme_pack(connection, owner, pack_id)
            items = repo.item_rows(connection, pack_id)
            repo.delete_items(connection, [item["id"] for item in items])
            now = utcnow()
            changes = {
                "pack_status": "archived",
                "status": "draft",
                "cover_sticker_id": None,
                "deleted_at": now,
                "last_rebalanced_at": now,
            }
            bump(connection, pack, changes, "deleted", ["deleted_at", "items", "pack_status"])
            return tuple(item["sticker_id"] for item in items)


def _locked_theme_pack(connection: Connection, owner: str, pack_id: str) -> dict[str, Any]:
    """The live theme pack `pack_id` of the system owner, write-locked; anything else (a user's
    pack, a collector pack, a deleted one) is refused so curation cannot touch it."""
    pack = locked(connection, owner, pack_id)
    if not pack["is_auto_pack"] or not is_theme_pack(
        pack["name"], pack["description"], pack["pack_theme_key"]
    ):
        raise InvalidInput(f"Pack {pack['name']!r} is not a theme pack; curation leaves it alone.")
    return pack
