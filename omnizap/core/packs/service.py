"""Packs and their items: create, find, edit, reorder, clone and soft-delete (chat §1.2, §1.3, §2).

Every change runs in one `database.transaction()` together with its PACK_UPDATED outbox event, so
the event exists exactly when the change does. Every change adds exactly 1 to the pack's version.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import Connection

from omnizap.config import Settings
from omnizap.core import text_policy
from omnizap.core.errors import (
    DuplicateSticker,
    InvalidInput,
    PackLimitReached,
    PackNotFound,
    StickerNotFound,
    StickerPackError,
)
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.packs import repository as repo
from omnizap.core.packs.models import Pack, PackItem
from omnizap.core.packs.rules import (
    NAME_MAX,
    is_collector_pack,
    is_theme_pack,
    is_valid_pack_key,
    make_pack_key,
    next_position,
    normalize_auto_pack_name,
    normalize_emojis,
    optional_description,
    position_moves,
    random_key_suffix,
    reference_candidates,
    reorder_positions,
    sanitize_text,
    validate_status,
    validate_visibility,
)
from omnizap.core.text_policy import ACCESSIBILITY_LABEL, PACK_NAME, PUBLISHER, THEME_KEY
from omnizap.platform.db import Database
from omnizap.platform.db.locks import PACK_OWNER, lock_key, lock_keys
from omnizap.platform.db.types import utcnow
from omnizap.platform.outbox.events import pack_changed

KEY_ATTEMPTS = 24
CLONE_SUFFIX = " (copy)"
_STICKER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_ORDER_SEPARATORS = re.compile(r"[\s,]+")

PackKind = Literal["user", "collector", "theme"]
# A sticker that sits in a pack of these visibilities becomes shareable (`sticker_asset.shared_at`).
SHARED_VISIBILITIES = frozenset({"public", "unlisted"})


class _Unset(enum.Enum):
    """Marks an argument of `set_fields` that was not given (None means "clear")."""

    TOKEN = 0


UNSET = _Unset.TOKEN


def pack_kind(pack: Pack, auto_pack_base: str) -> PackKind:
    """`theme` (made by curation), `collector` (made by the auto-collector) or `user`."""
    if is_theme_pack(pack.name, pack.description, pack.pack_theme_key):
        return "theme"
    if is_collector_pack(pack.name, pack.description, pack.pack_theme_key, pack.is_auto_pack, auto_pack_base):
        return "collector"
    return "user"


def _clean_sticker_id(value: object) -> str:
    text = str(value if value is not None else "").strip()
    if not text:
        raise InvalidInput("Give the sticker's id (as printed by `omnizap sticker import`).")
    if not _STICKER_ID.match(text):
        shown = sanitize_text(text, 40)
        raise StickerNotFound(f"No sticker has the id {shown!r}; sticker ids look like 8c1f…-…-… (a UUID).")
    return text


def _item_selector(value: object) -> str:
    text = None if isinstance(value, bool) else sanitize_text(value, 64)
    if text is None:
        raise InvalidInput("Give the sticker's position in the pack (1, 2, …) or its sticker id.")
    return text


def _find_item(items: Sequence[dict[str, Any]], selector: str) -> dict[str, Any] | None:
    """A positive number is a position; otherwise (or when no item sits there) a sticker id."""
    if selector.isascii() and selector.isdigit():
        position = int(selector)
        for item in items:
            if item["position"] == position:
                return item
    return next((item for item in items if item["sticker_id"] == selector), None)


@dataclass(frozen=True)
class NewPackItem:
    """One sticker of a pack made by `PackService.create_packs`, with its emojis and label."""

    sticker_id: str
    emojis: str | Sequence[str] | None = None
    accessibility_label: str | None = None


@dataclass(frozen=True)
class NewPack:
    """A pack for `PackService.create_packs`: `create_pack`'s arguments plus per-item emojis and
    labels. `created_at` backdates a pack made earlier elsewhere (imports, demo data); None is now."""

    owner_jid: str
    name: str
    publisher: str | None = None
    description: str | None = None
    visibility: str = "public"
    status: str = "published"
    items: Sequence[NewPackItem] = ()
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class ThemePackSpec:
    """What theme curation asks for when it starts a volume (pipeline §2.8): the system owner, the
    display fields and the theme columns. `pack_status`/`status` follow from the item count."""

    owner_jid: str
    name: str
    publisher: str
    description: str
    visibility: str
    theme_key: str
    volume: int
    sensitive: bool


@dataclass(frozen=True)
class ThemePackChange:
    """What one write to a theme pack did: the pack afterwards and the stickers actually moved."""

    pack: Pack
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: bool


def theme_pack_status(count: int, ready_min_items: int) -> tuple[str, str]:
    """(pack_status, status) of a theme pack holding `count` stickers: `ready`/`published` from
    `ready_min_items` on, else `building`/`draft` so an unfinished volume stays out of the catalog."""
    if count >= ready_min_items:
        return "ready", "published"
    return "building", "draft"


class PackService:
    """Owner-scoped operations on packs. Owners are normalised; references resolve as in chat §1.2."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        key_suffix: Callable[[], str] = random_key_suffix,
    ) -> None:
        self.database = database
        self.settings = settings
        self._key_suffix = key_suffix
        self.auto_pack_base = normalize_auto_pack_name(settings.sticker_pack_auto_pack_name)

    @property
    def max_items(self) -> int:
        return self.settings.sticker_pack_max_items

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
            pack_id = self._resolve_id(connection, owner, ref)
            return self._load(connection, pack_id)

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
        sticker_ids = list(dict.fromkeys(_clean_sticker_id(value) for value in initial_sticker_ids))
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
            self._lock_owner(connection, owner)
            self._check_pack_limit(connection, owner)
            self._require_assets(connection, sticker_ids)
            cover = sticker_ids[0] if sticker_ids else None
            pack_id = self._insert_pack(connection, owner, values, cover=cover)
            rows = [self._item_row(pack_id, sid, position) for position, sid in enumerate(sticker_ids, 1)]
            repo.insert_items(connection, rows)
            self._share_if_visible(connection, values, sticker_ids)
            return self._load(connection, pack_id)

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
            lock_keys(connection, PACK_OWNER, planned)  # first, as `_lock_owner` (sorted: no deadlock)
            for owner, count in planned.items():
                self._check_pack_room(connection, owner, count)
            self._require_assets(connection, [item[0] for *_, items in prepared for item in items])
            pack_ids: list[str] = []
            item_rows: list[dict[str, Any]] = []
            for owner, values, items in prepared:
                cover = items[0][0] if items else None
                pack_id = self._insert_pack(connection, owner, values, cover=cover)
                pack_ids.append(pack_id)
                for position, (sticker_id, emojis, label) in enumerate(items, 1):
                    row = self._item_row(pack_id, sticker_id, position)
                    row.update(
                        emojis=emojis or None,
                        accessibility_label=label,
                        created_at=values["created_at"],
                        updated_at=values["created_at"],
                    )
                    item_rows.append(row)
            repo.insert_items(connection, item_rows)
            for _, values, items in prepared:
                self._share_if_visible(connection, values, [item[0] for item in items])
            return [self._load(connection, pack_id) for pack_id in pack_ids]

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
            sticker_id = _clean_sticker_id(item.sticker_id)
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
            source_id = self._resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            self._lock_owner(connection, owner)
            source = self._locked(connection, owner, source_id)
            self._check_pack_limit(connection, owner)
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
            pack_id = self._insert_pack(connection, owner, values, cover=source["cover_sticker_id"])
            copies = []
            for item in repo.item_rows(connection, source_id):
                copy = self._item_row(pack_id, item["sticker_id"], item["position"])
                copy.update(emojis=item["emojis"], accessibility_label=item["accessibility_label"])
                copies.append(copy)
            repo.insert_items(connection, copies)
            self._share_if_visible(connection, values, [copy["sticker_id"] for copy in copies])
            return self._load(connection, pack_id)

    # --- items ----------------------------------------------------------------------------------
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
        clean_id = _clean_sticker_id(sticker_id)
        emoji_list = normalize_emojis(emojis)
        label = text_policy.optional(ACCESSIBILITY_LABEL, accessibility_label)
        with self.database.read() as connection:
            pack_id = self._resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = self._locked(connection, owner, pack_id)
            items = repo.item_rows(connection, pack_id)
            self._require_assets(connection, [clean_id])
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
            row = self._item_row(pack_id, clean_id, next_position(item["position"] for item in items))
            row.update(emojis=emoji_list or None, accessibility_label=label)
            repo.insert_items(connection, [row])
            self._share_if_visible(connection, pack, [clean_id])
            if pack["cover_sticker_id"] is None:
                changes = {"cover_sticker_id": clean_id}
                self._bump(connection, pack, changes, "updated", ["cover_sticker_id", "items"])
            else:
                self._bump(connection, pack, {}, "version_bumped", ["items"])
            return PackItem.from_row(row)

    def remove_sticker(self, owner_jid: str, pack_ref: object, sticker_id_or_position: str | int) -> PackItem:
        """Take one item out (by position or sticker id) and close the gap. The sticker itself stays
        stored. If it was the cover, the new first item becomes the cover (none if the pack is empty)."""
        owner = normalize_owner_jid(owner_jid)
        selector = _item_selector(sticker_id_or_position)
        with self.database.read() as connection:
            pack_id = self._resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = self._locked(connection, owner, pack_id)
            items = repo.item_rows(connection, pack_id)
            removed = _find_item(items, selector)
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
                self._bump(connection, pack, changes, "updated", ["cover_sticker_id", "items"])
            else:
                self._bump(connection, pack, {}, "version_bumped", ["items"])
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
            pack_id = self._resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = self._locked(connection, owner, pack_id)
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
                self._bump(connection, pack, {}, "version_bumped", ["items"])
            return self._load(connection, pack_id)

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
        cover_selector = None if cover is UNSET or cover is None else _item_selector(cover)
        item_changes: dict[str, Any] = {}
        if emojis is not UNSET:
            item_changes["emojis"] = normalize_emojis(emojis) or None
        if accessibility_label is not UNSET:
            label = text_policy.optional(ACCESSIBILITY_LABEL, accessibility_label)
            item_changes["accessibility_label"] = label
        item_selector = _item_selector(item) if item is not None else None
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
            pack_id = self._resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = self._locked(connection, owner, pack_id)
            self._bump(connection, pack, {"deleted_at": utcnow()}, "deleted", ["deleted_at"])
            return self._load(connection, pack_id)

    # --- theme curation (system-owned auto packs, pipeline §2.8-§2.12) -------------------------
    # Curation writes only packs that are the system owner's, flagged auto and theme-marked; every
    # method re-checks that under the pack's row lock, so a user-managed pack is never touched even
    # if a plan was made from stale data. Each call is one transaction with one version and event.
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
        wanted = list(dict.fromkeys(_clean_sticker_id(value) for value in sticker_ids))[: self.max_items]
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
            self._lock_owner(connection, owner)  # first, so the pack count below is exact
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
            pack_id = self._insert_pack(connection, owner, values, cover=chosen[0])
            rows = [self._item_row(pack_id, sid, position) for position, sid in enumerate(chosen, 1)]
            repo.insert_items(connection, rows)
            return self._load(connection, pack_id)

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
            pack = self._locked_theme_pack(connection, owner, pack_id)
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
                return ThemePackChange(self._load(connection, pack_id), (), (), False)
            now = utcnow()
            repo.delete_items(connection, [item["id"] for item in removed])
            current = {item["id"]: item["position"] for item in kept}
            repo.move_items(connection, position_moves(current, [item["id"] for item in kept]), now)
            rows = [self._item_row(pack_id, sid, len(kept) + index) for index, sid in enumerate(added, 1)]
            repo.insert_items(connection, rows)
            fields = sorted(set(changes) | ({"items"} if removed or added else set()))
            changes["last_rebalanced_at"] = now
            self._bump(connection, pack, changes, "updated", fields)
            return ThemePackChange(
                self._load(connection, pack_id),
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
            pack = self._locked_theme_pack(connection, owner, pack_id)
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
            self._bump(connection, pack, changes, "deleted", ["deleted_at", "items", "pack_status"])
            return tuple(item["sticker_id"] for item in items)

    def _locked_theme_pack(self, connection: Connection, owner: str, pack_id: str) -> dict[str, Any]:
        """The live theme pack `pack_id` of the system owner, write-locked; anything else (a user's
        pack, a collector pack, a deleted one) is refused so curation cannot touch it."""
        pack = self._locked(connection, owner, pack_id)
        if not pack["is_auto_pack"] or not is_theme_pack(
            pack["name"], pack["description"], pack["pack_theme_key"]
        ):
            raise InvalidInput(f"Pack {pack['name']!r} is not a theme pack; curation leaves it alone.")
        return pack

    # --- internals ------------------------------------------------------------------------------
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
            pack_id = self._resolve_id(connection, owner, pack_ref)
        with self.database.transaction() as connection:
            pack = self._locked(connection, owner, pack_id)
            fields = list(changes)
            if cover is not UNSET or item_changes:
                items = repo.item_rows(connection, pack_id)
                if cover is not UNSET:
                    chosen = self._pick(items, cover, pack) if cover is not None else None
                    changes["cover_sticker_id"] = chosen["sticker_id"] if chosen is not None else None
                    fields.append("cover_sticker_id")
                if item_changes and item_selector is not None:
                    target = self._pick(items, item_selector, pack)
                    repo.update_item(connection, target["id"], {**item_changes, "updated_at": utcnow()})
                    fields.append("items")
            self._bump(connection, pack, changes, "updated", fields)
            widened = changes.get("visibility", pack["visibility"]) != pack["visibility"]
            if widened and self._confers_sharing({**pack, **changes}):
                repo.mark_pack_items_shared(connection, pack_id, utcnow())
            return self._load(connection, pack_id)

    @staticmethod
    def _pick(items: Sequence[dict[str, Any]], selector: str, pack: dict[str, Any]) -> dict[str, Any]:
        found = _find_item(items, selector)
        if found is None:
            raise StickerNotFound(
                f"That sticker is not in pack {pack['name']!r}: give a position 1-{len(items)} or the id "
                "of a sticker in it (see `omnizap pack info`)."
            )
        return found

    def _resolve_id(self, connection: Connection, owner: str, ref: object) -> str:
        candidates = reference_candidates(ref)
        if not candidates:
            raise InvalidInput("Say which pack: give its name, key (like meus-memes-k3x9q) or link.")
        packs = repo.owner_pack_references(connection, owner)
        for candidate in candidates:
            for pack in packs:
                if candidate in (pack["id"], pack["pack_key"]):
                    return str(pack["id"])
            folded = candidate.casefold()
            for pack in packs:
                if pack["name"].casefold() == folded:
                    return str(pack["id"])
        shown = sanitize_text(ref, 80)
        raise PackNotFound(
            f"Pack {shown!r} not found for {owner}. List this owner's packs with "
            f"`omnizap pack list --owner {owner}` and use a name or key shown there."
        )

    def _locked(self, connection: Connection, owner: str, pack_id: str) -> dict[str, Any]:
        """The pack row, write-locked; gone (deleted meanwhile) counts as not found."""
        pack = repo.lock_pack(connection, pack_id)
        if pack is None or pack["deleted_at"] is not None or pack["owner_jid"] != owner:
            raise PackNotFound(
                f"The pack was deleted a moment ago; list the packs with `omnizap pack list --owner {owner}`."
            )
        return pack

    def _load(self, connection: Connection, pack_id: str) -> Pack:
        found = repo.pack_with_count(connection, pack_id)
        if found is None:  # only reachable if the row vanished inside our own transaction
            raise PackNotFound(f"Pack {pack_id} does not exist.")
        return Pack.from_row(*found)

    @staticmethod
    def _lock_owner(connection: Connection, owner: str) -> None:
        """The owner's write lock, taken as the first statement of a transaction that adds packs, so
        concurrent adds for one owner count and insert one after the other (on MySQL the snapshot
        of the count then starts after the wait). Owner before pack row: no writer takes them in
        the other order."""
        lock_key(connection, PACK_OWNER, owner)

    def _check_pack_limit(self, connection: Connection, owner: str) -> None:
        """Refuse a new pack over the owner's limit (the caller holds the owner's lock)."""
        limit = self.settings.sticker_pack_max_packs_per_owner
        if limit is None:
            return
        count = repo.count_live_packs(connection, owner)
        if count >= limit:
            raise PackLimitReached(
                f"Pack limit reached ({limit}): {owner} already has {count} packs. Delete one with "
                "`omnizap pack delete`, or raise STICKER_PACK_MAX_PACKS_PER_OWNER."
            )

    def _check_pack_room(self, connection: Connection, owner: str, adding: int) -> None:
        """The owner's pack limit for `adding` new packs at once (the caller holds the owner's lock)."""
        limit = self.settings.sticker_pack_max_packs_per_owner
        if limit is None:
            return
        count = repo.count_live_packs(connection, owner)
        if count + adding > limit:
            raise PackLimitReached(
                f"Pack limit reached ({limit}): {owner} has {count} packs and {adding} more were asked for. "
                "Delete some with `omnizap pack delete`, or raise STICKER_PACK_MAX_PACKS_PER_OWNER."
            )

    def _confers_sharing(self, pack: dict[str, Any]) -> bool:
        """Whether a sticker in this pack counts as shared: a public or unlisted pack, except theme
        curation's own packs (they take only stickers that are shareable already)."""
        if pack["visibility"] not in SHARED_VISIBILITIES:
            return False
        return not (
            pack.get("is_auto_pack")
            and is_theme_pack(pack["name"], pack.get("description"), pack.get("pack_theme_key"))
        )

    def _share_if_visible(self, connection: Connection, pack: dict[str, Any], sticker_ids: list[str]) -> None:
        if sticker_ids and self._confers_sharing(pack):
            repo.mark_shared(connection, sticker_ids, utcnow())

    def _require_assets(self, connection: Connection, sticker_ids: Iterable[str]) -> None:
        wanted = list(sticker_ids)
        found = repo.existing_asset_ids(connection, wanted)
        missing = [sid for sid in wanted if sid not in found]
        if missing:
            raise StickerNotFound(
                f"No stored sticker has the id {missing[0]!r}; import it first with `omnizap sticker import`."
            )

    def _insert_pack(
        self, connection: Connection, owner: str, values: dict[str, Any], *, cover: str | None
    ) -> str:
        for _ in range(KEY_ATTEMPTS):
            pack_key = make_pack_key(values["name"], self._key_suffix)
            if not repo.key_taken(connection, pack_key):
                break
        else:
            raise StickerPackError(
                f"Could not generate a unique pack key after {KEY_ATTEMPTS} tries; try again.",
                code="INTERNAL_ERROR",
            )
        pack_id = str(uuid.uuid4())
        now = utcnow()
        row = {
            "id": pack_id,
            "owner_jid": owner,
            "pack_key": pack_key,
            "cover_sticker_id": cover,
            "pack_status": "ready",
            "version": 1,
            "created_at": now,
            "updated_at": now,
            **values,
        }
        repo.insert_pack(connection, row)
        pack_changed(
            connection,
            pack_id=pack_id,
            version=1,
            action="created",
            extra={"pack_key": pack_key, "owner_jid": owner, "visibility": row["visibility"]},
        )
        return pack_id

    @staticmethod
    def _item_row(pack_id: str, sticker_id: str, position: int) -> dict[str, Any]:
        now = utcnow()
        return {
            "id": str(uuid.uuid4()),
            "pack_id": pack_id,
            "sticker_id": sticker_id,
            "position": position,
            "emojis": None,
            "accessibility_label": None,
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _bump(
        connection: Connection, pack: dict[str, Any], changes: dict[str, Any], action: str, fields: list[str]
    ) -> int:
        """Apply `changes` as the pack's next version (+1, updated_at now) and record the event."""
        version = int(pack["version"]) + 1
        repo.update_pack(connection, pack["id"], {**changes, "version": version, "updated_at": utcnow()})
        pack_changed(connection, pack_id=pack["id"], version=version, action=action, fields=fields)
        return version
