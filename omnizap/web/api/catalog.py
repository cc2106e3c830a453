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
from typing import Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from omnizap.core.errors import PackNotFound
from omnizap.web.api.routing import add_get_and_head
from omnizap.web.http.cache import ResponseCache, serve_cached

JSON_MEDIA_TYPE = "application/json"
MARKDOWN_MEDIA_TYPE = "text/markdown; charset=utf-8"
MARKETPLACE_STATS_PATH = "/api/marketplace/stats"
RESERVED_SEGMENTS = ("stats", "creators", "intents", "readme-summary", "readme-markdown")

_ERROR_EXAMPLE = {"error": {"code": "INVALID_INPUT", "message": "limit must be from 1 to 60, got 500."}}
_NOT_FOUND_EXAMPLE = {"error": {"code": "PACK_NOT_FOUND", "message": "Pack not found."}}
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
    "cover_sticker_id": "9b1d…",
    "cover_url": "/api/sticker-packs/sunny-cats-a1b2c/stickers/9b1d….webp",
    "api_url": "/api/sticker-packs/sunny-cats-a1b2c",
    "web_url": "/stickers/sunny-cats-a1b2c",
    "whatsapp": None,
    "created_at": "2026-01-05T10:00:00Z",
    "updated_at": "2026-01-06T12:30:00Z",
    "engagement": {"open_count": 120, "like_count": 14, "dislike_count": 1, "score": 13},
    "signals": {"ranking_score": 0.71, "trend_score": 1.1, "nsfw_level": "safe"},
    "manual_tags": ["cats"],
    "tags": ["cats", "animals"],
    "is_nsfw": False,
}
_LIST_EXAMPLE = {
    "data": [_PACK_EXAMPLE],
    "pagination": {"limit": 24, "offset": 0, "has_more": True, "next_offset": 24, "next_cursor": "…"},
    "filters": {"q": "", "sort": "popular", "categories": [], "intent": None, "nsfw": "safe"},
}
_DETAIL_EXAMPLE = {
    "data": {
        **_PACK_EXAMPLE,
        "items": [
            {
                "id": "…",
                "sticker_id": "9b1d…",
                "position": 1,
                "emojis": ["😺"],
                "accessibility_label": "A cat in the sun",
                "asset_url": "/api/sticker-packs/sunny-cats-a1b2c/stickers/9b1d….webp",
                "asset": {"mimetype": "image/webp", "is_animated": False, "width": 512, "height": 512},
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
    "data": {"packs_total": 1234, "stickers_total": 30120, "creators_total": 310, "downloads_total": 98211}
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
    "filters": {"q": "", "limit": 50},
}
_INTENTS_EXAMPLE = {
    "data": {"em_alta": [_PACK_EXAMPLE], "novos": [], "crescendo_agora": [], "mais_curtidos": []},
    "filters": {"q": "", "categories": [], "limit": 18},
}
_MARKETPLACE_EXAMPLE = {
    "total_packs": 1234,
    "total_stickers": 30120,
    "total_clicks": 98211,
    "total_likes": 5120,
    "packs_last_7_days": 40,
    "series_last_7_days": [{"date": "2026-01-06", "packs_published": 6, "stickers_created": 120}],
    "updated_at": "2026-01-06T12:30:00Z",
}


def _json_example(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_MEDIA_TYPE: {"example": example}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `If-None-Match` ETag is current."},
    400: _json_example(_ERROR_EXAMPLE, "A parameter is invalid (`INVALID_INPUT`, `INVALID_CURSOR`)."),
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
LIMIT_DESCRIPTION = "Page size (default STICKER_WEB_LIST_LIMIT, at most STICKER_WEB_LIST_MAX_LIMIT)."


def build_catalog_router(api_base_path: str = "/api/sticker-packs") -> APIRouter:
    """The catalog read routes with the API under `api_base_path` (STICKER_API_BASE_PATH)."""
    base = "/" + api_base_path.strip("/")
    router = APIRouter(tags=["catalog"])

    def list_packs(
        request: Request,
        q: str | None = Query(None, description=Q_DESCRIPTION, examples=["cats"]),
        sort: str | None = Query(
            None,
            description="`popular` (default: ranking score), `trending`, `new` (alias `recent`), `liked` "
            "(aliases `likes`, `comments`), `downloads`. See docs/catalog.md.",
            examples=["popular"],
        ),
        categories: str | None = Query(
            None,
            description="Comma-separated tags; a pack matches if it has any of them.",
            examples=["anime,meme"],
        ),
        theme: str | None = Query(None, description="One category (alias of `categories` with one value)."),
        intent: str | None = Query(
            None,
            description="`em_alta`, `novos`, `crescendo_agora` or `mais_curtidos`.",
            examples=["em_alta"],
        ),
        nsfw: str | None = Query(
            None,
            description="The most sensitive level of pack to include: `safe` (default), `suggestive` or "
            "`explicit`.",
        ),
        limit: str | None = Query(None, description=LIMIT_DESCRIPTION, examples=["24"]),
        offset: str | None = Query(None, description="Offset into the ranking (use `cursor` to page on)."),
        cursor: str | None = Query(
            None, description="Opaque `pagination.next_cursor` of the previous page: stable paging."
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
            "limit": limit,  # the service parses and range-checks numbers (InvalidInput names them)
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
        responses={200: _json_example(_LIST_EXAMPLE, "A page of packs."), **ERROR_RESPONSES},
    )

    def stats(request: Request) -> Response:
        return _cached_json(request, lambda catalog: catalog.stats())

    add_get_and_head(
        router,
        base + "/stats",
        stats,
        summary="Catalog totals",
        description="Packs, stickers, creators and downloads of the listed catalog.",
        responses={200: _json_example(_STATS_EXAMPLE, "Totals."), 304: ERROR_RESPONSES[304]},
    )

    def creators(
        request: Request,
        q: str | None = Query(None, description="Filter creators by publisher name."),
        limit: str | None = Query(None, description="How many creators (default 50).", examples=["25"]),
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
        responses={200: _json_example(_CREATORS_EXAMPLE, "Creators."), **ERROR_RESPONSES},
    )

    def intents(
        request: Request,
        q: str | None = Query(None, description=Q_DESCRIPTION),
        categories: str | None = Query(None, description="Comma-separated tags to restrict the collections."),
        limit: str | None = Query(None, description="Packs per collection (default 18).", examples=["12"]),
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
        responses={200: _json_example(_INTENTS_EXAMPLE, "Collections."), **ERROR_RESPONSES},
    )

    def readme_summary(request: Request) -> Response:
        return _cached_json(request, lambda catalog: catalog.readme_summary())

    add_get_and_head(
        router,
        base + "/readme-summary",
        readme_summary,
        summary="Catalog summary for a README",
        description="Totals and the same summary as Markdown in `data.markdown`.",
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
        responses={200: {"description": "Markdown text.", "content": {"text/markdown": {}}}},
    )

    def pack_detail(
        request: Request,
        pack_key: str = Path(
            ..., alias="packKey", description="The pack's key, e.g. `sunny-cats-a1b2c`.", max_length=160
        ),
        categories: str | None = Query(
            None, description="Comma-separated tags: only items with any of them."
        ),
    ) -> Response:
        chosen = tuple(_list_param(categories))

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
            200: _json_example(_DETAIL_EXAMPLE, "The pack."),
            304: ERROR_RESPONSES[304],
            404: _json_example(_NOT_FOUND_EXAMPLE, "No public pack with that key."),
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
            200: _json_example(_MARKETPLACE_EXAMPLE, "Totals and a 7-day series."),
            304: ERROR_RESPONSES[304],
        },
    )
    return router
