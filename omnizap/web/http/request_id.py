"""`X-Request-Id`: the caller's value when it survives sanitizing, else a new UUID4 (http §13).

Sanitizing is the original's: drop every character outside `[a-zA-Z0-9._:-]`, keep the first 120.
Header bytes are read as Latin-1, so any non-ASCII (UTF-8 or not) is dropped, never decoded wrongly.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable

MAX_REQUEST_ID_LENGTH = 120
HEADER_NAME = b"x-request-id"
_ALREADY_CLEAN = re.compile(rb"[A-Za-z0-9._:\-]{1,120}")
_DISALLOWED = re.compile(r"[^A-Za-z0-9._:\-]+")
_RANDOM_BATCH = 16 * 256


class _RandomIds:
    """UUID4 strings from the OS's random source, read 4 KiB at a time instead of one system call
    per request (uuid.uuid4 reads 16 bytes on every call)."""

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            if self._offset >= len(self._pool):
                self._pool, self._offset = os.urandom(_RANDOM_BATCH), 0
            chunk = bytearray(self._pool[self._offset : self._offset + 16])
            self._offset += 16
        chunk[6] = (chunk[6] & 0x0F) | 0x40  # version 4
        chunk[8] = (chunk[8] & 0x3F) | 0x80  # RFC 4122 variant
        text = chunk.hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_random_ids = _RandomIds()


def new_request_id() -> str:
    return _random_ids.next()


def normalize_request_id(raw: bytes | str | None) -> str:
    if raw:
        if isinstance(raw, bytes):
            if _ALREADY_CLEAN.fullmatch(raw):
                return raw.decode("ascii")
            raw = raw.decode("latin-1")
        cleaned = _DISALLOWED.sub("", raw)[:MAX_REQUEST_ID_LENGTH]
        if cleaned:
            return cleaned
    return new_request_id()


def request_id_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """From ASGI headers (lower-case names); the first X-Request-Id wins."""
    for name, value in headers:
        if name == HEADER_NAME:
            return normalize_request_id(value)
    return new_request_id()
