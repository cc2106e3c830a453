"""GET /api/sticker-packs/:packKey: the PackDetails of one reachable pack with its items
(`CatalogDetailMixin`, a part of `CatalogService`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnizap.catalog import repository as repo
from omnizap.catalog.chat_links import telegram_set
from omnizap.catalog.classification import (
    classification_facts,
    merge_tags,
    sticker_classification,
    sticker_tags,
)
from omnizap.catalog.derive import SNAPSHOT_READ_FLAG, current_derivations, signals_from_scores
from omnizap.catalog.keeper import CatalogIndexKeeper
from omnizap.catalog.params import parse_categories
from omnizap.catalog.shapes import iso, pack_summary, with_classification
from omnizap.catalog.signals import effective_nsfw_level, nsfw_level
from omnizap.catalog.text import manual_tags, public_description, sanitize_query
from omnizap.core.errors import InvalidInput

PACK_KEY_MAX = 160


class CatalogDetailMixin(CatalogIndexKeeper):
    """The catalog's pack detail endpoint."""

    def pack_detail(self, pack_key: str, categories: str | Sequence[str] = ()) -> dict[str, Any] | None:
        """PackDetails of a reachable pack (public or unlisted), None otherwise. `categories` keeps
        only the items carrying one of those tags."""
        key = sanitize_query(pack_key)[:PACK_KEY_MAX].lower()
        if not key:
            given = str(pack_key or "").strip()
            message = (
                "Invalid pack key: it holds nothing but control characters; keys look like sunny-cats-a1b2c."
                if given
                else "pack_key is required (e.g. sunny-cats-a1b2c)."
            )
            raise InvalidInput(message, details={"parameter": "pack_key"})
        wanted = parse_categories(categories)
        ttl = self.settings.sticker_catalog_pack_payload_cache_seconds
        return self._cached(("detail", key, wanted), ttl, lambda: self._detail(key, wanted))

    def _detail(self, pack_key: str, categories: tuple[str, ...]) -> tuple[dict[str, Any] | None, str | None]:
        rules = self.derive_settings.tags
        now = self._clock()
        with self.database.read() as connection:
            row = repo.reachable_pack_by_key(connection, pack_key)
            if row is None:
                return None, None
            pack_id = row["id"]
            items = repo.pack_items_with_assets(connection, pack_id)
            classifications = repo.asset_classifications(connection, [item["sticker_id"] for item in items])
            if self.settings.sticker_catalog_only_classified:
                items = [item for item in items if item["sticker_id"] in classifications]
                if not items:
                    return None, pack_id
            counters = repo.engagement_rows(connection, [pack_id]).get(pack_id) or {}
            telegram = telegram_set(connection, row["pack_key"], row["version"])
            snapshot = repo.snapshot_rows(connection, [pack_id], with_scores=True).get(pack_id)
            live = current_derivations(
                connection,
                [{**row, "sticker_count": len(items)}],
                counters={pack_id: counters},
                snapshots={pack_id: snapshot} if snapshot is not None else {},
                settings=self.derive_settings,
                now=now,
                max_age=self._snapshot_max_age,
                snapshot_read=lambda subject: self.flags.is_enabled(SNAPSHOT_READ_FLAG, subject),
            ).get(pack_id)
            if live is not None:
                signals: dict[str, Any] | None = live.signals
            else:
                signals = signals_from_scores((snapshot or {}).get("scores_json"))
        shown = []
        for item in items:
            classification_row = classifications.get(item["sticker_id"])
            item_tags = sticker_tags(classification_row, rules) if classification_row else []
            if categories and not set(categories) & set(item_tags):
                continue
            shown.append((item, classification_row, item_tags))
        facts = classification_facts(len(shown), [entry[1] for entry in shown if entry[1] is not None], rules)
        manual = manual_tags(row["description"])
        level = effective_nsfw_level(
            nsfw_level(facts, self.derive_settings.signals), bool(row["is_sensitive"])
        )
        sticker_ids = [entry[0]["sticker_id"] for entry in shown]
        cover = row["cover_sticker_id"] if row["cover_sticker_id"] in sticker_ids else None
        if cover is None and sticker_ids:
            cover = sticker_ids[0]
        details = pack_summary(
            self.links,
            pack_id=pack_id,
            pack_key=row["pack_key"],
            name=row["name"],
            publisher=row["publisher"],
            description=public_description(row["description"]),
            visibility=row["visibility"],
            status=row["status"],
            sticker_count=len(shown),
            cover_sticker_id=cover,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            counters=counters,
            signals=signals,
            manual_tags=manual,
        )
        with_classification(details, facts.summary(manual), merge_tags(facts.tags, manual), level)
        details["items"] = [self._item(row["pack_key"], *entry) for entry in shown]
        # Ways onto a phone (docs/api.md): the bot chat with `/pack send` typed, the Telegram set.
        details["whatsapp_send_url"] = (details.get("whatsapp") or {}).get("url")
        details["telegram"] = telegram
        details["telegram_url"] = telegram["url"] if telegram else None
        return details, pack_id

    def _item(
        self, pack_key: str, item: dict[str, Any], classification_row: dict[str, Any] | None, tags: list[str]
    ) -> dict[str, Any]:
        sticker_id = item["sticker_id"]
        emojis = item["emojis"] if isinstance(item["emojis"], list) else []
        classification = sticker_classification(classification_row, self.derive_settings.tags)
        asset = None
        if item.get("mimetype") is not None:
            asset = {
                "id": sticker_id,
                "mimetype": item["mimetype"] or "image/webp",
                "is_animated": bool(item["is_animated"]),
                "width": item["width"],
                "height": item["height"],
                "size_bytes": item["size_bytes"],
                "classification": classification,
            }
        return {
            "id": item["id"],
            "sticker_id": sticker_id,
            "position": int(item["position"]),
            "emojis": [str(emoji) for emoji in emojis],
            "accessibility_label": item["accessibility_label"],
            "created_at": iso(item["created_at"]),
            "asset_url": self.links.asset_url(pack_key, sticker_id),
            "preview_url": self.links.preview_url(pack_key, sticker_id),
            "tags": tags,
            "is_nsfw": bool(classification_row and classification_row.get("is_nsfw")),
            "asset": asset,
        }
