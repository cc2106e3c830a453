"""Public JSON catalog reads under STICKER_API_BASE_PATH, plus `GET /api/marketplace/stats`.

Every route here is a GET (and HEAD) whose answer depends only on its path, its query and the
catalog's data, so each answer is serialized once per data version and kept with its ETag
(`omnizap.web.http.cache`); repeated requests are answered before routing, and `If-None-Match`
gets a 304. The catalog service validates parameters and raises `InvalidInput`; this module only
turns query strings into the service's arguments.

Reserved single segments (`stats`, `creators`, `intents`, `readme-summary`, `readme-markdown`) are
registered before `/{packKey}`, so a pack cannot be addressed by one of those names (as in the
original; generated pack keys end in `-xxxxx`, so they never collide).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from omnizap.catalog.params import MAX_CATEGORIES, MAX_OFFSET
from omnizap.catalog.service import (
    CREATORS_LIMIT_DEFAULT,
    CREATORS_LIMIT_MAX,
    INTENT_LIMIT_DEFAULT,
    INTENT_LIMIT_MAX,
    PACK_KEY_MAX,
)
from omnizap.core.errors import PackNotFound
from omnizap.core.packs.rules import public_pack_key
from omnizap.web.api.models import (
    NOT_MODIFIED,
    CatalogStats,
    CreatorRanking,
    ErrorEnvelope,
    Intents,
    MarketplaceStats,
    PackDetailsAnswer,
    PackList,
    ReadmeSummary,
    error_answers,
    json_answer,
)
from omnizap.web.api.routing import add_get_and_head, pack_key_path
from omnizap.web.http.cache import ResponseCache, serve_cached

JSON_MEDIA_TYPE = "application/json"
MARKDOWN_MEDIA_TYPE = "text/markdown; charset=utf-8"
MARKETPLACE_STATS_PATH = "/api/marketplace/stats"
TEXT = {"type": "string"}
RESERVED_SEGMENTS = ("stats", "creators", "intents", "readme-summary", "readme-markdown")

_NOT_FOUND_EXAMPLE = {"error": {"code": "PACK_NOT_FOUND", "message": "Pack not found."}}
# Examples shown in the OpenAPI document; tests/test_openapi_contract.py checks each against its schema.
# No null values: FastAPI leaves out null entries when it writes the document, so the example would
# lose the key.
_STICKER_EXAMPLE_ID = "9b1d0c2e-5f4a-4c7e-8d3b-2a1f0e9d8c7b"
_STICKER_EXAMPLE_URL = f"/api/sticker-packs/sunny-cats-a1b2c/stickers/{_STICKER_EXAMPLE_ID}.webp"
_PACK_EXAMPLE: dict[str, Any] = {
    "id": "3f0c8a52-1b7e-4f7c-9d0e-5a1c2b3d4e5f",
    "pack_key": "sunny-cats-a1b2c",
    "name": "Sunny Cats",
    "publisher": "Ana",
    "description": "Cats in the sun",
    "visibility": "public",
    "status": "published",
    "sticker_count": 5,
    "is_complete": False,
    "cover_sticker_id": _STICKER_EXAMPLE_ID,
    "cover_url": _STICKER_EXAMPLE_URL,
    "api_url": "/api/sticker-packs/sunny-cats-a1b2c",
    "web_url": "/stickers/sunny-cats-a1b2c",
    "download_url": "/api/sticker-packs/sunny-cats-a1b2c/download/whatsapp",
    "whatsapp": {
        "phone": "5511999990000",
        "text": "/pack send sunny-cats-a1b2c",
        "url": "https://wa.me/5511999990000?text=%2Fpack%20send%20sunny-cats-a1b2c",
    },
    "created_at": "2026-01-05T10:00:00+00:00",
    "updated_at": "2026-01-06T12:30:00+00:00",
    "engagement": {
        "open_count": 120,
        "like_count": 14,
        "dislike_count": 1,
        "score": 13,
        "updated_at": "2026-01-06T12:30:00+00:00",
    },
    "signals": {"ranking_score": 0.71, "trend_score": 1.1, "nsfw_level": "safe"},
    "manual_tags": ["cats"],
    "classification": {"total_items": 5, "classified_items": 5, "category": "animals", "tags": ["animals"]},
    "tags": ["cats", "animals"],
    "is_nsfw": False,
    "nsfw_level": "safe",
}
_LIST_EXAMPLE = {
    "data": [_PACK_EXAMPLE],
    "pagination": {"limit": 24, "offset": 0, "has_more": True, "next_offset": 24, "next_cursor": "…"},
    "filters": {
        "q": "",
        "visibility": "public",
        "sort": "popular",
        "categories": [],
        "intent": "em_alta",
        "nsfw": "safe",
    },
}
_DETAIL_EXAMPLE = {
    "data": {
        **_PACK_EXAMPLE,
        "items": [
            {
                "id": "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b",
                "sticker_id": _STICKER_EXAMPLE_ID,
                "position": 1,
                "emojis": ["😺"],
                "accessibility_label": "A cat in the sun",
                "created_at": "2026-01-05T10:00:00+00:00",
                "asset_url": _STICKER_EXAMPLE_URL,
                "preview_url": _STICKER_EXAMPLE_URL + "?size=128",
                "tags": ["animals"],
                "is_nsfw": False,
                "asset": {
                    "id": _STICKER_EXAMPLE_ID,
                    "mimetype": "image/webp",
                    "is_animated": False,
                    "width": 512,
                    "height": 512,
                    "size_bytes": 24310,
                    "classification": {"category": "animals", "confidence": 0.91, "is_nsfw": False},
                },
            }
        ],
        "whatsapp_send_url": "https://wa.me/5511999990000?text=%2Fpack%20send%20sunny-cats-a1b2c",
        "telegram": {
            "url": "https://t.me/addstickers/sunny_cats_a1b2c_by_omnizap_bot",
            "set_name": "sunny_cats_a1b2c_by_omnizap_bot",
            "synced_version": 4,
            "is_current": True,
        },
        "telegram_url": "https://t.me/addstickers/sunny_cats_a1b2c_by_omnizap_bot",
    }
}
_STATS_EXAMPLE = {
    "data": {"packs_total": 1234, "stickers_total": 30120, "creators_total": 310, "downloads_total": 98211},
    "filters": {"visibility": "public"},
    "meta": {"cache_seconds": 45},
}
_CREATORS_EXAMPLE = {
    "data": [
        {
            "publisher": "Ana",
            "creator_score": 0.82,
            "verified": False,
            "badges": [],
            "stats": {"packs_count": 4, "total_likes": 52, "total_opens": 900, "avg_pack_score": 0.7},
            "top_pack": _PACK_EXAMPLE,
        }
    ],
    "filters": {"visibility": "public", "q": "", "limit": 50},
}
_INTENTS_EXAMPLE = {
    "data": {
        "em_alta": [_PACK_EXAMPLE],
        "novos": [],
        "crescendo_agora": [],
        "mais_curtidos": [],
        "melhor_avaliados": [],
    },
    "filters": {"visibility": "public", "q": "", "categories": [], "limit": 18, "nsfw": "safe"},
}
_MARKETPLACE_EXAMPLE = {
    "total_packs": 1234,
    "total_stickers": 30120,
    "total_clicks": 98211,
    "total_likes": 5120,
    "packs_last_7_days": 40,
    "stickers_without_pack": 12,
    "creators_total": 310,
    "clicks_last_7_days": 2210,
    "likes_last_7_days": 140,
    "series_last_7_days": [
        {"date": "2026-01-06", "packs_published": 6, "stickers_created": 120, "clicks": 310, "likes": 20}
    ],
    "updated_at": "2026-01-06T12:30:00+00:00",
    "cache_seconds": 45,
}


def _list_param(raw: str | None) -> list[str]:
    if not raw:
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]


def _json_body(value: Any) -> bytes:
    return orjson.dumps(value, default=str)


def _catalog(request: Request) -> Any:
    return request.app.state.catalog


def _cache(request: Request) -> ResponseCache:
    return request.app.state.response_cache


def _cached(request: Request, build: Callable[[Any], tuple[bytes, str]]) -> Response:
    """Answer from the response cache at the catalog's current data version, building on a miss."""
    catalog = _catalog(request)
    version = catalog.data_version()
    return serve_cached(request, _cache(request), version, lambda: build(catalog))


def _cached_json(request: Request, read: Callable[[Any], Any]) -> Response:
    """`_cached` for a catalog read whose result is the JSON body as it is."""
    return _cached(request, lambda catalog: (_json_body(read(catalog)), JSON_MEDIA_TYPE))


Q_DESCRIPTION = "Search text, matched against name, publisher, description, tags and pack key."
# Every spelling `sort` accepts (aliases included), exactly: anything else is a 400 naming the choices.
SortName = Literal[
    "popular", "popularity", "trending", "new", "recent", "newest", "liked", "likes", "comments", "downloads"
]
IntentName = Literal["em_alta", "novos", "crescendo_agora", "mais_curtidos"]
NsfwLevel = Literal["safe", "suggestive", "explicit"]
# At most MAX_CATEGORIES comma-separated tags (the catalog refuses more).
CATEGORIES_PATTERN = rf"^[^,]*(,[^,]*){{0,{MAX_CATEGORIES - 1}}}$"
CATEGORIES_DESCRIPTION = (
    f"Comma-separated tags, at most {MAX_CATEGORIES} (with `theme`, together); a pack matches if it has "
    "any of them."
)


def _categories_query(description: str = CATEGORIES_DESCRIPTION) -> Any:
    return Query(None, description=description, examples=["anime,meme"], pattern=CATEGORIES_PATTERN)


def build_catalog_router(
    api_base_path: str = "/api/sticker-packs", *, list_limit_default: int = 24, list_limit_max: int = 60
) -> APIRouter:
    """The catalog read routes with the API under `api_base_path` (STICKER_API_BASE_PATH). The list's
    page sizes (STICKER_WEB_LIST_LIMIT, STICKER_WEB_LIST_MAX_LIMIT) are declared in the OpenAPI document."""
    base = "/" + api_base_path.strip("/")
    router = APIRouter(tags=["catalog"])

    def list_packs(
        request: Request,
        q: str | None = Query(None, description=Q_DESCRIPTION, examples=["cats"]),
        sort: SortName | None = Query(
            None,
            description="`popular` (default: ranking score; alias `popularity`), `trending`, `new` (aliases "
            "`recent`, `newest`), `liked` (aliases `likes`, `comments`), `downloads`. See docs/catalog.md.",
            examples=["popular"],
        ),
        categories: str | None = _categories_query(),
        theme: str | None = Query(
            None,
            description="One category (added to `categories`); no commas.",
            pattern=r"^[^,]*$",
        ),
        intent: IntentName | None = Query(
            None, description="Only the packs of one home collection.", examples=["em_alta"]
        ),
        nsfw: NsfwLevel | None = Query(
            None, description="The most sensitive level of pack to include (default `safe`)."
        ),
        limit: int | None = Query(
            None,
            ge=1,
            le=list_limit_max,
            description=f"Page size (default {min(list_limit_default, list_limit_max)}: "
            "STICKER_WEB_LIST_LIMIT; at most STICKER_WEB_LIST_MAX_LIMIT).",
            examples=[24],
        ),
        offset: int | None = Query(
            None, ge=0, le=MAX_OFFSET, description="Offset into the ranking (use `cursor` to page on)."
        ),
        cursor: str | None = Query(
            None,
            description="Opaque `pagination.next_cursor` of the previous page: stable paging. A cursor made "
            "for other filters or another sort, or too old, is refused with 400 `INVALID_CURSOR`.",
        ),
    ) -> Response:
        chosen = _list_param(categories)
        if theme and theme.strip() and theme.strip() not in chosen:
            chosen.append(theme.strip())
        arguments: dict[str, Any] = {
            "q": q or "",
            "sort": sort or "",
            "categories": tuple(chosen),
            "intent": intent or "",
            "nsfw": nsfw or "safe",
            "limit": limit,
            "offset": offset,
            "cursor": cursor or None,
        }
        return _cached_json(request, lambda catalog: catalog.list_packs(**arguments))

    add_get_and_head(
        router,
        base,
        list_packs,
        summary="List and search public packs",
        description="Listed (public, published) packs only; unlisted packs are reachable by link but never "
        "listed. Strong `ETag`; send `If-None-Match` to get 304 when nothing changed.",
        responses={
            200: json_answer(PackList, "A page of packs.", _LIST_EXAMPLE),
            304: NOT_MODIFIED,
            **error_answers(400),
        },
    )

    def stats(request: Request) -> Response:
        return _cached_json(request, lambda catalog: catalog.stats())

    add_get_and_head(
        router,
        base + "/stats",
        stats,
        summary="Catalog totals",
        description="Packs, stickers, creators and downloads of the listed catalog.",
        responses={200: json_answer(CatalogStats, "Totals.", _STATS_EXAMPLE), 304: NOT_MODIFIED},
    )

    def creators(
        request: Request,
        q: str | None = Query(None, description="Filter creators by publisher name."),
        limit: int | None = Query(
            None,
            ge=1,
            le=CREATORS_LIMIT_MAX,
            description=f"How many creators (default {CREATORS_LIMIT_DEFAULT}).",
            examples=[25],
        ),
    ) -> Response:
        arguments: dict[str, Any] = {"q": q or ""}
        if limit is not None:
            arguments["limit"] = limit
        return _cached_json(request, lambda catalog: catalog.creators(**arguments))

    add_get_and_head(
        router,
        base + "/creators",
        creators,
        summary="Creator ranking",
        description="Publishers of listed packs ranked by creator score, each with their top pack.",
        responses={
            200: json_answer(CreatorRanking, "Creators.", _CREATORS_EXAMPLE),
            304: NOT_MODIFIED,
            **error_answers(400),
        },
    )

    def intents(
        request: Request,
        q: str | None = Query(None, description=Q_DESCRIPTION),
        categories: str | None = _categories_query(
            f"Comma-separated tags to restrict the collections, at most {MAX_CATEGORIES}."
        ),
        limit: int | None = Query(
            None,
            ge=1,
            le=INTENT_LIMIT_MAX,
            description=f"Packs per collection (default {INTENT_LIMIT_DEFAULT}).",
            examples=[12],
        ),
    ) -> Response:
        arguments: dict[str, Any] = {"q": q or "", "categories": tuple(_list_param(categories))}
        if limit is not None:
            arguments["limit"] = limit
        return _cached_json(request, lambda catalog: catalog.intents(**arguments))

    add_get_and_head(
        router,
        base + "/intents",
        intents,
        summary="Home collections",
        description="`em_alta` (popular now), `novos` (new), `crescendo_agora` (rising), `mais_curtidos` "
        "(most liked).",
        responses={
            200: json_answer(Intents, "Collections.", _INTENTS_EXAMPLE),
            304: NOT_MODIFIED,
            **error_answers(400),
        },
    )

    def readme_summary(request: Request) -> Response:
        return _cached_json(request, lambda catalog: catalog.readme_summary())

    add_get_and_head(
        router,
        base + "/readme-summary",
        readme_summary,
        summary="Catalog summary for a README",
        description="Totals and the same summary as Markdown in `data.markdown`.",
        responses={200: json_answer(ReadmeSummary, "The summary."), 304: NOT_MODIFIED},
    )

    def readme_markdown(request: Request) -> Response:
        def build(catalog: Any) -> tuple[bytes, str]:
            text = catalog.readme_markdown()
            return (text if text.endswith("\n") else text + "\n").encode(), MARKDOWN_MEDIA_TYPE

        return _cached(request, build)

    add_get_and_head(
        router,
        base + "/readme-markdown",
        readme_markdown,
        summary="Catalog summary as Markdown",
        response_class=Response,
        responses={
            200: {"description": "Markdown text.", "content": {"text/markdown": {"schema": TEXT}}},
            304: NOT_MODIFIED,
        },
    )

    def pack_detail(
        request: Request,
        pack_key: str = pack_key_path(max_length=PACK_KEY_MAX),
        categories: str | None = _categories_query(
            f"Comma-separated tags, at most {MAX_CATEGORIES}: only items with any of them."
        ),
    ) -> Response:
        chosen = tuple(_list_param(categories))
        public_pack_key(pack_key)  # what cannot be a pack key is not found, with a message that says so

        def build(catalog: Any) -> tuple[bytes, str]:
            details = catalog.pack_detail(pack_key, chosen) if chosen else catalog.pack_detail(pack_key)
            if details is None:
                raise PackNotFound("Pack not found.")
            return _json_body({"data": details}), JSON_MEDIA_TYPE

        return _cached(request, build)

    add_get_and_head(
        router,
        base + "/{packKey}",
        pack_detail,
        summary="Pack details with its stickers",
        description="Public and unlisted packs (unlisted: reachable by link only). 404 `PACK_NOT_FOUND` for "
        "private, draft, deleted or unknown packs.",
        responses={
            200: json_answer(PackDetailsAnswer, "The pack.", _DETAIL_EXAMPLE),
            304: NOT_MODIFIED,
            **error_answers(400),
            404: json_answer(ErrorEnvelope, "No publicly reachable pack with that key.", _NOT_FOUND_EXAMPLE),
        },
    )
    return router


def build_marketplace_router() -> APIRouter:
    router = APIRouter(tags=["catalog"])

    def marketplace_stats(request: Request) -> Response:
        return _cached_json(request, lambda catalog: catalog.marketplace_stats())

    add_get_and_head(
        router,
        MARKETPLACE_STATS_PATH,
        marketplace_stats,
        summary="Marketplace totals and the last 7 days",
        description="A flat object (no `data` wrapper), as in the original.",
        responses={
            200: json_answer(MarketplaceStats, "Totals and a 7-day series.", _MARKETPLACE_EXAMPLE),
            304: NOT_MODIFIED,
        },
    )
    return router
