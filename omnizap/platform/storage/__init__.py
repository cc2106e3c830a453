"""File storage behind one interface; the backend is chosen by configuration."""

from __future__ import annotations

from omnizap.config import Settings
from omnizap.platform.storage.base import ObjectNotFound, Storage, StorageError, content_key, key_for_digest
from omnizap.platform.storage.local import LocalStorage

__all__ = [
    "LocalStorage",
    "ObjectNotFound",
    "Storage",
    "StorageError",
    "content_key",
    "key_for_digest",
    "local_storage",
]


def local_storage(settings: Settings) -> LocalStorage:
    """The disk store every deployment has: the source of truth and the fallback for delivery."""
    return LocalStorage(settings.sticker_storage_dir)
