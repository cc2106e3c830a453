"""Sticker files of reachable packs (http §5), and their previews.

The hot path is one indexed query (pack key → item → asset, with the visibility rule) and one
storage read — or, for viewers in the `enable_object_storage_delivery` rollout, no read at all but a
redirect to the object store (`objects.py`). The ETag is the asset's stored sha256, never a hash
computed per request; a matching `If-None-Match` needs no storage access at all.

A valid signed link (`links.py`) also opens stickers of packs that are not reachable (private or
draft), as long as the pack is not deleted and still holds the sticker.
"""

from __future__ import annotations

import logging
import re
import threading
import zlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.catalog.visibility import reachable_condition
from omnizap.core.errors import InvalidInput, PackNotFound, StickerNotFound, StickerPackError, StorageFailure
from omnizap.core.packs.rules import public_pack_key
from omnizap.delivery.previews import PREVIEW_SIZES, preview_etag, preview_key, render_preview
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset, sticker_pack, sticker_pack_item
from omnizap.platform.storage import ObjectNotFound, Storage, StorageError

logger = logging.getLogger(__name__)

# A sticker id names the same bytes forever (content-addressed assets), so caches may keep them.
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
WEBP_CONTENT_TYPE = "image/webp"
_STICKER_ID = re.compile(r"^[a-z0-9-]{1,64}$")
_SIZE_TEXT = re.compile(r"^[0-9]{1,4}$")
_RENDER_LOCKS = tuple(threading.Lock() for _ in range(64))


class StickerFileMissing(StickerPackError):
    """The sticker exists but storage has no file for it (the operator is told in the log)."""

    code = "STICKER_FILE_MISSING"
    http_status = 404


def parse_sticker_id(value: str) -> str:
    """`<id>` or `<id>.webp` → the asset id; anything else is simply not a sticker."""
    text = value.strip().lower().removesuffix(".webp")
    if not _STICKER_ID.match(text):
        raise StickerNotFound("Sticker not found in this pack.")
    return text


def parse_preview_size(value: str | None) -> int | None:
    """None (the sticker itself) or one of PREVIEW_SIZES; anything else is refused by name."""
    if value is None:
        return None
    allowed = ", ".join(str(size) for size in PREVIEW_SIZES)
    if not _SIZE_TEXT.match(value.strip()) or int(value) not in PREVIEW_SIZES:
        raise InvalidInput(
            f"size must be one of {allowed} (pixels); leave it out for the full 512 px sticker.",
            details={"parameter": "size", "allowed": list(PREVIEW_SIZES)},
        )
    return int(value)


@dataclass(frozen=True)
class StickerLocation:
    """Where a sticker of a reachable pack lives, from its asset row."""

    pack_id: str
    asset_id: str
    sha256: str
    content_type: str
    storage_key: str
    size_bytes: int
    is_animated: bool
    object_uri: str | None = None  # `s3://bucket/key` once uploaded and verified, else None

    def etag(self, size: int | None = None) -> str:
        return f'"{self.sha256}"' if size is None else preview_etag(self.sha256, size)


class StickerDelivery:
    def __init__(self, database: Database, storage: Storage) -> None:
        self.database = database
        self.storage = storage

    def locate(self, pack_key: str, sticker_ref: str, *, linked: bool = False) -> StickerLocation:
        """The sticker when the pack is reachable and holds it; PackNotFound / StickerNotFound else.

        `linked`: the request carries a valid signed link, so any pack that is not deleted will do."""
        key = public_pack_key(pack_key)
        sticker_id = parse_sticker_id(sticker_ref)
        if linked:
            sticker_query, pack_query = _STICKER_OF_LIVE_PACK, _LIVE_PACK_ID
        else:
            sticker_query, pack_query = _STICKER_OF_REACHABLE_PACK, _REACHABLE_PACK_ID
        with self.database.read() as connection:
            found = _sticker_of_pack(connection, sticker_query, key, sticker_id)
            if found is not None:
                return found
            pack_known = connection.execute(pack_query, {"pack_key": key}).first() is not None
        if not pack_known:
            raise PackNotFound("Pack not found; it may be private, unpublished or deleted.")
        raise StickerNotFound("Sticker not found in this pack.")

    def has_file(self, location: StickerLocation) -> bool:
        try:
            return self.storage.exists(location.storage_key)
        except (StorageError, ValueError):
            return False

    def read(self, location: StickerLocation) -> bytes:
        """The stored sticker bytes."""
        return self._get(location, location.storage_key)

    def read_preview(self, location: StickerLocation, size: int) -> bytes:
        """The stored preview, rendered and stored first if this is its first request. Renders in this
        process are one at a time per key; two processes may both render, and the atomic write of
        identical bytes makes that harmless."""
        key = preview_key(location.sha256, size)
        stored = self._get_optional(key)
        if stored is not None:
            return stored
        with _RENDER_LOCKS[zlib.crc32(key.encode()) % len(_RENDER_LOCKS)]:
            stored = self._get_optional(key)
            if stored is not None:
                return stored
            original = self.read(location)
            try:
                preview = render_preview(original, size)
            except (OSError, ValueError) as exc:
                logger.error("sticker %s: cannot render a %d px preview: %s", location.asset_id, size, exc)
                raise StorageFailure(f"could not render a preview of sticker {location.asset_id}") from exc
            try:
                self.storage.put(key, preview, WEBP_CONTENT_TYPE)
            except StorageError:
                # Serving the rendition still works; the next request renders again.
                logger.exception("sticker %s: could not store its %d px preview", location.asset_id, size)
            return preview

    def _get_optional(self, key: str) -> bytes | None:
        try:
            return self.storage.get(key)
        except ObjectNotFound:
            return None
        except StorageError as exc:
            raise StorageFailure(f"could not read {key} from storage") from exc

    def _get(self, location: StickerLocation, key: str) -> bytes:
        try:
            return self.storage.get(key)
        except (ObjectNotFound, ValueError) as exc:  # ValueError: a legacy path that is not a key
            logger.error(
                "sticker %s of pack %s has no file in %s storage under %r; import its source again",
                location.asset_id,
                location.pack_id,
                self.storage.name,
                key,
            )
            raise StickerFileMissing("The file of this sticker is not available; try again later.") from exc
        except StorageError as exc:
            logger.error("sticker %s: storage read failed: %s", location.asset_id, exc)
            raise StorageFailure(f"could not read sticker {location.asset_id} from storage") from exc


# Built once: constructing the statement costs more than running it on this hot path.
def _sticker_query(pack_condition: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return (
        sa.select(
            sticker_pack.c.id.label("pack_id"),
            sticker_asset.c.id,
            sticker_asset.c.sha256,
            sticker_asset.c.mimetype,
            sticker_asset.c.storage_path,
            sticker_asset.c.size_bytes,
            sticker_asset.c.is_animated,
            sticker_asset.c.object_storage_key,
        )
        .select_from(
            sticker_pack.join(sticker_pack_item, sticker_pack_item.c.pack_id == sticker_pack.c.id).join(
                sticker_asset, sticker_asset.c.id == sticker_pack_item.c.sticker_id
            )
        )
        .where(
            sticker_pack.c.pack_key == sa.bindparam("pack_key"),
            pack_condition,
            sticker_pack_item.c.sticker_id == sa.bindparam("sticker_id"),
        )
    )


_STICKER_OF_REACHABLE_PACK = _sticker_query(reachable_condition())
_STICKER_OF_LIVE_PACK = _sticker_query(sticker_pack.c.deleted_at.is_(None))
_REACHABLE_PACK_ID = sa.select(sticker_pack.c.id).where(
    sticker_pack.c.pack_key == sa.bindparam("pack_key"), reachable_condition()
)
_LIVE_PACK_ID = sa.select(sticker_pack.c.id).where(
    sticker_pack.c.pack_key == sa.bindparam("pack_key"), sticker_pack.c.deleted_at.is_(None)
)


def _sticker_of_pack(
    connection: Connection, query: sa.Select[Any], pack_key: str, sticker_id: str
) -> StickerLocation | None:
    parameters = {"pack_key": pack_key, "sticker_id": sticker_id}
    row = connection.execute(query, parameters).mappings().first()
    if row is None:
        return None
    return StickerLocation(
        pack_id=row["pack_id"],
        asset_id=row["id"],
        sha256=row["sha256"],
        content_type=row["mimetype"] or WEBP_CONTENT_TYPE,
        storage_key=row["storage_path"],
        size_bytes=int(row["size_bytes"]),
        is_animated=bool(row["is_animated"]),
        object_uri=row["object_storage_key"],
    )
