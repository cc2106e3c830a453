"""One interface for sticker files, whatever holds them (local disk now, S3-compatible stores later)."""

from __future__ import annotations

import hashlib
import re
from typing import Protocol, runtime_checkable

_KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9/_.-]{0,510}$")


class StorageError(RuntimeError):
    """The store could not complete an operation; the message names the key, never a server path."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


def content_key(data: bytes, extension: str = "webp") -> str:
    """Content address of `data`: `ab/cd/<sha256>.<ext>`, so identical files share one object."""
    digest = hashlib.sha256(data).hexdigest()
    return key_for_digest(digest, extension)


def key_for_digest(digest: str, extension: str = "webp") -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}.{extension}"


def validate_key(key: str) -> str:
    """Reject keys that could escape the store's root or collide with temp files."""
    if not _KEY_PATTERN.match(key) or ".." in key or "//" in key or key.endswith("/"):
        raise ValueError(f"invalid storage key {key!r}: use lowercase letters, digits and / _ . -")
    return key


@runtime_checkable
class Storage(Protocol):
    """What every backend offers. Keys are relative, content-addressed paths such as `ab/cd/<sha>.webp`."""

    name: str

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` atomically: readers see the old object or the whole new one."""
        ...

    def get(self, key: str) -> bytes:
        """Return the bytes under `key`; raise ObjectNotFound if there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    def url(self, key: str, *, expires_in: int | None = None) -> str | None:
        """A URL a client can fetch the object from, or None when the backend has no public URL."""
        ...
