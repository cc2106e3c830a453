"""What the parts of the pack service share: `PackServiceBase` (the database, settings and key
generator every part works with) and the transaction-level steps they are built from: resolving a
reference, row locks (owner, pack), the pack-limit checks, marking stickers shared, inserting a pack
with its key and "created" event, item rows, and `bump` (next version plus its PACK_UPDATED event).

Functions here take the open `Connection`; callers own the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from omnizap.config import Settings
from omnizap.core.errors import (
    InvalidInput,
    PackLimitReached,
    PackNotFound,
    StickerNotFound,
    StickerPackError,
)
from omnizap.core.packs import repository as repo
from omnizap.core.packs.models import Pack
from omnizap.core.packs.rules import (
    is_theme_pack,
    make_pack_key,
    normalize_auto_pack_name,
    random_key_suffix,
    reference_candidates,
    sanitize_text,
)
from omnizap.core.packs.specs import SHARED_VISIBILITIES, find_item
from omnizap.platform.db import Database
from omnizap.platform.db.locks import PACK_OWNER, lock_key
from omnizap.platform.db.types import utcnow
from omnizap.platform.outbox.events import pack_changed

KEY_ATTEMPTS = 24


class PackServiceBase:
    """The state the pack service's parts share; `PackService` composes the parts on top of it."""

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


def pick(items: Sequence[dict[str, Any]], selector: str, pack: dict[str, Any]) -> dict[str, Any]:
    found = find_item(items, selector)
    if found is None:
        raise StickerNotFound(
            f"That sticker is not in pack {pack['name']!r}: give a position 1-{len(items)} or the id "
            "of a sticker in it (see `omnizap pack info`)."
        )
    return found


def resolve_id(connection: Connection, owner: str, ref: object) -> str:
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


def locked(connection: Connection, owner: str, pack_id: str) -> dict[str, Any]:
    """The pack row, write-locked; gone (deleted meanwhile) counts as not found."""
    pack = repo.lock_pack(connection, pack_id)
    if pack is None or pack["deleted_at"] is not None or pack["owner_jid"] != owner:
        raise PackNotFound(
            f"The pack was deleted a moment ago; list the packs with `omnizap pack list --owner {owner}`."
        )
    return pack


def load(connection: Connection, pack_id: str) -> Pack:
    found = repo.pack_with_count(connection, pack_id)
    if found is None:  # only reachable if the row vanished inside our own transaction
        raise PackNotFound(f"Pack {pack_id} does not exist.")
    return Pack.from_row(*found)


def lock_owner(connection: Connection, owner: str) -> None:
    """The owner's write lock, taken as the first statement of a transaction that adds packs, so
    concurrent adds for one owner count and insert one after the other (on MySQL the snapshot
    of the count then starts after the wait). Owner before pack row: no writer takes them in
    the other order."""
    lock_key(connection, PACK_OWNER, owner)


def check_pack_limit(connection: Connection, owner: str, limit: int | None) -> None:
    """Refuse a new pack over the owner's limit (the caller holds the owner's lock)."""
    if limit is None:
        return
    count = repo.count_live_packs(connection, owner)
    if count >= limit:
        raise PackLimitReached(
            f"Pack limit reached ({limit}): {owner} already has {count} packs. Delete one with "
            "`omnizap pack delete`, or raise STICKER_PACK_MAX_PACKS_PER_OWNER."
        )


def check_pack_room(connection: Connection, owner: str, adding: int, limit: int | None) -> None:
    """The owner's pack limit for `adding` new packs at once (the caller holds the owner's lock)."""
    if limit is None:
        return
    count = repo.count_live_packs(connection, owner)
    if count + adding > limit:
        raise PackLimitReached(
            f"Pack limit reached ({limit}): {owner} has {count} packs and {adding} more were asked for. "
            "Delete some with `omnizap pack delete`, or raise STICKER_PACK_MAX_PACKS_PER_OWNER."
        )


def confers_sharing(pack: dict[str, Any]) -> bool:
    """Whether a sticker in this pack counts as shared: a public or unlisted pack, except theme
    curation's own packs (they take only stickers that are shareable already)."""
    if pack["visibility"] not in SHARED_VISIBILITIES:
        return False
    return not (
        pack.get("is_auto_pack")
        and is_theme_pack(pack["name"], pack.get("description"), pack.get("pack_theme_key"))
    )


def share_if_visible(connection: Connection, pack: dict[str, Any], sticker_ids: list[str]) -> None:
    if sticker_ids and confers_sharing(pack):
        repo.mark_shared(connection, sticker_ids, utcnow())


def require_assets(connection: Connection, sticker_ids: Iterable[str]) -> None:
    wanted = list(sticker_ids)
    found = repo.existing_asset_ids(connection, wanted)
    missing = [sid for sid in wanted if sid not in found]
    if missing:
        raise StickerNotFound(
            f"No stored sticker has the id {missing[0]!r}; import it first with `omnizap sticker import`."
        )


def insert_pack(
    connection: Connection,
    owner: str,
    values: dict[str, Any],
    *,
    cover: str | None,
    key_suffix: Callable[[], str],
) -> str:
    """Insert a live pack at version 1 under a fresh key, with its "created" event; returns its id."""
    for _ in range(KEY_ATTEMPTS):
        pack_key = make_pack_key(values["name"], key_suffix)
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


def item_row(pack_id: str, sticker_id: str, position: int) -> dict[str, Any]:
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


def bump(
    connection: Connection, pack: dict[str, Any], changes: dict[str, Any], action: str, fields: list[str]
) -> int:
    """Apply `changes` as the pack's next version (+1, updated_at now) and record the event."""
    version = int(pack["version"]) + 1
    repo.update_pack(connection, pack["id"], {**changes, "version": version, "updated_at": utcnow()})
    pack_changed(connection, pack_id=pack["id"], version=version, action=action, fields=fields)
    return version
