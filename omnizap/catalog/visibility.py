"""Who may see a pack: the one definition every public read (API, pages, sitemap, delivery) uses.

- *Reachable* packs can be opened by anyone who has the link: public or unlisted, published,
  curation status ready (theme packs still `building` count too), not deleted.
- *Listed* packs are the reachable ones that are public. Unlisted packs never appear in listings,
  search, rankings, creators or the sitemap (the original listed them on request and put them in
  the sitemap); private packs are never served at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from omnizap.platform.db.schema import sticker_pack

REACHABLE_VISIBILITIES = ("public", "unlisted")
LISTED_VISIBILITY = "public"


def reachable_condition(pack: sa.Table = sticker_pack) -> ColumnElement[bool]:
    """SQL condition: the pack may be shown to anyone holding its link."""
    return sa.and_(
        pack.c.deleted_at.is_(None),
        pack.c.visibility.in_(REACHABLE_VISIBILITIES),
        pack.c.status == "published",
        sa.or_(
            pack.c.pack_status == "ready",
            sa.and_(pack.c.pack_status == "building", pack.c.is_auto_pack == 1),
        ),
    )


def listed_condition(pack: sa.Table = sticker_pack) -> ColumnElement[bool]:
    """SQL condition: the pack may appear in public lists, search and the sitemap."""
    return sa.and_(reachable_condition(pack), pack.c.visibility == LISTED_VISIBILITY)


def is_reachable(row: Mapping[str, Any]) -> bool:
    """The same rule as `reachable_condition`, for a pack row already in memory."""
    if row.get("deleted_at") is not None:
        return False
    if row.get("visibility") not in REACHABLE_VISIBILITIES or row.get("status") != "published":
        return False
    status = row.get("pack_status") or "ready"
    return status == "ready" or (status == "building" and bool(row.get("is_auto_pack")))


def is_listed(row: Mapping[str, Any]) -> bool:
    return is_reachable(row) and row.get("visibility") == LISTED_VISIBILITY
