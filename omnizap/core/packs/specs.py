"""The pack service's plain data and pure helpers: the request/result dataclasses (`NewPack`,
`NewPackItem`, `ThemePackSpec`, `ThemePackChange`), the `UNSET` marker, `pack_kind`,
`theme_pack_status`, and the parsing of sticker ids and item selectors. No database access here.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from omnizap.core.errors import InvalidInput, StickerNotFound
from omnizap.core.packs.models import Pack
from omnizap.core.packs.rules import is_collector_pack, is_theme_pack, sanitize_text

_STICKER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

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


def clean_sticker_id(value: object) -> str:
    text = str(value if value is not None else "").strip()
    if not text:
        raise InvalidInput("Give the sticker's id (as printed by `omnizap sticker import`).")
    if not _STICKER_ID.match(text):
        shown = sanitize_text(text, 40)
        raise StickerNotFound(f"No sticker has the id {shown!r}; sticker ids look like 8c1f…-…-… (a UUID).")
    return text


def parse_item_selector(value: object) -> str:
    text = None if isinstance(value, bool) else sanitize_text(value, 64)
    if text is None:
        raise InvalidInput("Give the sticker's position in the pack (1, 2, …) or its sticker id.")
    return text


def find_item(items: Sequence[dict[str, Any]], selector: str) -> dict[str, Any] | None:
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
