"""Copying sticker files from local disk to the object store, and checking the copies.

Local disk stays the source of truth: an upload never moves or deletes a local file, so a failed
upload loses nothing — the asset simply stays "not uploaded" and the next sync or backfill tries
again. `sticker_asset.object_storage_key` records the outcome per asset:

- NULL: not uploaded yet (the sync task and backfill pick it up);
- `s3://<bucket>/<object key>`: uploaded and verified (with `object_storage_synced_at`); only these
  are ever redirected to, and only when the bucket is the configured one;
- `unavailable:<reason>` (`local_missing`, `local_corrupt`, `bad_key`): the local file cannot be
  uploaded; the periodic sync skips these (so they cannot starve the queue), backfill and verify
  retry and report them.

An upload is verified twice: the local bytes must hash to the asset's stored sha256 before
anything is sent (a corrupt file is never copied), and after the upload HEAD must report the same
size and hash (our sha256 metadata, else a plain-MD5 ETag). Each asset is marked as soon as it is
done, so an interrupted backfill resumes where it stopped.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset
from omnizap.platform.db.types import utcnow
from omnizap.platform.storage import ObjectNotFound, S3Storage, Storage, StorageError, StoreUnavailable
from omnizap.platform.storage.s3 import URI_SCHEME, md5_hex

logger = logging.getLogger(__name__)

UNAVAILABLE_PREFIX = "unavailable:"
UPLOADED = "uploaded"
ALREADY_PRESENT = "already_present"
LOCAL_MISSING = "local_missing"
LOCAL_CORRUPT = "local_corrupt"
BAD_KEY = "bad_key"
FAILED = "failed"
SYNC_OUTCOMES = (UPLOADED, ALREADY_PRESENT, LOCAL_MISSING, LOCAL_CORRUPT, BAD_KEY, FAILED)
# Verify findings (besides the local ones above).
OK = "ok"
NOT_UPLOADED = "not_uploaded"
MISSING = "missing"
CORRUPT = "corrupt"
VERIFY_FINDINGS = (OK, NOT_UPLOADED, MISSING, CORRUPT, LOCAL_MISSING, LOCAL_CORRUPT, BAD_KEY)
PROBLEM_FINDINGS = frozenset({MISSING, CORRUPT, LOCAL_MISSING, LOCAL_CORRUPT, BAD_KEY})
MAX_LISTED_PROBLEMS = 1000

_COLUMNS = (
    sticker_asset.c.id,
    sticker_asset.c.sha256,
    sticker_asset.c.mimetype,
    sticker_asset.c.size_bytes,
    sticker_asset.c.storage_path,
    sticker_asset.c.object_storage_key,
)


@dataclass(frozen=True)
class AssetFile:
    """The columns of one asset that syncing needs."""

    id: str
    sha256: str
    mimetype: str
    size_bytes: int
    storage_path: str
    object_uri: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AssetFile:
        return cls(
            id=row["id"],
            sha256=row["sha256"],
            mimetype=row["mimetype"] or "image/webp",
            size_bytes=int(row["size_bytes"]),
            storage_path=row["storage_path"],
            object_uri=row["object_storage_key"],
        )


@dataclass
class Report:
    """Counts by outcome, plus the first problems with their asset id and a reason."""

    counts: dict[str, int]
    problems: list[dict[str, str]] = field(default_factory=list)
    unresolved: int = 0  # problems still there at the end (not repaired)

    @classmethod
    def empty(cls, names: Iterable[str]) -> Report:
        return cls(dict.fromkeys(names, 0))

    def add(self, outcome: str, asset: AssetFile, detail: str = "", *, repaired: bool = False) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if outcome in PROBLEM_FINDINGS or outcome == FAILED:
            self.unresolved += 0 if repaired else 1
            if len(self.problems) < MAX_LISTED_PROBLEMS:
                self.problems.append({"asset_id": asset.id, "problem": outcome, "detail": detail})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def has_problems(self) -> bool:
        return self.unresolved > 0

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, **self.counts, "unresolved": self.unresolved, "problems": self.problems}


class ObjectSync:
    def __init__(self, database: Database, local: Storage, store: S3Storage, *, workers: int = 1) -> None:
        self.database = database
        self.local = local
        self.store = store
        self.workers = max(1, min(32, workers))

    # --- selections ------------------------------------------------------------------------------
    def _uploaded_here(self) -> sa.ColumnElement[bool]:
        # Bucket names hold only [a-z0-9.-], so they need no LIKE escaping.
        return sticker_asset.c.object_storage_key.like(f"{URI_SCHEME}{self.store.config.bucket}/%")

    def _sweep_condition(self) -> sa.ColumnElement[bool]:
        """Assets the periodic sync uploads: never tried, or uploaded to another bucket."""
        key = sticker_asset.c.object_storage_key
        return sa.or_(key.is_(None), sa.and_(key.like(f"{URI_SCHEME}%"), sa.not_(self._uploaded_here())))

    def _backfill_condition(self) -> sa.ColumnElement[bool]:
        """Everything not uploaded to this bucket, including the ones marked unavailable before."""
        key = sticker_asset.c.object_storage_key
        return sa.or_(key.is_(None), sa.not_(self._uploaded_here()))

    def _batch(self, condition: sa.ColumnElement[bool] | None, after_id: str, limit: int) -> list[AssetFile]:
        query = sa.select(*_COLUMNS).where(sticker_asset.c.id > after_id)
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(sticker_asset.c.id).limit(limit)
        with self.database.read() as connection:
            return [AssetFile.from_row(row) for row in connection.execute(query).mappings()]

    def _walk(
        self, condition: sa.ColumnElement[bool] | None, batch_size: int, limit: int | None
    ) -> Iterator[list[AssetFile]]:
        """Batches in id order (keyset, so marking rows meanwhile neither skips nor repeats one)."""
        after, seen = "", 0
        while limit is None or seen < limit:
            size = batch_size if limit is None else min(batch_size, limit - seen)
            batch = self._batch(condition, after, size)
            if not batch:
                return
            seen += len(batch)
            after = batch[-1].id
            yield batch

    def status(self) -> dict[str, int]:
        """How many assets exist, are uploaded to this bucket, wait, or cannot be uploaded."""
        key = sticker_asset.c.object_storage_key
        with self.database.read() as connection:
            total, uploaded, unavailable = connection.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(sa.case((self._uploaded_here(), 1), else_=0)), 0),
                    sa.func.coalesce(
                        sa.func.sum(sa.case((key.like(f"{UNAVAILABLE_PREFIX}%"), 1), else_=0)), 0
                    ),
                ).select_from(sticker_asset)
            ).one()
        total, uploaded, unavailable = int(total), int(uploaded), int(unavailable)
        return {
            "assets": total,
            "uploaded": uploaded,
            "pending": total - uploaded - unavailable,
            "unavailable": unavailable,
        }

    # --- one asset -------------------------------------------------------------------------------
    def sync_one(self, asset: AssetFile, *, force: bool = False) -> tuple[str, str]:
        """Upload (or confirm) one asset and record the outcome; (outcome, detail). `force` uploads
        even when HEAD says the object matches (it may be corrupt where HEAD cannot see).
        Raises StoreUnavailable: when the store is down, the rest of the batch would fail too."""
        try:
            data = self.local.get(asset.storage_path)
        except ValueError:
            return self._unavailable(asset, BAD_KEY, "storage_path is not a storage key")
        except ObjectNotFound:
            return self._unavailable(asset, LOCAL_MISSING, "no local file; import its source again")
        except StorageError as exc:
            return FAILED, f"local read failed: {exc}"
        if hashlib.sha256(data).hexdigest() != asset.sha256:
            return self._unavailable(asset, LOCAL_CORRUPT, "local file does not match its sha256")
        md5 = md5_hex(data)
        try:
            found = self.store.head(asset.storage_path)
            outcome = ALREADY_PRESENT
            if force or found is None or not found.matches(len(data), asset.sha256, md5):
                self.store.put(asset.storage_path, data, asset.mimetype, sha256=asset.sha256)
                outcome = UPLOADED
                found = self.store.head(asset.storage_path)
                if found is None or not found.matches(len(data), asset.sha256, md5):
                    return FAILED, "the stored object does not match the file after upload"
        except StoreUnavailable:
            raise
        except StorageError as exc:
            return FAILED, str(exc)
        self._mark(asset, self.store.uri(asset.storage_path))
        return outcome, ""

    def _unavailable(self, asset: AssetFile, reason: str, detail: str) -> tuple[str, str]:
        logger.error("sticker asset %s cannot be uploaded to object storage: %s", asset.id, detail)
        self._mark(asset, UNAVAILABLE_PREFIX + reason, synced=False)
        return reason, detail

    def _mark(self, asset: AssetFile, value: str | None, *, synced: bool = True) -> None:
        with self.database.transaction() as connection:
            connection.execute(
                sticker_asset.update()
                .where(sticker_asset.c.id == asset.id, sticker_asset.c.sha256 == asset.sha256)
                .values(object_storage_key=value, object_storage_synced_at=utcnow() if synced else None)
            )

    # --- many ------------------------------------------------------------------------------------
    def _run(
        self,
        batches: Iterable[Sequence[AssetFile]],
        *,
        on_item: Callable[[AssetFile, str], None] | None,
        should_continue: Callable[[], bool] | None,
    ) -> Report:
        report = Report.empty(SYNC_OUTCOMES)
        # The lease is checked between slices of a few files, not per file (a heartbeat may write).
        slice_size = max(10, self.workers * 4)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.workers) as pool:
            for batch in batches:
                for start in range(0, len(batch), slice_size):
                    if should_continue is not None and not should_continue():
                        return report
                    self._run_slice(pool, batch[start : start + slice_size], report, on_item)
        return report

    def _run_slice(
        self,
        pool: concurrent.futures.ThreadPoolExecutor,
        assets: Sequence[AssetFile],
        report: Report,
        on_item: Callable[[AssetFile, str], None] | None,
    ) -> None:
        futures = {pool.submit(self.sync_one, asset): asset for asset in assets}
        try:
            for future in concurrent.futures.as_completed(futures):
                asset = futures[future]
                outcome, detail = future.result()
                report.add(outcome, asset, detail)
                if on_item is not None:
                    on_item(asset, outcome)
        except BaseException:
            # Interrupted or the store went down: let started uploads finish and be marked (so a
            # rerun does not redo them), start no more.
            for pending in futures:
                pending.cancel()
            raise

    def sync_pending(self, limit: int, *, should_continue: Callable[[], bool] | None = None) -> Report:
        """One periodic batch: the oldest assets never uploaded (at most `limit`)."""
        batches = self._walk(self._sweep_condition(), batch_size=limit, limit=limit)
        return self._run(batches, on_item=None, should_continue=should_continue)

    def sync_assets(
        self, asset_ids: Sequence[str], *, should_continue: Callable[[], bool] | None = None
    ) -> Report:
        """These assets (e.g. just created), whatever their state: done ones are only confirmed."""
        query = (
            sa.select(*_COLUMNS).where(sticker_asset.c.id.in_(list(asset_ids))).order_by(sticker_asset.c.id)
        )
        with self.database.read() as connection:
            assets = [AssetFile.from_row(row) for row in connection.execute(query).mappings()]
        return self._run([assets], on_item=None, should_continue=should_continue)

    def pending_for_backfill(self) -> int:
        with self.database.read() as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(sticker_asset).where(self._backfill_condition())
                ).scalar_one()
            )

    def backfill(
        self,
        *,
        batch_size: int = 200,
        limit: int | None = None,
        on_item: Callable[[AssetFile, str], None] | None = None,
        should_continue: Callable[[], bool] | None = None,
    ) -> Report:
        """Every asset not uploaded to this bucket yet (or `limit` of them), oldest id first."""
        batches = self._walk(self._backfill_condition(), batch_size=batch_size, limit=limit)
        return self._run(batches, on_item=on_item, should_continue=should_continue)

    # --- verify ----------------------------------------------------------------------------------
    def verify(
        self,
        *,
        deep: bool = False,
        repair: bool = False,
        limit: int | None = None,
        on_item: Callable[[AssetFile, str], None] | None = None,
    ) -> Report:
        """Check every asset: the local file must hash to its sha256; the object must be present and
        match by HEAD (size and sha256 metadata or MD5 ETag); `deep` also downloads and hashes it.
        `repair` stops redirecting to a missing or corrupt object at once and uploads the local
        file again (or marks the asset unavailable when the local file is bad too)."""
        report = Report.empty(VERIFY_FINDINGS)
        if repair:
            report.counts["repaired"] = 0
        for batch in self._walk(None, batch_size=200, limit=limit):
            for asset in batch:
                finding, detail = self._verify_one(asset, deep=deep)
                repaired = False
                if repair and finding in (MISSING, CORRUPT):
                    self._mark(asset, None, synced=False)  # stop redirecting to the bad object now
                    outcome, upload_detail = self.sync_one(asset, force=True)
                    if outcome in (UPLOADED, ALREADY_PRESENT):
                        repaired = True
                        report.counts["repaired"] += 1
                        detail = f"{detail}; repaired (uploaded again)"
                    else:
                        detail = f"{detail}; not repaired: {outcome} {upload_detail}".rstrip()
                elif repair and finding in (LOCAL_MISSING, LOCAL_CORRUPT) and self._restore_local(asset):
                    repaired = True
                    report.counts["repaired"] += 1
                    detail = f"{detail}; repaired (local file restored from the object store)"
                report.add(finding, asset, detail, repaired=repaired)
                if on_item is not None:
                    on_item(asset, finding)
        return report

    def _restore_local(self, asset: AssetFile) -> bool:
        """Write the local file back from a verified object (disk lost, bucket intact)."""
        object_key = self.store.object_key_of_uri(asset.object_uri)
        if object_key is None:
            return False
        try:
            remote = self.store.get_object(object_key)
        except ObjectNotFound:
            return False
        if hashlib.sha256(remote).hexdigest() != asset.sha256:
            return False
        self.local.put(asset.storage_path, remote, asset.mimetype)
        logger.warning("sticker asset %s: local file restored from %s", asset.id, asset.object_uri)
        return True

    def _verify_one(self, asset: AssetFile, *, deep: bool) -> tuple[str, str]:
        try:
            data = self.local.get(asset.storage_path)
        except ValueError:
            return BAD_KEY, "storage_path is not a storage key"
        except ObjectNotFound:
            return LOCAL_MISSING, "no local file"
        if hashlib.sha256(data).hexdigest() != asset.sha256:
            return LOCAL_CORRUPT, "local file does not match its sha256"
        object_key = self.store.object_key_of_uri(asset.object_uri)
        if object_key is None:
            if asset.object_uri and asset.object_uri.startswith(UNAVAILABLE_PREFIX):
                reason = asset.object_uri[len(UNAVAILABLE_PREFIX) :]
                return NOT_UPLOADED, f"upload refused earlier: {reason}"
            return NOT_UPLOADED, ""
        found = self.store.head_object(object_key)
        if found is None:
            return MISSING, f"object {object_key} is not in the bucket"
        if not found.matches(len(data), asset.sha256, md5_hex(data)):
            return CORRUPT, f"object {object_key} has another size or hash"
        if deep:
            try:
                remote = self.store.get_object(object_key)
            except ObjectNotFound:
                return MISSING, f"object {object_key} is not in the bucket"
            if hashlib.sha256(remote).hexdigest() != asset.sha256:
                return CORRUPT, f"object {object_key} does not hash to the asset's sha256"
        return OK, ""

    def orphans(self) -> list[str]:
        """Object keys under the prefix that no asset records (left by deleted assets or another
        installation). Reported only: deleting objects is the operator's decision."""
        known: set[str] = set()
        for batch in self._walk(self._uploaded_here(), batch_size=1000, limit=None):
            for asset in batch:
                object_key = self.store.object_key_of_uri(asset.object_uri)
                if object_key is not None:
                    known.add(object_key)
        return [key for key in self.store.list_object_keys() if key not in known]
