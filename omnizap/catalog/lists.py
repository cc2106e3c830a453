"""GET /api/sticker-packs: one page of listed packs, by offset or by cursor (`CatalogListsMixin`,
a part of `CatalogService`). Score sorts page through a frozen ranking generation; `new` through
the index's creation order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from omnizap.catalog.cursor import Cursor, invalid_cursor
from omnizap.catalog.entries import pack_entries
from omnizap.catalog.index import PackRecord, query_matcher
from omnizap.catalog.keeper import CatalogIndexKeeper
from omnizap.catalog.params import ListQuery, parse_list_query

_SCORE_SORT_KEYS = {"popular": "popular", "trending": "trending", "liked": "liked", "downloads": "downloads"}


class CatalogListsMixin(CatalogIndexKeeper):
    """The catalog's list endpoint."""

    def list_packs(
        self,
        *,
        q: str = "",
        sort: str = "",
        categories: str | Sequence[str] = (),
        intent: str = "",
        nsfw: str = "safe",
        limit: int | str | None = None,
        offset: int | str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of listed packs: {data, pagination, filters}. With `cursor`, `offset` is ignored."""
        query = parse_list_query(
            q=q,
            sort=sort,
            categories=categories,
            intent=intent,
            nsfw=nsfw,
            limit=limit,
            offset=offset,
            default_limit=self.settings.sticker_web_list_limit,
            max_limit=self.settings.sticker_web_list_max_limit,
        )
        position = None
        if cursor:
            position = self.cursors.decode(cursor, sort=query.sort, filters=query.filters_fingerprint)
        key = (
            "list",
            query.cache_key,
            query.limit,
            query.offset if position is None else None,
            cursor or None,
        )
        return self._cached(key, self._list_ttl, lambda: (self._list(query, position), None))

    def _list(self, query: ListQuery, position: Cursor | None) -> dict[str, Any]:
        index = self._current_index()
        matches = query_matcher(query)
        wanted = query.limit + 1
        skip = query.offset if position is None else 0
        found: list[tuple[int, PackRecord]] = []
        generation_id: int | None = None
        if query.sort == "new":
            after = None if position is None else (position.created_us or 0, position.pack_id or "")
            candidates: Iterable[tuple[int, PackRecord]] = enumerate(index.newest_first_from(after), start=1)
        else:
            if position is not None:
                generation_id = position.generation
                start = position.position or 0
            else:
                generation_id, start = self._generation().id, 0
            assert generation_id is not None
            order = self.rankings.order(generation_id, _SCORE_SORT_KEYS[query.sort])
            if order is None:
                raise invalid_cursor("its ranking generation expired")
            candidates = (
                (number, index.get(order[number - 1])) for number in range(start + 1, len(order) + 1)
            )
        for number, record in candidates:
            if record is None or not matches(record):
                continue
            if skip:
                skip -= 1
                continue
            found.append((number, record))
            if len(found) == wanted:
                break
        page = found[: query.limit]
        has_more = len(found) > query.limit
        next_cursor = None
        if has_more and page:
            last_number, last = page[-1]
            issued = self.cursors.now()
            fingerprint = query.filters_fingerprint
            if query.sort == "new":
                token = Cursor(
                    query.sort, fingerprint, issued, created_us=last.created_key[0], pack_id=last.id
                )
            else:
                token = Cursor(
                    query.sort, fingerprint, issued, generation=generation_id, position=last_number
                )
            next_cursor = self.cursors.encode(token)
        by_offset = position is None
        return {
            "data": pack_entries(self.database, self.links, [record for _, record in page]),
            "pagination": {
                "limit": query.limit,
                "offset": query.offset if by_offset else None,
                "has_more": has_more,
                "next_offset": query.offset + len(page) if by_offset and has_more else None,
                "next_cursor": next_cursor,
            },
            "filters": {
                "q": query.q,
                "visibility": "public",
                "sort": query.sort,
                "categories": list(query.categories),
                "intent": query.intent or None,
                "nsfw": query.nsfw,
            },
        }
