"""The catalog's Markdown snapshot (our take on the original README snapshot) and its helpers.

The original's snapshot was about the WhatsApp bot (users, groups, message types); this one is
about the catalog: totals and the top packs, as a table a README or a status page can embed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def markdown_text(value: object) -> str:
    """Plain text safe inside a Markdown table cell: specials escaped, no line breaks."""
    text = " ".join(str(value if value is not None else "").split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def thousands(value: int) -> str:
    return f"{int(value):,}"


def catalog_markdown(
    *,
    generated_at: dt.datetime,
    cache_seconds: int,
    totals: Mapping[str, int],
    top_packs: Sequence[Mapping[str, Any]],
    origin: str,
) -> str:
    lines = [
        "### Catalog snapshot",
        "",
        f"> Updated `{generated_at.isoformat(timespec='seconds')}` | cache `{cache_seconds}s`",
        "",
        "| Metric | Value |",
        "| --- | ---: |",
        f"| Packs | {thousands(totals['total_packs'])} |",
        f"| Stickers | {thousands(totals['total_stickers'])} |",
        f"| Creators | {thousands(totals['total_creators'])} |",
        f"| Downloads (opens) | {thousands(totals['total_downloads'])} |",
        f"| Likes | {thousands(totals['total_likes'])} |",
    ]
    if top_packs:
        lines += [
            "",
            "#### Top packs",
            "| # | Pack | Creator | Stickers | Likes |",
            "| ---: | --- | --- | ---: | ---: |",
        ]
        for rank, pack in enumerate(top_packs, start=1):
            link = f"[{markdown_text(pack['name'])}]({origin.rstrip('/')}{pack['web_url']})"
            publisher = markdown_text(pack["publisher"])
            stickers, likes = thousands(pack["sticker_count"]), thousands(pack["like_count"])
            lines.append(f"| {rank} | {link} | {publisher} | {stickers} | {likes} |")
    return "\n".join(lines) + "\n"
