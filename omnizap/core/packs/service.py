"""Packs and their items: create, find, edit, reorder, clone and soft-delete (chat §1.2, §1.3, §2).

Every change runs in one `database.transaction()` together with its PACK_UPDATED outbox event, so
the event exists exactly when the change does. Every change adds exactly 1 to the pack's version.

`PackService` is the facade: reading, creating and pack fields live here; the item operations in
`items`, theme curation's writes in `themes`, the shared transaction steps in `internals`, and the
dataclasses and pure helpers in `specs` (re-exported here, so existing imports keep working).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from omnizap.core import text_policy
from omnizap.core.errors import InvalidInput, PackLimitReached, PackNotFound
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.packs import repository as repo
from omnizap.core.packs.internals import (
    KEY_ATTEMPTS,
    bump,
    check_pack_limit,
    check_pack_room,
    confers_sharing,
    insert_pack,
    item_row,
    load,
    lock_owner,
    locked,
    pick,
    require_assets,
    resolve_id,
    share_if_visible,
)
from omnizap.core.packs.items import PackItemsMixin
from omnizap.core.packs.models import Pack, PackItem
from omnizap.core.packs.rules import (
    NAME_MAX,
    is_valid_pack_key,
    normalize_emojis,
    optional_description,
    sanitize_text,
    validate_status,
    validate_visibility,
)
from omnizap.core.packs.specs import (
    SHARED_VISIBILITIES,
    UNSET,
    NewPack,
    NewPackItem,
    PackKind,
    ThemePackChange,
    ThemePackSpec,
    _Unset,
    clean_sticker_id,
    pack_kind,
    parse_item_selector,
    theme_pack_status,
)
from omnizap.core.packs.themes import ThemePacksMixin
from omnizap.core.text_policy import ACCESSIBILITY_LABEL, PACK_NAME, PUBLISHER
from omnizap.platform.db.locks import PACK_OWNER, lock_keys
from omnizap.platform.db.types import utcnow

__all__ = [
    "CLONE_SUFFIX",
    "KEY_ATTEMPTS",
    "SHARED_VISIBILITIES",
    "UNSET",
    "NewPack",
    "NewPackItem",
    "PackKind",
    "PackService",
    "ThemePackChange",
    "ThemePackSpec",
    "pack_kind",
    "theme_pack_status",
]

CLONE_SUFFIX = " (copy)"


class PackService(PackItemsMixin, ThemePacksMixin):
    """Owner-scoped operations on packs. Owners are normalised; references resolve as in chat §1.2."""

    # --- reading ------------------------------------------------------------------------------
    def list_packs(
        self, owner_jid: str, *, include_auto: bool = True, limit: int | None = None
    ) -> list[Pack]:
        """The owner's packs, most recently updated first. `include_auto=False` leaves out the
        auto-collector's and theme curation's packs."""
        owner = normalize_owner_jid(owner_jid)
        if limit is not None and limit < 1:
            raise InvalidInput(f"The list limit must be at least 1, got {limit}.")
        with self.database.read() as connection:
            rows = repo.owner_packs(connection, owner, limit=limit if include_auto else None)
        packs = [Pack.from_row(row, count) for row, count in rows]
        if not include_auto:
            packs = [pack for pack in packs if pack_kind(pack, self.auto_pack_base) == "user"]
            packs = packs[:limit] if limit is not None else packs
        return packs

    def resolve(self, owner_jid: str, ref: object) -> Pack:
        """The owner's live pack named by `ref`: its name, pack_key, id, or a `/stickers/<key>` link."""
        owner = normalize_owner_jid(owner_jid)
        with self.database.read() as connection:
            pack_id = resolve_id(connection, owner, ref)
            return load(connection, pack_id)

    def get_by_key(self, pack_key: str, *, include_deleted: bool = False) -> Pack:
        """Any owner's pack by its public key."""
        key = str(pack_key or "").strip().lower()
        found = None
        # Only something shaped like a key reaches the database (a NUL byte would make PostgreSQL raise).
        if is_valid_pack_key(key):
            with self.database.read() as connection:
                found = repo.pack_by_key(connection, key, include_deleted=include_deleted)
        if found is None:
            shown = sanitize_text(pack_key, 80) or "empty"
            raise PackNotFound(f"No pack has the key {shown!r}; keys look like meus-memes-k3x9q.")
        return Pack.from_row(*found)

    def items(self, pack_id: str) -> list[PackItem]:
        """The pack's items in order (positions 1..n)."""
        with self.database.read() as connection:
            return [PackItem.from_row(row) for row in repo.item_rows(connection, pack_id)]

    def packs_containing(self, sticker_id: str, pack_ids: Sequence[str]) -> set[str]:
        """Which of `pack_ids` already hold the sticker."""
        with self.database.read() as connection:
            return set(repo.packs_containing(connection, list(pack_ids), sticker_id))

    # --- creating -----------------------------------------------------------------------------
    def create_pack(
        self,
        owner_jid: str,
        name: str,
        *,
        publisher: str | None = None,
        description: str | None = None,
        visibility: str = "public",
        is_auto_pack: bool = False,
        status: str = "published",
        initial_sticker_ids: Sequence[str] = (),
    ) -> Pack:
        """A new pack at version 1 with a fresh key; optionally filled with stickers (the first one
        becomes the cover) in the same transaction. Counts against the owner's pack limit."""
        owner = normalize_owner_jid(owner_jid)
        clean_name = text_policy.required(PACK_NAME, name)
        clean_publisher = (
            text_policy.required(PUBLISHER, publisher)
            if publisher is not None
            else text_policy.fit(PUBLISHER, self.settings.sticker_default_publisher) or "OmniZap"
        )
        if isinstance(initial_sticker_ids, str):  # one id, not a sequence of characters
            initial_sticker_ids = [initial_sticker_ids]
        sticker_ids = list(dict.fromkeys(clean_sticker_id(value) for value in initial_sticker_ids))
        if len(sticker_ids) > self.max_items:
            raise PackLimitReached(
                f"A pack holds at most {self.max_items} stickers; {len(sticker_ids)} were given."
            )
        values = {
            "name": clean_name,
            "publisher": clean_publisher,
            "description": optional_description(description),
            "visibility": validate_visibility(visibility),
            "status": validate_status(status),
            "is_auto_pack": 1 if is_auto_pack else 0,
        }
        with self.database.transaction() as connection:
            lock_owner(connection, owner)
            check_pack_limit(connection, owner, self.settings.sticker_pack_max_packs_per_owner)
            require_assets(connection, sticker_ids)
            cover = sticker_ids[0] if sticker_ids else None
            pack_id = insert_pack(connection, owner, values, cover=cover, key_suffix=self._key_suffix)
            rows = [item_row(pack_id, sid, position) for position, sid in enumerate(sticker_ids, 1)]
            repo.insert_items(connection, rows)
            share_if_visible(connection, values, sticker_ids)
            return load(connection, pack_id)

    def create_packs(self, packs: Sequence[NewPack]) -> list[Pack]:
        """Many new packs in one transaction: each at version 1 with a fresh key, its items (emojis
        and labels included, the first sticker as cover) and its PACK_UPDATED "created" event.
        Either the whole batch exists afterwards or none of it does.

        For bulk loads (demo data, imports), where a transaction per pack costs more than the work.
        Each pack follows `create_pack`'s rules; the owners' pack limits count the whole batch, and
        the batch is refused before anything is written if one would be exceeded.
        """
        now = utcnow()
        prepared = [self._prepare_new_pack(spec, now) for spec in packs]
        if not prepared:
            return []
        with self.database.transaction() as connection:
            planned: dict[str, int] = {}
            for owner, *_ in prepared:
                planned[owner] = planned.get(owner, 0) + 1
            lock_keys(connection, PACK_OWNER, planned)  # first, as `lock_owner` (sorted: no deadlock)
            for owner, count in planned.items():
                check_pack_room(connection, owner, count, self.settings.sticker_pack_max_packs_per_owner)
            require_assets(connection, [item[0] for *_, items in prepared for item in items])
            pack_ids: list[str] = []
            item_rows: list[dict[str, Any]] = []
            for owner, values, items in prepared:
                cover = items[0][0] if items else None
                pack_id = insert_pack(connection, owner, values, cover=cover, key_suffix=self._key_suffix)
                pack_ids.append(pack_id)
                for position, (sticker_id, emojis, label) in enumerate(items, 1):
                    row = item_row(pack_id, sticker_id, position)
                    row.update(
                        emojis=emojis or None,
                        accessibility_label=label,
                        created_at=values["created_at"],
                        updated_at=values["created_at"],
                    )
                    item_rows.append(row)
            repo.insert_items(connection, item_rows)
            for _, values, items in prepared:
                share_if_visible(connection, values, [item[0] for item in items])
            return [load(connection, pack_id) for pack_id in pack_ids]

    def _prepare_new_pack(
        self, spec: NewPack, now: dt.datetime
    ) -> tuple[str, dict[str, Any], list[tuple[str, list[str], str | None]]]:
        """Clean one `NewPack` as `create_pack` would: (owner, row values, [(sticker, emojis, label)])."""
        owner = normalize_owner_jid(spec.owner_jid)
        publisher = (
            text_policy.required(PUBLISHER, spec.publisher)
            if spec.publisher is not None
            else text_policy.fit(PUBLISHER, self.settings.sticker_default_publisher) or "OmniZap"
        )
        created_at = spec.created_at or now
        if created_at.tzinfo is None:
            raise InvalidInput("A pack's created_at needs a time zone (use UTC), not a naive datetime.")
        if created_at > now + dt.timedelta(minutes=1):
            raise InvalidInput(f"A pack cannot be created in the future ({created_at.isoformat()}).")
        items: list[tuple[str, list[str], str | None]] = []
        seen: set[str] = set()
        for item in spec.items:
            sticker_id = clean_sticker_id(item.sticker_id)
            if sticker_id in seen:  # like create_pack: a sticker appears once, at its first place
                continue
            seen.add(sticker_id)
            label = text_policy.optional(ACCESSIBILITY_LABEL, item.accessibility_label)
            items.append((sticker_id, normalize_emojis(item.emojis), label))
        if len(items) > self.max_items:
            raise PackLimitReached(
                f"A pack holds at most {self.max_items} stickers; {len(items)} were given."
            )
        values = {
            "name": text_policy.required(PACK_NAME, spec.name),
            "publisher": publisher,
            "description": optional_description(spec.description),
            "visibility": validate_visibility(spec.visibility),
            "status": validate_status(spec.status),
            "is_auto_pack": 0,
            "created_at": created_at,
            "updated_at": created_at,
        }
        return owner, values, items

    def clone(self, owner_jid: str, pack_ref: object, new_name: str | None = None) -> Pack:
        """A copy of the pack (items, positions, emojis, labels, cover) under a new key, version 1.

        Unlike the original, a clone counts against the owner's pack limit. It is `public` like the
        original's, except that a clone of a `private` pack stays private: copying never widens who
        can see the stickers.
        """
        owner = normalize_owner_jid(owner_jid)
        clone_name = text_policy.required(PACK_NAME, new_name) if new_name is not None else None
        with self.database.read() as connection:
            source_id = resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            lock_owner(connection, owner)
            source = locked(connection, owner, source_id)
            check_pack_limit(connection, owner, self.settings.sticker_pack_max_packs_per_owner)
            if clone_name is None:
                clone_name = source["name"][: NAME_MAX - len(CLONE_SUFFIX)].rstrip() + CLONE_SUFFIX
            values = {
                "name": clone_name,
                "publisher": source["publisher"],
                "description": source["description"],
                "visibility": "private" if source["visibility"] == "private" else "public",
                "status": "published",
                "is_auto_pack": 0,
                "is_sensitive": source["is_sensitive"],
            }
            pack_id = insert_pack(
                connection, owner, values, cover=source["cover_sticker_id"], key_suffix=self._key_suffix
            )
            copies = []
            for item in repo.item_rows(connection, source_id):
                copy = item_row(pack_id, item["sticker_id"], item["position"])
                copy.update(emojis=item["emojis"], accessibility_label=item["accessibility_label"])
                copies.append(copy)
            repo.insert_items(connection, copies)
            share_if_visible(connection, values, [copy["sticker_id"] for copy in copies])
            return load(connection, pack_id)

    # --- pack fields ----------------------------------------------------------------------------
    def rename(self, owner_jid: str, pack_ref: object, new_name: str) -> Pack:
        """A new display name; the pack_key never changes, so shared links keep working."""
        name = text_policy.required(PACK_NAME, new_name)
        return self._change_fields(owner_jid, pack_ref, {"name": name})

    def publish(self, owner_jid: str, pack_ref: object, visibility: str = "public") -> Pack:
        return self._change_fields(owner_jid, pack_ref, {"visibility": validate_visibility(visibility)})

    def set_fields(
        self,
        owner_jid: str,
        pack_ref: object,
        *,
        publisher: str | _Unset = UNSET,
        description: str | _Unset | None = UNSET,
        visibility: str | _Unset = UNSET,
        cover: str | int | _Unset | None = UNSET,
        item: str | int | None = None,
        emojis: str | Sequence[str] | _Unset | None = UNSET,
        accessibility_label: str | _Unset | None = UNSET,
    ) -> Pack:
        """Change several things at once, as one version. `description=None` (or "", "-", "clear")
        removes it; `cover` is a position or sticker id in the pack (None clears it); `emojis` and
        `accessibility_label` change the item chosen by `item` (a position or sticker id)."""
        changes: dict[str, Any] = {}
        if publisher is not UNSET:
            changes["publisher"] = text_policy.required(PUBLISHER, publisher)
        if description is not UNSET:
            changes["description"] = optional_description(description)
        if visibility is not UNSET:
            changes["visibility"] = validate_visibility(visibility)
        cover_selector = None if cover is UNSET or cover is None else parse_item_selector(cover)
        item_changes: dict[str, Any] = {}
        if emojis is not UNSET:
            item_changes["emojis"] = normalize_emojis(emojis) or None
        if accessibility_label is not UNSET:
            label = text_policy.optional(ACCESSIBILITY_LABEL, accessibility_label)
            item_changes["accessibility_label"] = label
        item_selector = parse_item_selector(item) if item is not None else None
        if item_changes and item_selector is None:
            raise InvalidInput("Say which sticker the emojis or label belong to: give its position or id.")
        if item_selector is not None and not item_changes:
            raise InvalidInput("An item was chosen but nothing to change on it: give emojis or a label.")
        if not changes and cover is UNSET and not item_changes:
            raise InvalidInput(
                "Nothing to change: give a publisher, description, visibility, cover, or emojis/label."
            )
        return self._change_fields(
            owner_jid,
            pack_ref,
            changes,
            cover=cover_selector if cover is not UNSET else UNSET,
            item_selector=item_selector,
            item_changes=item_changes,
        )

    def delete(self, owner_jid: str, pack_ref: object) -> Pack:
        """Soft delete: the pack disappears from every lookup and list, its items and stickers stay,
        and its key stays reserved so an old link never points at someone else's pack."""
        owner = normalize_owner_jid(owner_jid)
        with self.database.read() as connection:
            pack_id = resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = locked(connection, owner, pack_id)
            bump(connection, pack, {"deleted_at": utcnow()}, "deleted", ["deleted_at"])
            return load(connection, pack_id)

    # --- pack fields: the one write behind rename, publish and set_fields -----------------------
    def _change_fields(
        self,
        owner_jid: str,
        pack_ref: object,
        changes: dict[str, Any],
        *,
        cover: str | _Unset | None = UNSET,
        item_selector: str | None = None,
        item_changes: dict[str, Any] | None = None,
    ) -> Pack:
        owner = normalize_owner_jid(owner_jid)
        with self.database.read() as connection:
            pack_id = resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = locked(connection, owner, pack_id)
            fields = list(changes)
            if cover is not UNSET or item_changes:
                items = repo.item_rows(connection, pack_id)
                if cover is not UNSET:
                    chosen = pick(items, cover, pack) if cover is not None else None
                    changes["cover_sticker_id"] = chosen["sticker_id"] if chosen is not None else None
                    fields.append("cover_sticker_id")
                if item_changes and item_selector is not None:
                    target = pick(items, item_selector, pack)
                    repo.update_item(connection, target["id"], {**item_changes, "updated_at": utcnow()})
                    fields.append("items")
            bump(connection, pack, changes, "updated", fields)
            widened = changes.get("visibility", pack["visibility"]) != pack["visibility"]
            if widened and confers_sharing({**pack, **changes}):
                repo.mark_pack_items_shared(connection, pack_id, utcnow())
            return load(connection, pack_id)
