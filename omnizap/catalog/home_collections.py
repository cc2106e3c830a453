"""The home page's collections: GET /api/sticker-packs/intents (em_alta, novos, …) and
GET /api/sticker-packs/creators (publishers by creator_score). `CatalogCollectionsMixin` is a part
of `CatalogService`."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from omnizap.catalog.entries import by_ranking, pack_entries
from omnizap.catalog.index import PackRecord, query_matcher
from omnizap.catalog.keeper import CatalogIndexKeeper
from omnizap.catalog.params import ListQuery, parse_int, parse_list_query
from omnizap.catalog.text import fold, sanitize_query

INTENT_LIMIT_DEFAULT = 18
INTENT_LIMIT_MAX = 50
CREATORS_LIMIT_DEFAULT = 50
CREATORS_LIMIT_MAX = 200


class CatalogCollectionsMixin(CatalogIndexKeeper):
    """The catalog's intents and creators endpoints."""

    def intents(
        self,
        *,
        limit: int | str | None = INTENT_LIMIT_DEFAULT,
        q: str = "",
        categories: str | Sequence[str] = (),
    ) -> dict[str, Any]:
        """Home collections of safe packs (em_alta, novos, crescendo_agora, mais_curtidos, …)."""
        size = parse_int("limit", limit, default=INTENT_LIMIT_DEFAULT, low=1, high=INTENT_LIMIT_MAX)
        query = parse_list_query(
            q=q,
            sort="",
            categories=categories,
            intent="",
            nsfw="safe",
            limit=1,
            offset=0,
            default_limit=1,
            max_limit=1,
        )
        key = ("intents", query.folded_q, tuple(sorted(query.categories)), size)
        return self._cached(key, self._list_ttl, lambda: (self._intents(query, size), None))

    def _intents(self, query: ListQuery, size: int) -> dict[str, Any]:
        index = self._current_index()
        matches = query_matcher(query)
        pool = [record for record in index.records.values() if matches(record)]
        lists = {
            "em_alta": heapq.nlargest(size, pool, key=by_ranking),
            "novos": heapq.nlargest(size, pool, key=lambda record: record.created_key),
            "crescendo_agora": heapq.nlargest(
                size,
                (record for record in pool if record.trending_now),
                key=lambda record: (record.trend_score, *by_ranking(record)),
            ),
            "mais_curtidos": heapq.nlargest(
                size,
                (record for record in pool if record.like_count > 0),
                key=lambda record: (record.like_count, *by_ranking(record)),
            ),
            "melhor_avaliados": heapq.nlargest(
                size,
                (record for record in pool if record.like_count > record.dislike_count),
                key=lambda record: (
                    record.like_count - record.dislike_count,
                    record.like_count,
                    *by_ranking(record),
                ),
            ),
        }
        unique = list({record.id: record for records in lists.values() for record in records}.values())
        entries = dict(
            zip(
                [record.id for record in unique], pack_entries(self.database, self.links, unique), strict=True
            )
        )
        return {
            "data": {name: [entries[record.id] for record in records] for name, records in lists.items()},
            "filters": {
                "visibility": "public",
                "q": query.q,
                "categories": list(query.categories),
                "limit": size,
                "nsfw": "safe",
            },
        }

    # --- GET /api/sticker-packs/creators ----------------------------------------------------------
    def creators(self, *, q: str = "", limit: int | str | None = CREATORS_LIMIT_DEFAULT) -> dict[str, Any]:
        """Publishers of listed packs by creator_score (http §3); `q` filters publisher names."""
        size = parse_int("limit", limit, default=CREATORS_LIMIT_DEFAULT, low=1, high=CREATORS_LIMIT_MAX)
        text = sanitize_query(q)
        ttl = self.settings.sticker_catalog_creator_ranking_cache_seconds
        return self._cached(("creators", fold(text), size), ttl, lambda: (self._creators(text, size), None))

    def _creators(self, text: str, size: int) -> dict[str, Any]:
        index = self._current_index()
        needle = fold(text)
        groups: dict[str, list[PackRecord]] = {}
        for record in index.records.values():
            if not needle or needle in record.publisher_key:
                groups.setdefault(record.publisher_key, []).append(record)
        ranked = []
        for publisher_key, records in groups.items():
            likes = sum(record.like_count for record in records)
            opens = sum(record.open_count for record in records)
            average = sum(record.pack_score for record in records) / len(records)
            score = round(average * 0.45 + likes * 0.0008 + opens * 0.00015, 6)
            best = max(records, key=by_ranking)
            safe = [record for record in records if record.nsfw_level == "safe"]
            top = max(safe, key=by_ranking) if safe else None
            ranked.append((score, len(records), publisher_key, best.publisher, likes, opens, average, top))
        ranked.sort(key=lambda entry: (-entry[0], -entry[1], entry[2]))
        chosen = ranked[:size]
        tops = [entry[7] for entry in chosen if entry[7] is not None]
        top_entries = dict(
            zip([record.id for record in tops], pack_entries(self.database, self.links, tops), strict=True)
        )
        data = []
        for score, count, publisher_key, publisher, likes, opens, average, top in chosen:
            verified = publisher_key in self._verified
            data.append(
                {
                    "creator_score": score,
                    "publisher": publisher,
                    "verified": verified,
                    "badges": ["verified_creator"] if verified else [],
                    "stats": {
                        "packs_count": count,
                        "total_likes": likes,
                        "total_opens": opens,
                        "avg_pack_score": round(average, 6),
                    },
                    "top_pack": top_entries.get(top.id) if top is not None else None,
                }
            )
        return {"data": data, "filters": {"visibility": "public", "q": text, "limit": size}}
