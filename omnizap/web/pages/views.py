"""Turning catalog data into template context: query parsing, page metadata, links. Pure functions.

The catalog hands out the JSON API's shapes (PackSummary, list entries, PackDetails, intents, stats;
see reference http §2-§6), so the pages show exactly what the API serves.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omnizap.catalog.text import normalize_tag as catalog_normalize_tag
from omnizap.catalog.text import sanitize_query

PAGE_SIZE = 24
MAX_OFFSET = 100_000
THEME_OPTIONS_MAX = 24

SORT_OPTIONS: list[tuple[str, str]] = [
    ("", "Most popular"),
    ("trending", "Trending"),
    ("recent", "Newest"),
    ("likes", "Most liked"),
    ("downloads", "Most viewed"),
]
INTENT_LABELS: dict[str, str] = {
    "em_alta": "Popular now",
    "crescendo_agora": "Rising now",
    "novos": "New",
    "mais_curtidos": "Most liked",
}
# Home collections, in display order: (key in /intents data, title, description, "see all" query).
COLLECTIONS: list[tuple[str, str, str, dict[str, str]]] = [
    ("em_alta", "Popular now", "The packs people open and like the most.", {"intent": "em_alta"}),
    (
        "crescendo_agora",
        "Rising now",
        "Packs getting more views today than usual.",
        {"intent": "crescendo_agora"},
    ),
    ("novos", "New", "Fresh packs from the community.", {"intent": "novos"}),
    ("mais_curtidos", "Most liked", "Crowd favourites.", {"intent": "mais_curtidos"}),
    ("melhor_avaliados", "Best rated", "More likes than dislikes, by the widest margin.", {"sort": "likes"}),
]
HOME_COLLECTION_SIZE = 12

# The catalog's own rules, so a page shows the query and theme exactly as the catalog applied them.
clean_query = sanitize_query
normalize_tag = catalog_normalize_tag


@dataclass(frozen=True)
class CatalogQuery:
    q: str = ""
    sort: str = ""
    category: str = ""
    intent: str = ""
    offset: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> CatalogQuery:
        """Lenient on purpose: a page link with a bad parameter shows the catalog, not an error."""
        sort = str(params.get("sort") or "").strip().lower()
        intent = str(params.get("intent") or "").strip().lower()
        try:
            offset = int(str(params.get("offset") or "0").strip())
        except ValueError:
            offset = 0
        return cls(
            q=clean_query(params.get("q")),
            sort=sort if sort in dict(SORT_OPTIONS) else "",
            category=normalize_tag(params.get("category")),
            intent=intent if intent in INTENT_LABELS else "",
            offset=min(max(offset, 0), MAX_OFFSET),
        )

    def params(self, **changes: Any) -> dict[str, str]:
        values = {"q": self.q, "sort": self.sort, "category": self.category, "intent": self.intent}
        values.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value not in ("", "0", None)}


def page_url(path: str, params: Mapping[str, str]) -> str:
    query = urllib.parse.urlencode(params)
    return f"{path}?{query}" if query else path


def theme_options(packs: Iterable[Mapping[str, Any]], selected: str = "") -> list[tuple[str, str]]:
    """The most common tags among `packs`, as (value, label) for the theme select."""
    counts: Counter[str] = Counter()
    for pack in packs:
        for tag in pack.get("tags") or []:
            slug = normalize_tag(tag)
            if slug:
                counts[slug] += 1
    options = [tag for tag, _ in counts.most_common(THEME_OPTIONS_MAX)]
    if selected and selected not in options:
        options.insert(0, selected)
    return [(tag, tag.replace("-", " ")) for tag in sorted(options)]


def catalog_context(
    query: CatalogQuery, listing: Mapping[str, Any], themes: Sequence[tuple[str, str]], web_path: str
) -> dict[str, Any]:
    packs = list(listing.get("data") or [])
    pagination = listing.get("pagination") or {}
    next_offset = pagination.get("next_offset")
    has_more = (
        bool(pagination.get("has_more")) and isinstance(next_offset, int) and next_offset > query.offset
    )
    previous = max(query.offset - PAGE_SIZE, 0)
    return {
        "nav": "catalog",
        "packs": packs,
        "offset": query.offset,
        "filters": {
            "q": query.q,
            "sort": query.sort,
            "category": query.category,
            "intent": query.intent,
            "intent_label": INTENT_LABELS.get(query.intent, ""),
        },
        "sort_options": SORT_OPTIONS,
        "themes": themes,
        "next_url": page_url(web_path, query.params(offset=next_offset)) if has_more else None,
        "prev_url": page_url(web_path, query.params(offset=previous)) if query.offset > 0 else None,
    }


def home_context(
    intents: Mapping[str, Any], stats: Mapping[str, Any] | None, web_path: str
) -> dict[str, Any]:
    data = intents.get("data") or {}
    collections = []
    for key, title, description, more in COLLECTIONS:
        packs = list(data.get(key) or [])[:HOME_COLLECTION_SIZE]
        if packs:
            collections.append(
                {
                    "key": key,
                    "title": title,
                    "description": description,
                    "packs": packs,
                    "more_url": page_url(web_path, more),
                }
            )
    return {"nav": "home", "collections": collections, "stats": (stats or {}).get("data")}


def sticker_alt(pack_name: str, item: Mapping[str, Any]) -> str:
    """Alt text: the sticker's own accessibility label, else its position and emojis."""
    label = " ".join(str(item.get("accessibility_label") or "").split())
    if label:
        return label[:200]
    emojis = " ".join(str(emoji) for emoji in item.get("emojis") or [])
    base = f"Sticker {item.get('position', '')} of {pack_name}".replace("  ", " ")
    return f"{base} {emojis}".strip()


def pack_context(details: Mapping[str, Any], origin: str) -> dict[str, Any]:
    pack = dict(details)
    pack["items"] = [
        {**item, "alt": sticker_alt(pack.get("name", ""), item)} for item in pack.get("items") or []
    ]
    pack.setdefault("engagement", {"open_count": 0, "like_count": 0, "dislike_count": 0})
    whatsapp = pack.get("whatsapp") or {}
    whatsapp_url = whatsapp.get("url") if isinstance(whatsapp, Mapping) else None
    if not (isinstance(whatsapp_url, str) and whatsapp_url.startswith(("https://", "whatsapp://"))):
        whatsapp_url = None
    whatsapp_text = whatsapp.get("text") if whatsapp_url else None  # the command the link types
    if not isinstance(whatsapp_text, str):
        whatsapp_text = None
    blocker = download_blocker(pack)
    return {
        "nav": "pack",
        "pack": pack,
        "share_url": absolute_url(origin, pack.get("web_url") or ""),
        "whatsapp_url": whatsapp_url,
        "whatsapp_text": whatsapp_text,
        "telegram": telegram_link(pack.get("telegram")),
        "download_url": pack.get("download_url") if blocker is None else None,
        "download_blocker": blocker,
    }


TELEGRAM_ADD_PREFIX = "https://t.me/addstickers/"


def telegram_link(telegram: object) -> dict[str, Any] | None:
    """`{url, is_current}` for "Add to Telegram" when the pack has a Telegram sticker set.

    A set older than the pack is still linked (it opens and adds fine), with a "may be older" note
    rather than hidden: it is the only way onto Telegram until someone sends `/pack send` again."""
    if not isinstance(telegram, Mapping):
        return None
    url = telegram.get("url")
    if not (isinstance(url, str) and url.startswith(TELEGRAM_ADD_PREFIX)):
        return None
    return {"url": url, "is_current": bool(telegram.get("is_current"))}


WHATSAPP_MIN_STICKERS = 3
WHATSAPP_MAX_STICKERS = 30


def download_blocker(pack: Mapping[str, Any]) -> str | None:
    """Why WhatsApp would refuse this pack as shown (the export checks every rule again), or None.

    The page offers the download only when the basic rules hold, so a visitor never lands on an
    error answer: 3-30 stickers, all static or all animated."""
    items = list(pack.get("items") or [])
    if len(items) < WHATSAPP_MIN_STICKERS:
        return f"WhatsApp needs at least {WHATSAPP_MIN_STICKERS} stickers in a pack to add it."
    if len(items) > WHATSAPP_MAX_STICKERS:
        return f"WhatsApp takes at most {WHATSAPP_MAX_STICKERS} stickers in a pack."
    animated = {bool((item.get("asset") or {}).get("is_animated")) for item in items}
    if len(animated) > 1:
        return "WhatsApp does not take packs that mix animated and still stickers."
    return None


def absolute_url(origin: str, path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return origin.rstrip("/") + "/" + path.lstrip("/")


def pack_description(pack: Mapping[str, Any]) -> str:
    description = " ".join(str(pack.get("description") or "").split())
    count = pack.get("sticker_count", 0)
    summary = f"{count} sticker{'' if count == 1 else 's'} by {pack.get('publisher', '')}."
    return f"{description[:150]} {summary}".strip() if description else f"{pack.get('name', '')}: {summary}"


def json_ld(data: Mapping[str, Any]) -> str:
    """JSON-LD safe inside a <script> element: '<', '>' and '&' escaped so no text can close it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def pack_json_ld(pack: Mapping[str, Any], url: str, image: str | None) -> str:
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "CreativeWork",
        "name": pack.get("name"),
        "description": pack_description(pack),
        "url": url,
        "author": {"@type": "Person", "name": pack.get("publisher")},
    }
    if image:
        data["image"] = image
    if pack.get("updated_at"):
        data["dateModified"] = pack["updated_at"]
    return json_ld(data)


def format_number(value: object) -> str:
    try:
        return f"{int(value):,}"  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "0"
