"""Classifying assets: read their files, ask the provider, write rows (with their event) or leave
the assets alone, and count what happened.

Only two things are ever written for an asset: a provider's result, or the fallback row for a file
the provider cannot read. A failed attempt (outage, timeout, junk answer, missing file) writes
nothing, so the asset stays pending (or keeps its old row) and a later cycle tries again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from omnizap.intelligence.classification import repository
from omnizap.intelligence.classification.errors import (
    ClassifierFailure,
    ClassifierUnavailable,
    FileMissing,
    InvalidImage,
)
from omnizap.intelligence.classification.providers import Classifier, ClassifyRequest, Outcome
from omnizap.intelligence.classification.results import ClassificationResult, fallback_result
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow
from omnizap.platform.storage.base import ObjectNotFound, Storage, StorageError

logger = logging.getLogger(__name__)

OUTCOMES = ("processed", "classified", "fallback", "failed")


@dataclass
class Tally:
    """Assets by outcome: processed = attempted; classified / fallback = row written; failed = not."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def add(self, outcome: str, count: int = 1) -> None:
        self.counts[outcome] += count

    def merge(self, other: Tally) -> None:
        self.counts.update(other.counts)
        self.errors.extend(other.errors[: max(0, 5 - len(self.errors))])

    def as_dict(self) -> dict[str, int]:
        return {name: int(self.counts.get(name, 0)) for name in OUTCOMES}


@dataclass(frozen=True)
class Classified:
    """One asset's outcome, ready to be written."""

    asset: Mapping[str, Any]
    outcome: Outcome

    def row(self, classifier: Classifier) -> ClassificationResult | None:
        """The row to write: the result, the fallback row, or None (leave the asset alone)."""
        if isinstance(self.outcome, ClassificationResult):
            return self.outcome
        if isinstance(self.outcome, InvalidImage):
            return fallback_result(
                provider=classifier.provider,
                model_name=classifier.model_name,
                classification_version=classifier.version,
                image_hash=self.asset.get("sha256"),
                code=self.outcome.code,
                detail=str(self.outcome),
            )
        return None


class ClassificationService:
    def __init__(self, database: Database, storage: Storage, classifier: Classifier) -> None:
        self.database = database
        self.storage = storage
        self.classifier = classifier

    def run(self, assets: Sequence[Mapping[str, Any]], *, thorough: bool = False) -> list[Classified]:
        """Outcomes for these assets (nothing written yet). Raises ClassifierUnavailable when every
        asset whose file could be read failed: the classifier is down, not the files bad."""
        readable: list[Mapping[str, Any]] = []
        requests: list[ClassifyRequest] = []
        results: list[Classified] = []
        for asset in assets:
            try:
                data = self.storage.get(str(asset["storage_path"]))
            except (ObjectNotFound, StorageError, ValueError) as exc:
                results.append(
                    Classified(asset, FileMissing(f"file of asset {asset['id']} unreadable: {exc}"))
                )
                continue
            readable.append(asset)
            requests.append(
                ClassifyRequest(
                    asset_id=str(asset["id"]),
                    data=data,
                    sha256=asset.get("sha256"),
                    mimetype=str(asset.get("mimetype") or "image/webp"),
                )
            )
        if requests:
            outcomes = self.classifier.classify(requests, thorough=thorough)
            failures = [o for o in outcomes if isinstance(o, ClassifierFailure)]
            if failures and len(failures) == len(outcomes):
                raise ClassifierUnavailable(f"every asset of the batch failed: {failures[0]}")
            results.extend(
                Classified(asset, outcome) for asset, outcome in zip(readable, outcomes, strict=True)
            )
        return results

    def write_failure(self, tally: Tally, item: Classified) -> None:
        tally.add("failed")
        if len(tally.errors) < 5:
            tally.errors.append(str(item.outcome))

    def write(self, connection: Connection, item: Classified, tally: Tally) -> bool:
        """Write one outcome in the caller's transaction; True when a row was written."""
        row = item.row(self.classifier)
        if row is None:
            self.write_failure(tally, item)
            return False
        if not repository.save_result(connection, str(item.asset["id"]), row, utcnow()):
            tally.add("failed")  # the asset was deleted while it was being classified
            return False
        tally.add("fallback" if row.is_fallback else "classified")
        return True

    def classify_and_store(
        self,
        assets: Sequence[Mapping[str, Any]],
        *,
        thorough: bool = False,
        on_written: Callable[[Classified], None] | None = None,
    ) -> Tally:
        """Classify and write each outcome in its own transaction (one bad row never undoes the rest)."""
        tally = Tally()
        tally.add("processed", len(assets))
        for item in self.run(assets, thorough=thorough):
            with self.database.transaction() as connection:
                written = self.write(connection, item, tally)
            if written and on_written is not None:
                on_written(item)
        return tally
