"""The JSON shapes of the public catalog (reference http §2), with the original's field names.

PackSummary → list entry (+ classification, tags, is_nsfw) → PackDetails (+ items). Additions of
ours: `download_url` (the WhatsApp zip), `nsfw_level` on entries, `preview_url` on items (a 128 px
thumbnail). Nothing private is ever put in: no owner, no phone number except the bot's own when the
operator configured it, no storage keys or paths.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omnizap.config import Settings

PREVIEW_SIZE = 128
_DIGITS = re.compile(r"\D+")


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def bot_phone(raw: str) -> str | None:
    """The configured bot number as WhatsApp wants it (digits only, 10-15 of them), else None."""
    digits = _DIGITS.sub("", raw or "")
    return digits if 10 <= len(digits) <= 15 else None


@dataclass(frozen=True)
class Links:
    api_base: str
    web_base: str
    whatsapp_phone: str | None
    whatsapp_template: str
    max_items: int
    command_prefix: str = "/"

    @classmethod
    def from_settings(cls, settings: Settings) -> Links:
        return cls(
            api_base="/" + settings.sticker_api_base_path.strip("/"),
            web_base="/" + settings.sticker_web_path.strip("/"),
            whatsapp_phone=bot_phone(settings.whatsapp_bot_number),
            whatsapp_template=settings.sticker_web_whatsapp_message_template,
            max_items=settings.sticker_pack_max_items,
            command_prefix=settings.command_prefix,
        )

    def api_url(self, pack_key: str) -> str:
        return f"{self.api_base}/{_quote(pack_key)}"

    def web_url(self, pack_key: str) -> str:
        return f"{self.web_base}/{_quote(pack_key)}"

    def asset_url(self, pack_key: str, sticker_id: str) -> str:
        return f"{self.api_url(pack_key)}/stickers/{_quote(sticker_id)}.webp"

    def preview_url(self, pack_key: str, sticker_id: str) -> str:
        return f"{self.asset_url(pack_key, sticker_id)}?size={PREVIEW_SIZE}"

    def download_url(self, pack_key: str) -> str:
        return f"{self.api_url(pack_key)}/download/whatsapp"

    def whatsapp(self, pack_key: str, pack_name: str) -> dict[str, str] | None:
        if self.whatsapp_phone is None:
            return None
        text = (
            self.whatsapp_template.replace("{{command_prefix}}", self.command_prefix)
            .replace("{{pack_key}}", pack_key)
            .replace("{{pack_name}}", pack_name)
        )
        url = f"https://wa.me/{self.whatsapp_phone}?text={urllib.parse.quote(text, safe='')}"
        return {"phone": self.whatsapp_phone, "text": text, "url": url}


def engagement(
    open_count: int, like_count: int, dislike_count: int, updated_at: dt.datetime | None
) -> dict[str, Any]:
    return {
        "open_count": open_count,
        "like_count": like_count,
        "dislike_count": dislike_count,
        "score": like_count - dislike_count,
        "updated_at": iso(updated_at),
    }


def pack_summary(
    links: Links,
    *,
    pack_id: str,
    pack_key: str,
    name: str,
    publisher: str,
    description: str | None,
    visibility: str,
    status: str,
    sticker_count: int,
    cover_sticker_id: str | None,
    created_at: dt.datetime | None,
    updated_at: dt.datetime | None,
    counters: Mapping[str, Any],
    signals: Mapping[str, Any] | None,
    manual_tags: Sequence[str],
) -> dict[str, Any]:
    """PackSummary (http §2.1) plus `download_url`."""
    return {
        "id": pack_id,
        "pack_key": pack_key,
        "name": name,
        "publisher": publisher,
        "description": description,
        "visibility": visibility,
        "status": status or "published",
        "sticker_count": sticker_count,
        "is_complete": sticker_count >= links.max_items,
        "cover_sticker_id": cover_sticker_id,
        "cover_url": links.asset_url(pack_key, cover_sticker_id) if cover_sticker_id else None,
        "api_url": links.api_url(pack_key),
        "web_url": links.web_url(pack_key),
        "download_url": links.download_url(pack_key),
        "whatsapp": links.whatsapp(pack_key, name),
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "engagement": engagement(
            int(counters.get("open_count") or 0),
            int(counters.get("like_count") or 0),
            int(counters.get("dislike_count") or 0),
            counters.get("updated_at"),
        ),
        "signals": dict(signals) if signals is not None else None,
        "manual_tags": list(manual_tags),
    }


def with_classification(
    summary: dict[str, Any], classification: dict[str, Any], tags: Sequence[str], nsfw_level: str
) -> dict[str, Any]:
    """List entry (http §2.2): `classification`, the merged `tags`, `is_nsfw`, and our `nsfw_level`."""
    summary["classification"] = classification
    summary["tags"] = list(tags)
    summary["is_nsfw"] = nsfw_level != "safe"
    summary["nsfw_level"] = nsfw_level
    return summary
