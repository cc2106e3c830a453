"""WhatsApp pack downloads: the exporter's zip for a reachable pack, built once per pack version.

The ETag is known before anything is built (pack id, version and a fingerprint of the export
settings), so a revalidation answers 304 without touching sticker files. Built zips are kept in a
per-process memory cache bounded by STICKER_WHATSAPP_DOWNLOAD_CACHE_MAX_BYTES (least recently used
go first); concurrent first downloads of one pack in a process build it once.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import threading
import unicodedata
import zlib
from dataclasses import dataclass

from omnizap.catalog.visibility import is_reachable
from omnizap.config import Settings
from omnizap.core.errors import ExportRefused, PackNotFound
from omnizap.core.packs import repository as pack_repo
from omnizap.core.packs.export import WhatsAppExport, WhatsAppExporter
from omnizap.core.packs.models import Pack
from omnizap.core.packs.rules import public_pack_key
from omnizap.platform.db import Database
from omnizap.platform.storage import Storage

ZIP_CONTENT_TYPE = "application/zip"
DEFAULT_FILENAME = "pack.wastickers.zip"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BUILD_LOCKS = tuple(threading.Lock() for _ in range(16))


def safe_filename(name: str | None) -> str:
    """Only ASCII letters, digits and `._-` (safe in a quoted Content-Disposition), ending in .zip."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    cleaned = _FILENAME_UNSAFE.sub("-", ascii_name).strip("-.")[:120].rstrip("-.")
    if not cleaned:
        return DEFAULT_FILENAME
    return cleaned if cleaned.lower().endswith(".zip") else cleaned + ".zip"


def export_settings_fingerprint(settings: Settings) -> str:
    """What, besides the pack version, changes the zip's bytes: the export settings."""
    relevant = {
        name: str(getattr(settings, name))
        for name in sorted(type(settings).model_fields)
        if name.startswith("sticker_export_") or name == "sticker_default_publisher"
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class PackDownload:
    pack: Pack
    etag: str


class _ZipCache:
    """(pack id, version) → built export, least recently used dropped beyond `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._entries: collections.OrderedDict[tuple[str, int], WhatsAppExport] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> WhatsAppExport | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[str, int], export: WhatsAppExport) -> None:
        if export.size > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.used -= previous.size
            # Older versions of this pack will never be asked for again.
            for stale in [entry for entry in self._entries if entry[0] == key[0]]:
                self.used -= self._entries.pop(stale).size
            self._entries[key] = export
            self.used += export.size
            while self.used > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self.used -= dropped.size


class WhatsAppDownloads:
    def __init__(self, database: Database, storage: Storage, settings: Settings) -> None:
        self.database = database
        self.exporter = WhatsAppExporter(database, storage, settings)
        self.fingerprint = export_settings_fingerprint(settings)
        self.cache = _ZipCache(settings.sticker_whatsapp_download_cache_max_bytes)
        self.builds = 0  # how many zips this process built (observable by tests and operators)

    def etag(self, pack_id: str, version: int) -> str:
        return f'"wa-{pack_id}-v{version}-{self.fingerprint}"'

    def prepare(self, pack_key: str) -> PackDownload:
        """The reachable pack and the ETag of its current zip (nothing is built yet)."""
        key = public_pack_key(pack_key)
        with self.database.read() as connection:
            found = pack_repo.pack_by_key(connection, key, include_deleted=False)
        if found is None or not is_reachable(found[0]):
            raise PackNotFound("Pack not found; it may be private, unpublished or deleted.")
        pack = Pack.from_row(*found)
        return PackDownload(pack, self.etag(pack.id, pack.version))

    def _export(self, pack: Pack) -> WhatsAppExport:
        try:
            return self.exporter.export(pack)
        except ExportRefused as refusal:
            raise public_refusal(refusal) from refusal

    def build(self, download: PackDownload) -> tuple[WhatsAppExport, str]:
        """The zip and its ETag. Raises ExportRefused (422 EXPORT_INVALID) naming the broken rule."""
        pack = download.pack
        cache_key = (pack.id, pack.version)
        cached = self.cache.get(cache_key)
        if cached is None:
            with _BUILD_LOCKS[zlib.crc32(pack.id.encode()) % len(_BUILD_LOCKS)]:
                cached = self.cache.get(cache_key)
                if cached is None:
                    cached = self._export(pack)
                    self.builds += 1
                    self.cache.put((pack.id, cached.version), cached)
        # The exporter reads the pack again; if it changed meanwhile, the zip is of the newer version.
        return cached, self.etag(pack.id, cached.version)


def public_refusal(refusal: ExportRefused) -> ExportRefused:
    """The refusal as a visitor should read it: the WhatsApp rule, not the operator's command line.

    The exporter gives every problem a public wording (no command, setting or storage detail); only
    that wording and the rule's name and position reach the anonymous downloader."""
    what = refusal.public_message.rstrip(". ")
    public = f"This pack cannot be added to WhatsApp: {what}."
    return ExportRefused(public, details=refusal.public_details, public_message=public)
