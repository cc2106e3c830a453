"""Conditional requests (RFC 9110 §13.1.2): does an `If-None-Match` header name the current ETag?"""

from __future__ import annotations

MAX_HEADER_CHARS = 8192  # longer lists are not worth parsing; the client just gets the full answer


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison, as If-None-Match requires: `W/"x"` matches `"x"`; `*` matches any ETag.

    Our tags never contain commas, so splitting on them cannot make a foreign tag look like ours.
    """
    if not if_none_match or len(if_none_match) > MAX_HEADER_CHARS:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False
