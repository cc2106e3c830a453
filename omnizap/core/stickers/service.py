"""Sticker ingest: convert, dedupe by content hash, store the file, record the row and its event.

Ingest order (nothing half-written survives a failure):
1. Same input seen before (`source_sha256`)? Return that asset without converting again.
2. Convert (CPU work, outside any transaction) and hash the final WebP.
3. Same WebP stored before (`sha256`, globally unique)? Return it; rewrite its file if it went missing.
4. Write the file (atomic, content-addressed key), then INSERT the row and the STICKER_ASSET_CREATED
   outbox event in one transaction. A unique-key race re-reads the winner's row; any other failure
   deletes the file again unless a row references it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy.exc

from omnizap.config import Settings
from omnizap.core.errors import StickerNotFound, StorageFailure
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.stickers import repository
from omnizap.core.stickers.errors import (
    EMPTY_FILE,
    INVALID_STICKER,
    TOO_LARGE,
    UNSUPPORTED_FORMAT,
    MediaRejected,
)
from omnizap.core.stickers.exif import StickerMetadata, embed_sticker_metadata, read_sticker_metadata
from omnizap.core.stickers.formats import SourceFormat, sniff_format
from omnizap.core.stickers.limits import IngestLimits
from omnizap.core.stickers.media import (
    ConvertedSticker,
    convert_to_sticker,
    validate_whatsapp_sticker,
    whatsapp_sticker_problems,
)
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow
from omnizap.platform.outbox.events import asset_created
from omnizap.platform.storage import ObjectNotFound, Storage, StorageError, key_for_digest

logger = logging.getLogger(__name__)

STICKER_MIMETYPE = "image/webp"
# Bump when conversion changes in a way that should not reuse assets made from the same input.
INGEST_PIPELINE_VERSION = "1"


@dataclass(frozen=True)
class StickerAsset:
    """One row of `sticker_asset`. `storage_path` is a storage key, never a server path."""

    id: str
    owner_jid: str
    sha256: str
    mimetype: str
    is_animated: bool
    width: int
    height: int
    size_bytes: int
    frame_count: int
    duration_ms: int
    storage_path: str
    created_at: dt.datetime
    source_sha256: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StickerAsset:
        return cls(
            id=row["id"],
            owner_jid=row["owner_jid"],
            sha256=row["sha256"],
            mimetype=row["mimetype"],
            is_animated=bool(row["is_animated"]),
            width=int(row["width"] or 0),
            height=int(row["height"] or 0),
            size_bytes=int(row["size_bytes"]),
            frame_count=int(row["frame_count"]),
            duration_ms=int(row["duration_ms"]),
            storage_path=row["storage_path"],
            created_at=row["created_at"],
            source_sha256=row.get("source_sha256"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (timestamps as ISO 8601)."""
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class IngestResult:
    asset: StickerAsset
    created: bool  # False when the same sticker was already stored (dedupe)


class StickerService:
    def __init__(self, database: Database, storage: Storage, settings: Settings) -> None:
        self.database = database
        self.storage = storage
        self.settings = settings
        self.limits = IngestLimits.from_settings(settings)

    # --- ingest ---------------------------------------------------------------------------------

    def ingest(
        self,
        data: bytes,
        *,
        owner_jid: str,
        pack_name: str | None = None,
        publisher: str | None = None,
        emojis: Sequence[str] = (),
    ) -> IngestResult:
        """Turn an image, GIF or video into a stored WhatsApp sticker (or find the identical one).

        Without explicit metadata, a ready-made valid sticker keeps the metadata it carries.
        Raises MediaRejected (an InvalidInput) for unusable input, StorageFailure if the file store fails.
        """
        owner = normalize_owner_jid(owner_jid)
        metadata = self._metadata(pack_name, publisher, emojis)
        keep_existing = pack_name is None and publisher is None and not emojis
        fingerprint = self._fingerprint(data, metadata, keep_existing)

        def convert() -> ConvertedSticker:
            return convert_to_sticker(
                data, metadata=metadata, limits=self.limits, keep_existing_metadata=keep_existing
            )

        with self.database.read() as connection:
            previous = repository.find_by_source_sha256(connection, fingerprint)
        if previous is not None:
            asset = StickerAsset.from_row(previous)
            if not self._file_present(asset):
                self._restore_file(asset, convert().data)
            return IngestResult(asset, created=False)
        return self._store(convert(), owner, fingerprint)

    def ingest_webp_sticker(
        self,
        data: bytes,
        *,
        owner_jid: str,
        pack_name: str | None = None,
        publisher: str | None = None,
        emojis: Sequence[str] = (),
    ) -> IngestResult:
        """Store a ready-made WebP sticker as it is: validated against WhatsApp's rules, never re-encoded.

        Metadata is replaced only when some is given; a sticker that breaks a rule is refused
        (INVALID_STICKER, naming each rule) instead of converted.
        """
        owner = normalize_owner_jid(owner_jid)
        if not data:
            raise MediaRejected(EMPTY_FILE, "the sticker file is empty (0 bytes)")
        if len(data) > self.settings.sticker_pack_max_sticker_bytes:
            raise MediaRejected(
                TOO_LARGE,
                f"the sticker has {len(data) / 1_048_576:.2f} MB and the limit is "
                f"{self.settings.sticker_pack_max_sticker_bytes / 1_048_576:.2f} MB",
            )
        if sniff_format(data) is not SourceFormat.WEBP:
            raise MediaRejected(UNSUPPORTED_FORMAT, "a sticker must be a WebP file; import other formats")
        info = validate_whatsapp_sticker(data, self.limits)
        if pack_name is not None or publisher is not None or emojis:
            data = embed_sticker_metadata(data, self._metadata(pack_name, publisher, emojis))
            problems = whatsapp_sticker_problems(data, info, self.limits)
            if problems:
                raise MediaRejected(
                    INVALID_STICKER, "with its metadata the sticker breaks a rule: " + problems[0]
                )
        converted = ConvertedSticker(
            data=data,
            is_animated=info.is_animated,
            frame_count=info.frame_count,
            duration_ms=info.duration_ms,
            source_format=SourceFormat.WEBP,
            encoding="unchanged",
        )
        return self._store(converted, owner, source_sha256=None)

    def _metadata(
        self, pack_name: str | None, publisher: str | None, emojis: Sequence[str]
    ) -> StickerMetadata:
        return StickerMetadata.clean(
            pack_name,
            publisher,
            emojis,
            default_pack_name=self.settings.sticker_default_pack_name,
            default_publisher=self.settings.sticker_default_publisher,
        )

    def _fingerprint(self, data: bytes, metadata: StickerMetadata, keep_existing: bool) -> str:
        """Hash of everything the output depends on: input bytes, metadata, output limits."""
        recipe = {
            "pipeline": INGEST_PIPELINE_VERSION,
            "metadata": asdict(metadata),
            "keep_existing_metadata": keep_existing,
            "static_max_bytes": self.limits.static_max_bytes,
            "animated_max_bytes": self.limits.animated_max_bytes,
            "max_duration_ms": self.limits.max_duration_ms,
        }
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
        digest.update(data)
        return digest.hexdigest()

    def _store(self, converted: ConvertedSticker, owner: str, source_sha256: str | None) -> IngestResult:
        data = converted.data
        if len(data) > self.settings.sticker_pack_max_sticker_bytes:
            raise MediaRejected(
                TOO_LARGE,
                f"the sticker has {len(data) / 1024:.0f} KB, over STICKER_PACK_MAX_STICKER_BYTES "
                f"({self.settings.sticker_pack_max_sticker_bytes // 1024} KB)",
            )
        sha256 = hashlib.sha256(data).hexdigest()
        with self.database.read() as connection:
            existing = repository.find_by_sha256(connection, sha256)
        if existing is not None:
            asset = StickerAsset.from_row(existing)
            if not self._file_present(asset):
                self._restore_file(asset, data)
            return IngestResult(asset, created=False)

        key = key_for_digest(sha256)
        self._put(key, data)
        row = {
            "id": str(uuid.uuid4()),
            "owner_jid": owner,
            "sha256": sha256,
            "source_sha256": source_sha256,
            "mimetype": STICKER_MIMETYPE,
            "is_animated": int(converted.is_animated),
            "width": converted.width,
            "height": converted.height,
            "size_bytes": len(data),
            "frame_count": converted.frame_count,
            "duration_ms": converted.duration_ms,
            "storage_path": key,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
        try:
            with self.database.transaction() as connection:
                repository.insert_asset(connection, row)
                asset_created(connection, row)
        except sqlalchemy.exc.IntegrityError:
            # Most likely a concurrent ingest of the same sticker won the unique sha256: use its row.
            with self.database.read() as connection:
                winner = repository.find_by_sha256(connection, sha256)
            if winner is not None:
                return IngestResult(StickerAsset.from_row(winner), created=False)
            self._discard_unreferenced(key)
            raise
        except BaseException:
            self._discard_unreferenced(key)
            raise
        return IngestResult(StickerAsset.from_row(row), created=True)

    # --- files ----------------------------------------------------------------------------------

    def _put(self, key: str, data: bytes) -> None:
        try:
            self.storage.put(key, data, STICKER_MIMETYPE)
        except StorageError as exc:
            raise StorageFailure(
                f"could not store the sticker file ({exc}); check the storage and retry"
            ) from exc

    def _file_present(self, asset: StickerAsset) -> bool:
        try:
            return self.storage.exists(asset.storage_path)
        except (StorageError, ValueError):  # ValueError: a legacy path that is not a valid key
            return False

    def _restore_file(self, asset: StickerAsset, data: bytes) -> None:
        """Write a deduplicated asset's missing file back (same bytes: the hash says so)."""
        if hashlib.sha256(data).hexdigest() != asset.sha256:
            return  # produced differently (e.g. older pipeline); the stored row cannot be repaired from it
        key = key_for_digest(asset.sha256)
        self._put(key, data)
        if key != asset.storage_path:
            with self.database.transaction() as connection:
                repository.set_storage_key(connection, asset.id, key)
        logger.warning("sticker asset %s had no file in storage; rewrote %s", asset.id, key)

    def _discard_unreferenced(self, key: str) -> None:
        """Delete a file this ingest wrote, unless a committed row points at it."""
        try:
            with self.database.read() as connection:
                if repository.count_rows_using_key(connection, key):
                    return
            self.storage.delete(key)
        except Exception:  # the original error matters more; leave a trace for the operator
            logger.exception("could not clean up sticker file %s after a failed ingest", key)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, asset_id: str) -> StickerAsset:
        with self.database.read() as connection:
            row = repository.find_by_id(connection, str(asset_id))
        if row is None:
            raise StickerNotFound(f"sticker {asset_id} does not exist; `omnizap sticker import` creates one")
        return StickerAsset.from_row(row)

    def get_many(self, ids: Iterable[str]) -> dict[str, StickerAsset]:
        """Assets by id; unknown ids are simply absent from the result."""
        with self.database.read() as connection:
            rows = repository.find_many(connection, ids)
        return {row["id"]: StickerAsset.from_row(row) for row in rows}

    def read_bytes(self, asset: StickerAsset) -> bytes:
        try:
            return self.storage.get(asset.storage_path)
        except ObjectNotFound as exc:
            raise StorageFailure(
                f"the file of sticker {asset.id} ({asset.storage_path}) is missing from storage; "
                "import its source again to restore it"
            ) from exc
        except (StorageError, ValueError) as exc:
            raise StorageFailure(f"could not read the file of sticker {asset.id}: {exc}") from exc

    def metadata_of(self, asset: StickerAsset) -> dict[str, Any]:
        """The sticker metadata (pack id, name, publisher, emojis) embedded in the stored file."""
        return read_sticker_metadata(self.read_bytes(asset))
