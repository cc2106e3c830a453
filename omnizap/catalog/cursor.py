"""Opaque pagination cursors: a small JSON position, signed with HMAC-SHA256, base64url.

A cursor says where the previous page ended (a position in a frozen ranking generation, or the
(created_at, id) of the last pack for `new`), which sort and filters it belongs to and when it was
issued. It holds no pack data and nothing private; the signature only stops tampered or garbled
cursors from being taken for real ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omnizap.core.errors import InvalidInput

CURSOR_VERSION = 1
CURSOR_MAX_LENGTH = 512
SIGNATURE_BYTES = 16
INVALID_CURSOR = "INVALID_CURSOR"
RESTART_HINT = "restart from the first page (omit `cursor`)."


def cursor_key(explicit_secret: str, database_url: str) -> bytes:
    """The HMAC key: the configured secret, else one derived from DATABASE_URL (shared by every API
    process of one installation, so a cursor from one process works on another)."""
    material = explicit_secret or f"omnizap-catalog-cursor:{database_url}"
    return hashlib.sha256(material.encode()).digest()


def invalid_cursor(reason: str) -> InvalidInput:
    return InvalidInput(f"Invalid cursor: {reason}; {RESTART_HINT}", code=INVALID_CURSOR)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


@dataclass(frozen=True)
class Cursor:
    sort: str
    filters: str  # fingerprint of q, categories, intent and nsfw
    issued_at: int  # unix seconds
    generation: int | None = None  # score sorts: the frozen ranking generation
    position: int | None = None  # score sorts: position of the last pack shown (1-based)
    created_us: int | None = None  # `new`: created_at of the last pack shown, in microseconds
    pack_id: str | None = None  # `new`: id of the last pack shown (tie-break)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": CURSOR_VERSION, "s": self.sort, "f": self.filters, "t": self.issued_at}
        if self.generation is not None:
            data["g"] = self.generation
            data["p"] = self.position
        else:
            data["c"] = self.created_us
            data["i"] = self.pack_id
        return data


class CursorCodec:
    def __init__(self, key: bytes, max_age_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.max_age_seconds = max_age_seconds
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:SIGNATURE_BYTES]

    def encode(self, cursor: Cursor) -> str:
        body = json.dumps(cursor.payload(), separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64encode(body)}.{_b64encode(self._sign(body))}"

    def decode(self, text: str, *, sort: str, filters: str) -> Cursor:
        """The cursor's position; InvalidInput (code INVALID_CURSOR) when it is garbled, tampered
        with, expired, or belongs to another sort or other filters."""
        if not isinstance(text, str) or not text or len(text) > CURSOR_MAX_LENGTH:
            raise invalid_cursor("it is empty or too long")
        encoded_body, dot, encoded_signature = text.partition(".")
        if not dot:
            raise invalid_cursor("it is not a cursor this catalog issued")
        try:
            body = _b64decode(encoded_body)
            signature = _b64decode(encoded_signature)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise invalid_cursor("it is not valid base64url") from None
        if not hmac.compare_digest(signature, self._sign(body)):
            raise invalid_cursor("its signature does not match (changed or from another installation)")
        try:
            data = json.loads(body)
            cursor = self._parse(data)
        except (ValueError, TypeError, KeyError):
            raise invalid_cursor("its content is malformed") from None
        age = self.now() - cursor.issued_at
        if age > self.max_age_seconds or age < -300:
            raise invalid_cursor(f"it expired (cursors last {self.max_age_seconds} s)")
        if cursor.sort != sort:
            raise invalid_cursor(f"it belongs to sort={cursor.sort!r}, not sort={sort!r}")
        if cursor.filters != filters:
            raise invalid_cursor("it was issued for other filters (q, categories, intent, nsfw)")
        return cursor

    @staticmethod
    def _parse(data: Any) -> Cursor:
        if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        sort, filters, issued = data["s"], data["f"], data["t"]
        if not isinstance(sort, str) or not isinstance(filters, str) or type(issued) is not int:
            raise ValueError("bad header")
        if "g" in data:
            generation, position = data["g"], data["p"]
            if type(generation) is not int or type(position) is not int or position < 0:
                raise ValueError("bad generation position")
            return Cursor(
                sort=sort, filters=filters, issued_at=issued, generation=generation, position=position
            )
        created, pack_id = data["c"], data["i"]
        if type(created) is not int or not isinstance(pack_id, str) or len(pack_id) > 64:
            raise ValueError("bad keyset position")
        return Cursor(sort=sort, filters=filters, issued_at=issued, created_us=created, pack_id=pack_id)
