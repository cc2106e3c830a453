"""Pure rules of packs and items: text cleaning, pack keys, emojis, visibility and positions.

Nothing here touches the database, so every rule is property-tested on its own (chat §1.2, §1.3).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from omnizap.core import text_policy
from omnizap.core.errors import InvalidInput, PackNotFound
from omnizap.platform.db.schema import PACK_STATUSES, VISIBILITIES

# Field limits of the original (chat §2.1 "Limits recap"); the columns are sized to match. The
# policy for stored text (omnizap.core.text_policy) owns them.
NAME_MAX = text_policy.PACK_NAME.max_length
PUBLISHER_MAX = text_policy.PUBLISHER.max_length
DESCRIPTION_MAX = text_policy.DESCRIPTION.max_length
LABEL_MAX = text_policy.ACCESSIBILITY_LABEL.max_length
REFERENCE_MAX = 180
EMOJIS_MAX = text_policy.EMOJIS_PER_STICKER_MAX

SLUG_MAX = 32
KEY_SUFFIX_LENGTH = 5
KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
PACK_KEY_PATTERN = re.compile(r"^[a-z0-9-]{1,32}-[a-z0-9]{5}$")
_SUFFIX_PATTERN = re.compile(r"^[a-z0-9]{5}$")
_NON_SLUG = re.compile(r"[^a-z0-9]+")

# Markers that the auto-collector and theme curation put in descriptions (chat §5.2, §5.3).
COLLECTOR_MARKER = "[auto-pack:collector]"
COLLECTOR_DESCRIPTION = f"Automatic collection of stickers created by the user. {COLLECTOR_MARKER}"
LEGACY_COLLECTOR_DESCRIPTION = "coleção automática de figurinhas criadas pelo usuário."
THEME_MARKERS = ("[auto-theme:", "[auto-tag:")
THEME_NAME_PREFIX = "[auto]"

_CLEAR_WORDS = {"-", "clear"}


# --- text -------------------------------------------------------------------------------------------
def _is_separator_like(char: str) -> bool:
    # Control characters (C0, DEL, C1) and line/paragraph separators act as word breaks, so
    # "a\nb" stays two words ("a b") instead of gluing them together as the original did.
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"}


def sanitize_text(value: object, max_len: int) -> str | None:
    """Lenient cleaning for text that is shown or looked up, not stored from input: references,
    echoes of a bad value in a message, stored text written by other tools. Controls become spaces,
    whitespace collapses, cut to `max_len`. Text people store goes through `text_policy` instead.

    Returns None when nothing is left ("missing"). Lone surrogates (undecodable bytes smuggled in
    through the shell) become U+FFFD so the text can always be encoded for the database.
    """
    if value is None:
        return None
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    text = str(value)
    cleaned = "".join(
        " " if _is_separator_like(char) else "\ufffd" if unicodedata.category(char) == "Cs" else char
        for char in text
    )
    collapsed = " ".join(cleaned.split())
    # Cutting can leave a trailing space where a word boundary fell on the limit.
    result = collapsed[:max_len].rstrip()
    return result or None


def optional_description(value: object) -> str | None:
    """A description under the text policy, where empty, `-` or `clear` (any case) mean "none"."""
    if value is None or str(value).strip().lower() in _CLEAR_WORDS:
        return None
    return text_policy.optional(text_policy.DESCRIPTION, value)


# --- pack keys --------------------------------------------------------------------------------------
def slugify(name: object) -> str:
    """`"Meus memes 😂"` → `"meus-memes"`: ASCII letters and digits joined by single dashes, ≤ 32."""
    decomposed = unicodedata.normalize("NFD", str(name or ""))
    without_marks = "".join(char for char in decomposed if not unicodedata.combining(char))
    slug = _NON_SLUG.sub("-", without_marks.lower()).strip("-")
    # Cut, then drop a dash the cut may have left at the end (the original kept it).
    slug = slug[:SLUG_MAX].rstrip("-")
    return slug or "pack"


def random_key_suffix() -> str:
    """Five characters from [a-z0-9], uniformly, from the OS's cryptographic generator."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_SUFFIX_LENGTH))


def make_pack_key(name: object, random: Callable[[], str] = random_key_suffix) -> str:
    """A public pack key `<slug>-<5 random>`; `random` supplies the suffix (tests pass their own)."""
    suffix = random()
    if not _SUFFIX_PATTERN.match(suffix):
        raise ValueError(f"a pack key suffix must be 5 characters of [a-z0-9], got {suffix!r}")
    return f"{slugify(name)}-{suffix}"


def is_valid_pack_key(value: object) -> bool:
    return isinstance(value, str) and PACK_KEY_PATTERN.match(value) is not None


def public_pack_key(value: str | None) -> str:
    """The key of a public link as stored (lowercase); what cannot be a key is simply not found."""
    key = (value or "").strip().lower()
    if not is_valid_pack_key(key):
        raise PackNotFound(
            "Pack not found: that is not a pack key (keys look like meus-memes-k3x9q); check the link."
        )
    return key


# --- how a pack is referenced ----------------------------------------------------------------------
_TRAILING_PUNCTUATION = ")],;.!?"
_STICKERS_PATH = re.compile(r"/stickers/([^/?#\s]+)")


def reference_candidates(reference: object) -> list[str]:
    """What a pack reference may mean, in the order to try: the text as given, without trailing
    punctuation (a reference pasted from a sentence), the key in a `/stickers/<key>` link, and each
    of those lowercased and with `_`/`-` swapped (chat §1.2)."""
    text = str(reference if reference is not None else "").strip()
    bases = [
        sanitize_text(text, REFERENCE_MAX),
        sanitize_text(text.rstrip(_TRAILING_PUNCTUATION), REFERENCE_MAX),
    ]
    link = _STICKERS_PATH.search(text)
    if link:
        bases.append(sanitize_text(urllib.parse.unquote(link.group(1)), REFERENCE_MAX))
    candidates: list[str] = []
    for base in bases:
        if not base:
            continue
        for cased in (base, base.lower()):
            for variant in (cased, cased.replace("_", "-"), cased.replace("-", "_")):
                if variant not in candidates:
                    candidates.append(variant)
    return candidates


# --- emojis, visibility, status ---------------------------------------------------------------------
def normalize_emojis(value: str | Sequence[Any] | None) -> list[str]:
    """Emojis of an item under the text policy: none, or 1–3 real emoji (a list, or a text split on
    commas or spaces; repeats dropped). Anything else is refused with a message saying why."""
    return text_policy.emoji_list(value)


def validate_visibility(value: object) -> str:
    """`private`, `public` or `unlisted`, any case. Anything else is refused (the original's create
    silently turned it into `public`)."""
    text = str(value if value is not None else "").strip().lower()
    if text not in VISIBILITIES:
        shown = sanitize_text(value, 40) or "empty"
        raise InvalidInput(f"Invalid visibility {shown!r}. Use: private, public or unlisted.")
    return text


def validate_status(value: object) -> str:
    text = str(value if value is not None else "").strip().lower()
    if text not in PACK_STATUSES:
        shown = sanitize_text(value, 40) or "empty"
        raise InvalidInput(f"Invalid pack status {shown!r}. Use one of: {', '.join(PACK_STATUSES)}.")
    return text


# --- positions --------------------------------------------------------------------------------------
def next_position(positions: Iterable[int]) -> int:
    """Where an added item goes: after the last one."""
    return max(positions, default=0) + 1


def reorder_positions(current_ids: Sequence[str], requested_ids: Sequence[str]) -> list[str]:
    """The new order: requested ids that are in the pack first (given order, repeats dropped), then
    every other item in its current relative order."""
    present = set(current_ids)
    front = [item for item in dict.fromkeys(requested_ids) if item in present]
    chosen = set(front)
    return front + [item for item in current_ids if item not in chosen]


def positions_after_remove(current_ids: Sequence[str], removed_id: str) -> dict[str, int]:
    """Positions 1..n-1 of the items left after removing one; the order is kept."""
    remaining = [item for item in current_ids if item != removed_id]
    return {item: index for index, item in enumerate(remaining, start=1)}


def position_moves(current: Mapping[str, int], new_order: Sequence[str]) -> dict[str, int]:
    """Only the items whose position changes when the pack takes `new_order` (positions 1..n)."""
    return {
        item: position for position, item in enumerate(new_order, start=1) if current.get(item) != position
    }


# --- kinds of packs (chat §5.3) -----------------------------------------------------------------------
def normalize_auto_pack_name(value: object, fallback: str = "pack") -> str:
    """The auto-collector's name normaliser: no diacritics, lowercase, only [a-z0-9], ≤ 120."""
    cleaned = sanitize_text(value, NAME_MAX) or ""
    decomposed = unicodedata.normalize("NFD", cleaned)
    ascii_only = "".join(char for char in decomposed if not unicodedata.combining(char)).lower()
    normalized = re.sub(r"[^a-z0-9]", "", ascii_only)[:NAME_MAX]
    return normalized or fallback


def is_theme_pack(name: str | None, description: str | None, theme_key: str | None) -> bool:
    """A pack made by theme curation (never touched by the auto-collector)."""
    lowered = (description or "").lower()
    if any(marker in lowered for marker in THEME_MARKERS):
        return True
    if (name or "").strip().lower().startswith(THEME_NAME_PREFIX):
        return True
    return bool((theme_key or "").strip())


def is_collector_pack(
    name: str | None, description: str | None, theme_key: str | None, is_auto_pack: bool, base: str
) -> bool:
    """A pack the auto-collector made (or an older release did).

    Older collectors are recognised by their description or by a name that is exactly
    `<base><digits>` ("pack2"). Unlike the original, names are not squeezed first, so a user's own
    pack called "Pack 2" or "pack-10" stays the user's.
    """
    if is_theme_pack(name, description, theme_key):
        return False
    lowered = (description or "").lower()
    if COLLECTOR_MARKER in lowered or LEGACY_COLLECTOR_DESCRIPTION in lowered:
        return True
    if re.fullmatch(re.escape(base) + r"\d+", (name or "").strip().lower()):
        return True
    return bool(is_auto_pack)


def next_auto_pack_name(existing_names: Iterable[str], base: str) -> str:
    """`<base><k>` for the smallest k ≥ 1 no existing pack uses (a bare `<base>` takes 1)."""
    normalized = {normalize_auto_pack_name(name, fallback="") for name in existing_names}
    used: set[int] = set()
    for name in normalized:
        if name == base:
            used.add(1)
        elif name.startswith(base) and name[len(base) :].isdigit():
            used.add(int(name[len(base) :]))
    for index in range(1, 10_000):
        candidate = f"{base[: NAME_MAX - len(str(index))]}{index}"
        if index not in used and candidate not in normalized:
            return candidate
    count = len(normalized) + 1
    return f"{base[: NAME_MAX - len(str(count))]}{count}"
