"""Web links the bot puts in its replies: a pack's page, only for packs anyone with the link may see."""

from __future__ import annotations

import dataclasses
import urllib.parse

from omnizap.catalog.visibility import is_reachable
from omnizap.config import Settings
from omnizap.core.packs.models import Pack


def pack_link(settings: Settings, pack_key: str) -> str:
    origin = settings.site_origin.rstrip("/")
    return f"{origin}{settings.sticker_web_path}/{urllib.parse.quote(pack_key)}"


def is_on_the_web(pack: Pack) -> bool:
    """The pack page answers for it (the catalog's own reachability rule); private packs never get a
    link, so a reply forwarded to someone else cannot lead them to it."""
    return is_reachable(dataclasses.asdict(pack))
