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

from omnizap.core.errors import InvalidInput, PackNotFound
from omnizap.platform.db.schema import PACK_STATUSES, VISIBILITIES

# Field limits of the original (chat §2.1 "Limits recap"); the columns are sized to match.
NAME_MAX = 120
PUBLISHER_MAX = 120
DESCRIPTION_MAX = 1024
LABEL_MAX = 255
REFERENCE_MAX = 180
EMOJIS_MAX = 8
EMOJI_MAX_CHARS = 32  # room for the longest ZWJ sequences (families with skin tones)

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
    """Clean user text for storage: controls become spaces, whitespace collapses, cut to `max_len`.

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


def require_text(value: object, max_len: int, what: str) -> str:
    """`sanitize_text` for a required field: refuses empty input with a message naming the field."""
    cleaned = sanitize_text(value, max_len)
    if cleaned is None:
        raise InvalidInput(f"{what} is required: give at least one visible character (at most {max_len}).")
    return cleaned


def optional_description(value: object) -> str | None:
    """A description, where empty, `-` or `clear` (any case) mean "no description"."""
    cleaned = sanitize_text(value, DESCRIPTION_MAX)
    if cleaned is None or cleaned.lower() in _CLEAR_WORDS:
        return None
    return cleaned


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
    """Emojis of an item: a list or a text split on commas or spaces; empties and repeats dropped.

    At most 8 are kept, like the original. They are not checked to be real emoji here; the WhatsApp
    export insists on 1–3 per sticker and says so when a pack breaks that.
    """
    if value is None:
        return []
    if isinstance(value, str):
        entries: list[Any] = value.split(",")
    elif isinstance(value, Sequence):
        entries = list(value)
    else:
        raise InvalidInput("Emojis must be a list or a comma-separated text such as 😀,😂.")
    emojis: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise InvalidInput(f"Each emoji must be text, got {type(entry).__name__}.")
        # An emoji never contains a space, so whitespace (controls included) separates entries too:
        # "😀 😂" is two emojis, as is "😀,😂".
        for token in (sanitize_text(entry, 10 * EMOJI_MAX_CHARS) or "").split():
            emoji = token[:EMOJI_MAX_CHARS]
            if emoji not in emojis:
                emojis.append(emoji)
    return emojis[:EMOJIS_MAX]


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
