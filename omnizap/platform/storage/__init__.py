"""File storage behind one interface; the backend is chosen by configuration.

Local disk is every deployment's source of truth (and the delivery fallback); an S3-compatible
object store (`s3.py`) is an optional second copy that clients download from directly.
"""

from __future__ import annotations

from omnizap.config import Settings
from omnizap.platform.storage.base import ObjectNotFound, Storage, StorageError, content_key, key_for_digest
from omnizap.platform.storage.health import StoreHealth
from omnizap.platform.storage.local import LocalStorage
from omnizap.platform.storage.s3 import (
    ObjectStorageConfig,
    ObjectStorageConfigError,
    S3Storage,
    StoreUnavailable,
    object_storage,
)

__all__ = [
    "LocalStorage",
    "ObjectNotFound",
    "ObjectStorageConfig",
    "ObjectStorageConfigError",
    "S3Storage",
    "Storage",
    "StorageError",
    "StoreHealth",
    "StoreUnavailable",
    "content_key",
    "key_for_digest",
    "local_storage",
    "object_storage",
]


def local_storage(settings: Settings) -> LocalStorage:
    """The disk store every deployment has: the source of truth and the fallback for delivery."""
    return LocalStorage(settings.sticker_storage_dir)
