"""Whole-catalog summaries: pack stats, the marketplace stats with their 7-day series, the README
summary and the sitemap's pack list (`CatalogOverviewMixin`, a part of `CatalogService`)."""

from __future__ import annotations

import datetime as dt
import heapq
from typing import Any

from omnizap.catalog import repository as repo
from omnizap.catalog.entries import by_ranking
from omnizap.catalog.keeper import AGGREGATES_SCOPE, CatalogIndexKeeper
from omnizap.catalog.shapes import iso
from omnizap.catalog.summaries import catalog_markdown
from omnizap.platform.db.types import utcnow

README_TOP_PACKS = 5


class CatalogOverviewMixin(CatalogIndexKeeper):
    """The catalog's stats, readme and sitemap endpoints."""

    # --- stats ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """GET /api/sticker-packs/stats over listed packs."""
        ttl = self.settings.home_marketplace_stats_cache_seconds

        def compute() -> tuple[dict[str, Any], None]:
            totals = self._current_index().totals
            body = {
                "data": {
                    "packs_total": totals["packs"],
                    "stickers_total": totals["stickers"],
                    "creators_total": totals["creators"],
                    "downloads_total": totals["opens"],
                },
                "filters": {"visibility": "public"},
                "meta": {"cache_seconds": ttl},
            }
            return body, None

        return self._cached(("stats",), ttl, compute)

    def marketplace_stats(self) -> dict[str, Any]:
        """GET /api/marketplace/stats: flat totals and a 7-day UTC series, listed packs only."""
        ttl = self.settings.marketplace_global_stats_cache_seconds
        return self._cached(("marketplace",), ttl, lambda: (self._marketplace(ttl), None))

    def _marketplace(self, ttl: int) -> dict[str, Any]:
        index = self._current_index()
        now = utcnow()
        today = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC)
        day_starts = [today - dt.timedelta(days=offset) for offset in range(6, -1, -1)]
        sticker_total, stickers_per_day, orphans, interactions = self._cache.get_or_compute(
            ("marketplace-aggregates", today), ttl, lambda: (self._aggregates(day_starts), AGGREGATES_SCOPE)
        )
        packs_per_day = [0] * len(day_starts)
        for record in index.records.values():
            if record.created_at >= day_starts[0]:
                packs_per_day[min(6, (record.created_at - day_starts[0]).days)] += 1
        series = [
            {
                "date": start.date().isoformat(),
                "packs_published": packs_per_day[number],
                "stickers_created": stickers_per_day[number],
                "clicks": interactions[number][0],
                "likes": interactions[number][1],
            }
            for number, start in enumerate(day_starts)
        ]
        totals = index.totals
        return {
            "total_packs": totals["packs"],
            "total_stickers": sticker_total,
            "total_clicks": totals["opens"],
            "total_likes": totals["likes"],
            "packs_last_7_days": sum(packs_per_day),
            "stickers_without_pack": orphans,
            "creators_total": totals["creators"],
            "clicks_last_7_days": sum(day["clicks"] for day in series),
            "likes_last_7_days": sum(day["likes"] for day in series),
            "series_last_7_days": series,
            "updated_at": iso(now),
            "cache_seconds": ttl,
        }

    def _aggregates(self, day_starts: list[dt.datetime]) -> tuple[int, list[int], int, list[tuple[int, int]]]:
        with self.database.read() as connection:
            sticker_total, stickers_per_day = repo.listed_sticker_totals(connection, day_starts)
            orphans = repo.stickers_without_pack(connection)
            interactions = repo.listed_interactions_per_day(connection, day_starts)
        return sticker_total, stickers_per_day, orphans, interactions

    # --- readme -----------------------------------------------------------------------------------
    def readme_summary(self) -> dict[str, Any]:
        """{data: {generated_at, cache_seconds, totals, top_packs, markdown}} about the listed catalog."""
        ttl = self.settings.readme_summary_cache_seconds
        return self._cached(("readme",), ttl, lambda: (self._readme(ttl), None))

    def readme_markdown(self) -> str:
        return str(self.readme_summary()["data"]["markdown"])

    def _readme(self, ttl: int) -> dict[str, Any]:
        index = self._current_index()
        totals = index.totals
        summary_totals = {
            "total_packs": totals["packs"],
            "total_stickers": totals["stickers"],
            "total_creators": totals["creators"],
            "total_downloads": totals["opens"],
            "total_likes": totals["likes"],
        }
        safe = (record for record in index.records.values() if record.nsfw_level == "safe")
        top = heapq.nlargest(README_TOP_PACKS, safe, key=by_ranking)
        top_packs = [
            {
                "pack_key": record.pack_key,
                "name": record.name,
                "publisher": record.publisher,
                "sticker_count": record.sticker_count,
                "like_count": record.like_count,
                "open_count": record.open_count,
                "web_url": self.links.web_url(record.pack_key),
            }
            for record in top
        ]
        now = utcnow()
        markdown = catalog_markdown(
            generated_at=now,
            cache_seconds=ttl,
            totals=summary_totals,
            top_packs=top_packs,
            origin=self.settings.site_origin,
        )
        return {
            "data": {
                "generated_at": iso(now),
                "cache_seconds": ttl,
                "totals": summary_totals,
                "top_packs": top_packs,
                "markdown": markdown,
            }
        }

    # --- sitemap ----------------------------------------------------------------------------------
    def sitemap_entries(self) -> list[tuple[str, dt.datetime]]:
        """(pack_key, updated_at) of listed packs, most recently updated first, at most
        STICKER_SITEMAP_MAX_PACKS. Unlisted packs are never included."""
        ttl = self.settings.sticker_sitemap_cache_seconds

        def compute() -> tuple[list[tuple[str, dt.datetime]], None]:
            records = self._current_index().by_updated[: self.settings.sticker_sitemap_max_packs]
            return [(record.pack_key, record.updated_at) for record in records], None

        return list(self._cached(("sitemap",), ttl, compute))
