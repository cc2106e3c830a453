"""One classification cycle (task `classification_cycle`): pending assets, then the reprocess queue.

1. **Pending assets** (no classification row), oldest first, in batches, at most
   STICKER_CLASSIFICATION_MAX_PER_CYCLE. One worker at a time scans them (lease
   `classification_pending`, renewed in the background, STICKER_WORKER_TASK_LOCK_TIMEOUT_SECONDS
   long, so a crashed scanner blocks the next one for at most that); the others go straight to
   step 2 and end with status `deferred`: the task is put back until the lease ends (not counted
   as an attempt) instead of completing with the pending assets unscanned. Paging is by keyset, so
   assets that fail (missing file, transient classifier error) do not hide the ones behind them.
2. **Reprocess queue**: the producers enqueue what needs another look (`reprocess.py`), then rows
   are claimed under the platform's lease/backoff/dead-letter protocol and reclassified. A row's
   result and its completion commit in one transaction; a failed attempt is retried with backoff
   and dead-lettered after its last attempt.

A classifier that is not installed skips the cycle (status `skipped`, assets stay pending). One
that stops answering mid-cycle fails it (status `failed`): the claimed rows are failed back to the
queue, nothing is written for the assets, and the task is retried with backoff.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.intelligence.classification import repository, reprocess
from omnizap.intelligence.classification.errors import ClassifierUnavailable
from omnizap.intelligence.classification.metrics import ClassificationMetrics, classification_metrics
from omnizap.intelligence.classification.providers import Classifier, classification_version, classifier_for
from omnizap.intelligence.classification.service import ClassificationService, Classified, Tally
from omnizap.platform import leases
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset_classification
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.protocol import ClaimedItem, Queue, RetryPolicy
from omnizap.platform.queue.specs import REPROCESS_QUEUE
from omnizap.platform.storage.base import Storage

logger = logging.getLogger(__name__)

PENDING_LEASE = "classification_pending"
REPROCESS_LEASE_SECONDS = 300.0


@dataclass
class CycleReport:
    status: str = "completed"
    reason: str | None = None
    version: str | None = None
    pending: Tally = field(default_factory=Tally)
    reprocess: Tally = field(default_factory=Tally)
    enqueued: dict[str, int] = field(default_factory=dict)
    reprocess_rows: dict[str, int] = field(default_factory=dict)  # completed / retry / dead / lost
    duration_ms: float = 0.0
    # Set when another worker held the pending lease: the pending scan did not run (status deferred).
    lease_busy: leases.LeaseBusy | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "classification_version": self.version,
            "pending": self.pending.as_dict(),
            "reprocess": self.reprocess.as_dict(),
            "reprocess_rows": dict(self.reprocess_rows),
            "enqueued": dict(self.enqueued),
            "errors": [*self.pending.errors, *self.reprocess.errors][:5],
            "duration_ms": round(self.duration_ms, 1),
        }


class _NotInstalled(Exception):
    """The classifier could not load (models missing, unusable URL): the cycle is skipped."""


class _LeaseLost(Exception):
    """Raised inside a transaction to undo a write whose queue row another worker now holds."""


class ClassificationCycle:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        storage: Storage,
        classifier: Classifier | None = None,
        worker: str = "",
        heartbeat: Callable[[], bool] = lambda: True,
        metrics: ClassificationMetrics | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.storage = storage
        self._classifier = classifier
        self.worker = f"{worker or 'classification'}:{uuid.uuid4().hex[:8]}"
        self.heartbeat = heartbeat
        self.metrics = metrics or classification_metrics()
        self.progress = progress or (lambda _count: None)
        self._service: ClassificationService | None = None
        self.queue = Queue(
            database,
            REPROCESS_QUEUE,
            retry=RetryPolicy.from_settings(settings),
            lease_seconds=REPROCESS_LEASE_SECONDS,
        )

    def _skip_reason(self) -> str | None:
        if not self.settings.sticker_classification_background_enabled:
            return "STICKER_CLASSIFICATION_BACKGROUND_ENABLED is false"
        if not self.settings.clip_classifier_enabled:
            return "CLIP_CLASSIFIER_ENABLED is false"
        return None

    def _service_now(self) -> ClassificationService:
        """The service, loading the classifier on first need: a cycle with nothing to do never loads
        the models (the inline poller of `omnizap serve` runs this cycle too)."""
        if self._service is None:
            try:
                classifier = self._classifier or classifier_for(self.settings)
                classifier.load()
            except ClassifierUnavailable as exc:
                raise _NotInstalled(f"classifier unavailable: {exc}") from exc
            self._service = ClassificationService(self.database, self.storage, classifier)
        return self._service

    def run(self, *, pending_limit: int | None = None, reprocess_enabled: bool | None = None) -> CycleReport:
        """Run the cycle. Raises ClassifierUnavailable when the classifier failed mid-cycle (after
        recording the metrics), so the task is retried with backoff."""
        started = time.perf_counter()
        report = CycleReport()
        try:
            report.reason = self._skip_reason()
            if report.reason is not None:
                report.status = "skipped"
                logger.info("classification cycle skipped: %s", report.reason)
                return report
            report.version = (
                self._classifier.version if self._classifier else classification_version(self.settings)
            )
            limit = (
                self.settings.sticker_classification_max_per_cycle if pending_limit is None else pending_limit
            )
            use_queue = (
                self.settings.sticker_reprocess_queue_enabled
                if reprocess_enabled is None
                else reprocess_enabled
            )
            try:
                self._pending(report, limit)
                if use_queue and self.heartbeat():
                    self._reprocess(report, report.version)
                if report.lease_busy is not None:
                    report.status, report.reason = "deferred", str(report.lease_busy)
            except _NotInstalled as exc:
                report.status, report.reason = "skipped", str(exc)
                logger.warning("classification cycle skipped: %s", report.reason)
                return report
        except ClassifierUnavailable as exc:
            report.status, report.reason = "failed", str(exc)
            raise
        except Exception as exc:
            report.status, report.reason = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            report.duration_ms = (time.perf_counter() - started) * 1000
            self.metrics.cycle(report.status, report.duration_ms)
            self.metrics.outcomes(report.pending.as_dict())
            self.metrics.outcomes(report.reprocess.as_dict())
        return report

    # --- pending ---------------------------------------------------------------------------------
    def _pending(self, report: CycleReport, limit: int) -> None:
        if limit <= 0:
            return
        lease = leases.KeptLease(
            self.database, PENDING_LEASE, self.worker, leases.task_lease_seconds(self.settings)
        )
        if not lease.take():
            report.lease_busy = leases.busy(self.database, PENDING_LEASE)
            logger.info(
                "pending assets: %s; this cycle does the reprocess queue, then is deferred", report.lease_busy
            )
            return
        with lease:
            batch = self.settings.classification_batch_size
            cursor = None
            done = 0
            while done < limit:
                with self.database.read() as connection:
                    assets = repository.pending_assets(
                        connection, limit=min(batch, limit - done), after=cursor
                    )
                if not assets:
                    break
                cursor = (assets[-1]["created_at"], assets[-1]["id"])
                service = self._service_now()
                try:
                    report.pending.merge(service.classify_and_store(assets))
                except ClassifierUnavailable:
                    report.pending.add("processed", len(assets))
                    report.pending.add("failed", len(assets))
                    raise
                done += len(assets)
                self.progress(len(assets))
                if not lease.held() or not self.heartbeat():
                    logger.warning("classification lease lost; stopping the pending scan")
                    break

    # --- reprocess -------------------------------------------------------------------------------
    def _reprocess(self, report: CycleReport, version: str) -> None:
        report.enqueued = reprocess.run_producers(
            self.database, self.queue, self.settings, version=version, now=utcnow()
        )
        budget = self.settings.reprocess_max_per_cycle
        batch = self.settings.classification_batch_size
        handled = 0
        while handled < budget:
            items = self.queue.claim(
                self.worker, kinds=list(reprocess.REASONS), limit=min(batch, budget - handled)
            )
            if not items:
                break
            handled += len(items)
            try:
                service = self._service_now()
            except _NotInstalled:
                self.queue.release(items)  # not this worker's fault: give the rows back unrun
                raise
            self._handle(service, report, items, version)
            if not self.heartbeat():
                break

    def _count_row(self, report: CycleReport, outcome: str) -> None:
        report.reprocess_rows[outcome] = report.reprocess_rows.get(outcome, 0) + 1

    def _handle(
        self, service: ClassificationService, report: CycleReport, items: Sequence[ClaimedItem], version: str
    ) -> None:
        ids = [str(item.row["asset_id"]) for item in items]
        with self.database.read() as connection:
            assets = repository.assets_by_id(connection, ids)
            versions = dict(
                connection.execute(
                    sa.select(
                        sticker_asset_classification.c.asset_id,
                        sticker_asset_classification.c.classification_version,
                    ).where(sticker_asset_classification.c.asset_id.in_(ids))
                ).all()
            )
        work: dict[bool, list[tuple[ClaimedItem, Mapping[str, Any]]]] = {False: [], True: []}
        for item in items:
            asset = assets.get(str(item.row["asset_id"]))
            upgraded = item.kind == reprocess.MODEL_UPGRADE and versions.get(item.row["asset_id"]) == version
            if asset is None or upgraded:  # deleted, or already classified by this version
                self.queue.complete(item)
                self._count_row(report, "completed")
                continue
            work[item.kind in reprocess.THOROUGH_REASONS].append((item, asset))
        for thorough, pairs in work.items():
            if pairs:
                self._classify_claimed(service, report, pairs, thorough=thorough)

    def _classify_claimed(
        self,
        service: ClassificationService,
        report: CycleReport,
        pairs: list[tuple[ClaimedItem, Mapping[str, Any]]],
        *,
        thorough: bool,
    ) -> None:
        report.reprocess.add("processed", len(pairs))
        try:
            results = service.run([asset for _, asset in pairs], thorough=thorough)
        except ClassifierUnavailable as exc:
            for item, _ in pairs:
                self._count_row(report, self.queue.fail(item, exc))
            report.reprocess.add("failed", len(pairs))
            raise
        by_asset: dict[str, Classified] = {str(result.asset["id"]): result for result in results}
        for item, asset in pairs:
            classified = by_asset[str(asset["id"])]
            if classified.row(service.classifier) is None:
                service.write_failure(report.reprocess, classified)
                self._count_row(report, self.queue.fail(item, classified.outcome))
                continue
            try:
                with self.database.transaction() as connection:
                    service.write(connection, classified, report.reprocess)
                    if not self.queue.complete(item, connection=connection):
                        raise _LeaseLost
            except _LeaseLost:
                self._count_row(report, "lost")
                continue
            self._count_row(report, "completed")
