"""`X-Request-Id`: the caller's value when it survives sanitizing, else a new UUID4 (http §13).

Sanitizing is the original's: drop every character outside `[a-zA-Z0-9._:-]`, keep the first 120.
Header bytes are read as Latin-1, so any non-ASCII (UTF-8 or not) is dropped, never decoded wrongly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

MAX_REQUEST_ID_LENGTH = 120
HEADER_NAME = b"x-request-id"
_ALREADY_CLEAN = re.compile(rb"[A-Za-z0-9._:\-]{1,120}")
_DISALLOWED = re.compile(r"[^A-Za-z0-9._:\-]+")


def normalize_request_id(raw: bytes | str | None) -> str:
    if raw:
        if isinstance(raw, bytes):
            if _ALREADY_CLEAN.fullmatch(raw):
                return raw.decode("ascii")
            raw = raw.decode("latin-1")
        cleaned = _DISALLOWED.sub("", raw)[:MAX_REQUEST_ID_LENGTH]
        if cleaned:
            return cleaned
    return str(uuid.uuid4())


def request_id_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """From ASGI headers (lower-case names); the first X-Request-Id wins."""
    for name, value in headers:
        if name == HEADER_NAME:
            return normalize_request_id(value)
    return normalize_request_id(None)
