"""Text rules of the public catalog: tags, description markers, search folding (pure functions).

Tags are slugs (reference http §2.5): accents stripped, lower case, runs of anything else as `-`, at
most 40 characters. A description may end with `[pack-tags:a,b]`, the pack's manual tags; the
auto-collector and theme curation leave their own markers. Public descriptions carry none of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

TAG_MAX = 40
MANUAL_TAGS_MAX = 8
QUERY_MAX = 120

_NON_SLUG = re.compile(r"[^a-z0-9]+")
_PACK_TAGS_MARKER = re.compile(r"\[pack-tags:([^\]]*)\]", re.IGNORECASE)
_AUTO_MARKERS = re.compile(r"\[(?:auto-pack|auto-theme|auto-tag):[^\]]*\]", re.IGNORECASE)
# Theme curation's boilerplate (pipeline §2.8): "… score=0.8123." says nothing to a visitor.
_SCORE_FRAGMENT = re.compile(r"\s*\bscore=[-+0-9.eE]+\.?", re.IGNORECASE)
_CURATION_PREFIX = re.compile(r"^\s*curadoria autom[aá]tica[^.]*\.\s*", re.IGNORECASE)
# Format characters (Cf) stay: the zero-width joiner is part of many emoji.
_CONTROL_CATEGORIES = {"Cc", "Zl", "Zp", "Cs"}

# The classifier's label names that have a short tag of their own (pipeline §1.2).
LABEL_TAGS = {
    "anime illustration": "anime",
    "video game screenshot": "game",
    "real life photo": "foto-real",
    "nsfw content": "nsfw",
    "cartoon": "cartoon",
}


_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _strip_marks(text: str) -> str:
    if text.isascii():  # nothing to decompose (most names and tags)
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def normalize_tag(value: object) -> str:
    """`"Gatos Fofos!"` → `"gatos-fofos"`; empty when nothing usable is left."""
    text = str(value if value is not None else "")
    if len(text) <= TAG_MAX and _SLUG.fullmatch(text):
        return text
    text = _strip_marks(text).lower()
    return _NON_SLUG.sub("-", text).strip("-")[:TAG_MAX].strip("-")


def label_tag(label: object) -> str:
    """The tag a classifier label becomes."""
    text = str(label if label is not None else "").strip().lower()
    return LABEL_TAGS.get(text) or normalize_tag(text)


def unique_tags(values: Iterable[object], limit: int | None = None) -> list[str]:
    """Normalized, non-empty, first occurrence kept, at most `limit`."""
    tags: list[str] = []
    for value in values:
        tag = normalize_tag(value)
        if tag and tag not in tags:
            tags.append(tag)
            if limit is not None and len(tags) >= limit:
                break
    return tags


def manual_tags(description: str | None) -> list[str]:
    """The tags of the description's `[pack-tags:…]` marker (the last one wins), at most 8."""
    if not description:
        return []
    markers = _PACK_TAGS_MARKER.findall(description)
    if not markers:
        return []
    return unique_tags(markers[-1].split(","), MANUAL_TAGS_MAX)


def public_description(description: str | None) -> str | None:
    """The description a visitor sees: tag and auto-pack markers and curation boilerplate removed."""
    if not description:
        return None
    text = _PACK_TAGS_MARKER.sub(" ", description)
    text = _AUTO_MARKERS.sub(" ", text)
    text = _CURATION_PREFIX.sub("", text)
    text = _SCORE_FRAGMENT.sub("", text)
    cleaned = " ".join(text.split())
    return cleaned or None


def fold(text: str) -> str:
    """Case- and accent-insensitive form used for search: `"Café ÇA"` → `"cafe ca"`."""
    if text.isascii():
        return text.lower()
    return _strip_marks(text).casefold()


def sanitize_query(value: object) -> str:
    """Search text as typed: control characters become spaces, whitespace collapses, ≤120 chars."""
    text = str(value if value is not None else "")
    cleaned = "".join(" " if unicodedata.category(char) in _CONTROL_CATEGORIES else char for char in text)
    return " ".join(cleaned.split())[:QUERY_MAX].strip()


def search_text(*parts: str | None) -> str:
    """The folded haystack of a pack; parts are joined by a newline, which a query never contains."""
    return "\n".join(fold(part) for part in parts if part)
