"""Query parameters of the public reads, validated: a bad value is refused (HTTP 400), never guessed.

The original clamped numbers silently and turned unknown sorts into the default; here `limit=0`,
`limit=61`, `limit=abc`, `offset=-1`, an unknown sort, intent or NSFW level, or more than 20
categories answer `InvalidInput` naming the parameter and what it accepts. Search text is cleaned
and cut to 120 characters, as the original did (a long search is not an error).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from omnizap.catalog.text import fold, normalize_tag, sanitize_query
from omnizap.core.errors import InvalidInput

MAX_OFFSET = 100_000
MAX_CATEGORIES = 20
MAX_RAW_NUMBER_LENGTH = 12

# Accepted spellings → canonical sort. `popular` is the ranking (the original mapped an explicit
# `sort=popular` to trending); `comments` ranked by a comment count that was always 0 and so fell
# back to likes: it is an alias of `liked`.
SORT_ALIASES = {
    "": "popular",
    "popular": "popular",
    "popularity": "popular",
    "trending": "trending",
    "new": "new",
    "recent": "new",
    "newest": "new",
    "liked": "liked",
    "likes": "liked",
    "downloads": "downloads",
    "comments": "liked",
}
SORTS = ("popular", "trending", "new", "liked", "downloads")
INTENTS = ("em_alta", "novos", "crescendo_agora", "mais_curtidos")
NSFW_LEVELS = ("safe", "suggestive", "explicit")


def _shown(value: object, limit: int = 40) -> str:
    text = sanitize_query(value)
    return repr(text[:limit]) if text else "empty"


def parse_int(
    name: str, value: int | str | None, *, default: int, low: int, high: int, meaning: str = ""
) -> int:
    """A whole number in [low, high]; None or "" means the default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        raise InvalidInput(
            f"{name} must be a whole number from {low} to {high}.", details={"parameter": name}
        )
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if len(text) > MAX_RAW_NUMBER_LENGTH or not re.fullmatch(r"[+-]?[0-9]+", text):
            raise InvalidInput(
                f"{name} must be a whole number from {low} to {high}, got {_shown(value)}.",
                details={"parameter": name},
            )
        number = int(text)
    if not low <= number <= high:
        raise InvalidInput(
            f"{name} must be from {low} to {high}{meaning}, got {number}.", details={"parameter": name}
        )
    return number


def parse_sort(value: object) -> str:
    key = str(value if value is not None else "").strip().lower()
    if key not in SORT_ALIASES:
        raise InvalidInput(
            f"sort {_shown(value)} is not known. Use one of: popular (default), trending, new "
            "(alias recent), liked (alias likes), downloads.",
            details={"parameter": "sort"},
        )
    return SORT_ALIASES[key]


def parse_intent(value: object) -> str:
    """`em_alta`, `novos`, `crescendo_agora`, `mais_curtidos`, or "" for none. Accents, case and
    separators are forgiven (`Em Alta` → `em_alta`)."""
    text = str(value if value is not None else "").strip()
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text[:64])
    plain = "".join(char for char in decomposed if not unicodedata.combining(char)).lower()
    key = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")
    if key not in INTENTS:
        raise InvalidInput(
            f"intent {_shown(value)} is not known. Use one of: {', '.join(INTENTS)}.",
            details={"parameter": "intent"},
        )
    return key


def parse_nsfw(value: object) -> str:
    text = str(value if value is not None else "").strip().lower()
    if not text:
        return "safe"
    if text not in NSFW_LEVELS:
        raise InvalidInput(
            f"nsfw {_shown(value)} is not known. Use safe (default), suggestive or explicit: the most "
            "sensitive level of pack to include.",
            details={"parameter": "nsfw"},
        )
    return text


def parse_categories(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Normalized tags from a comma list or repeated values; at most 20 distinct ones."""
    if value is None:
        return ()
    raw = [value] if isinstance(value, str) else list(value)
    tags: list[str] = []
    for entry in raw:
        for part in str(entry).split(","):
            tag = normalize_tag(part[:400])
            if tag and tag not in tags:
                tags.append(tag)
                if len(tags) > MAX_CATEGORIES:
                    raise InvalidInput(
                        f"categories takes at most {MAX_CATEGORIES} tags.",
                        details={"parameter": "categories"},
                    )
    return tuple(tags)


@dataclass(frozen=True)
class ListQuery:
    """A validated GET /api/sticker-packs query."""

    q: str
    sort: str
    categories: tuple[str, ...]
    intent: str
    nsfw: str
    limit: int
    offset: int

    @property
    def folded_q(self) -> str:
        return fold(self.q)

    @property
    def filters_fingerprint(self) -> str:
        """What a cursor is bound to: the filters (not the page size, which may change per page)."""
        text = "\x1f".join([self.folded_q, ",".join(sorted(self.categories)), self.intent, self.nsfw])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def cache_key(self) -> tuple[object, ...]:
        return (self.folded_q, self.sort, tuple(sorted(self.categories)), self.intent, self.nsfw)


def parse_list_query(
    *,
    q: object,
    sort: object,
    categories: str | Sequence[str] | None,
    intent: object,
    nsfw: object,
    limit: int | str | None,
    offset: int | str | None,
    default_limit: int,
    max_limit: int,
) -> ListQuery:
    return ListQuery(
        q=sanitize_query(q),
        sort=parse_sort(sort),
        categories=parse_categories(categories),
        intent=parse_intent(intent),
        nsfw=parse_nsfw(nsfw),
        limit=parse_int("limit", limit, default=min(default_limit, max_limit), low=1, high=max_limit),
        offset=parse_int("offset", offset, default=0, low=0, high=MAX_OFFSET),
    )
