"""The original's JSON shapes: GoogleSessionData (http §2.6) and the `/me` answer (http §7.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from omnizap.catalog.shapes import Links, iso, pack_summary
from omnizap.catalog.visibility import is_reachable
from omnizap.config import Settings

if TYPE_CHECKING:
    from omnizap.accounts.service import Session

_WHATSAPP_OWNER = re.compile(r"^(\d{10,15})@s\.whatsapp\.net$")
VISIBILITY_STATS = ("private", "unlisted", "public")


def owner_phone(owner_jid: str | None) -> str | None:
    """The signed-in person's own phone (10-15 digits) when their owner is a WhatsApp JID."""
    match = _WHATSAPP_OWNER.match(owner_jid or "")
    return match.group(1) if match else None


def anonymous_session_data(provider: str) -> dict[str, Any]:
    return {
        "authenticated": False,
        "provider": provider,
        "user": None,
        "owner_jid": None,
        "owner_phone": None,
        "expires_at": None,
    }


def session_data(session: Session, provider: str) -> dict[str, Any]:
    return {
        "authenticated": True,
        "provider": provider,
        "user": {
            "sub": session.subject,
            "email": session.email,
            "name": session.name,
            "picture": session.picture,
        },
        "owner_jid": session.owner_jid,
        "owner_phone": owner_phone(session.owner_jid),
        "expires_at": iso(session.expires_at),
    }


def _my_pack(links: Links, row: Mapping[str, Any], counters: Mapping[str, Any]) -> dict[str, Any]:
    visible = is_reachable(row)
    summary = pack_summary(
        links,
        pack_id=row["id"],
        pack_key=row["pack_key"],
        name=row["name"],
        publisher=row["publisher"],
        description=row.get("description"),
        visibility=row["visibility"],
        status=row["status"],
        sticker_count=int(row.get("sticker_count") or 0),
        cover_sticker_id=row.get("cover_sticker_id"),
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
        counters=counters,
        signals=None,
        manual_tags=[],
    )
    summary["is_publicly_visible"] = visible
    if not visible:
        summary["cover_url"] = None  # the asset route would refuse it anyway (private/unpublished)
    return summary


def me_data(
    auth: Mapping[str, Any],
    session: Mapping[str, Any],
    owner_jid: str | None,
    owner_jids: Sequence[str],
    packs: Sequence[Mapping[str, Any]],
    settings: Settings,
    engagement: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    links = Links.from_settings(settings)
    summaries = [_my_pack(links, row, engagement.get(row["id"], {})) for row in packs]
    stats = {"total": len(summaries), "published": 0, "drafts": 0, "private": 0, "unlisted": 0, "public": 0}
    for row in packs:
        if row["status"] == "published":
            stats["published"] += 1
        else:
            stats["drafts"] += 1
        if row["visibility"] in VISIBILITY_STATS:
            stats[row["visibility"]] += 1
    data: dict[str, Any] = {
        "auth": dict(auth),
        "session": dict(session),
        "owner_jid": owner_jid,
        "packs": summaries,
        "stats": stats,
    }
    if owner_jid is not None:
        data["owner_jids"] = list(owner_jids)
    return data
