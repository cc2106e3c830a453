"""Plan computation: what a refresh would write and publish, before anything is written.

- `_compute_full`: every reachable pack's signals from the database.
- `_compute_targeted`: the named packs plus the listed packs whose snapshot cannot stand in for
  them; the other listed packs enter the orders with their snapshot values (None when that is most
  of the catalog: the caller runs a full computation instead).
- `_compute_named`: only the named packs, no orders (a refresh that will defer anyway).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from omnizap.catalog import repository as repo
from omnizap.catalog.classification import ClassificationFacts
from omnizap.catalog.derive import (
    SNAPSHOT_SOURCE_VERSION,
    PackDerivation,
    derive,
    facts_from_scores,
)
from omnizap.catalog.index import microseconds
from omnizap.catalog.rankings.common import FULL_SHARE, OrderValues, _Plan, _values
from omnizap.catalog.rankings.generations import GenerationStore
from omnizap.catalog.visibility import LISTED_VISIBILITY


class RankingPlansMixin(GenerationStore):
    """Computing a refresh's `_Plan` (see the module docstring)."""

    def _known_facts(
        self, connection: Connection, pack_ids: list[str]
    ) -> dict[str, tuple[str, ClassificationFacts]]:
        """Facts computed before: this process's last build, else the snapshot rows."""
        known = {pack_id: self._facts[pack_id] for pack_id in pack_ids if pack_id in self._facts}
        missing = [pack_id for pack_id in pack_ids if pack_id not in known]
        if missing:
            for pack_id, row in repo.snapshot_rows(connection, missing, with_scores=True).items():
                scores = row.get("scores_json")
                facts = facts_from_scores(scores)
                if facts is not None and isinstance(scores, Mapping):
                    known[pack_id] = (str(scores.get("classification_stamp")), facts)
        return known

    def _derive(
        self, connection: Connection, rows: Sequence[Mapping[str, Any]], now: dt.datetime, *, everything: bool
    ) -> dict[str, PackDerivation]:
        return derive(
            connection,
            rows,
            self.derive_settings,
            now,
            everything=everything,
            previous=lambda ids: self._known_facts(connection, ids),
            quality_memo=self._quality,
        )

    def _compute_full(self, now: dt.datetime) -> _Plan:
        """Every reachable pack's signals from the database."""
        only_classified = self.settings.sticker_catalog_only_classified
        with self.database.read() as connection:
            rows = repo.catalog_pack_rows(connection, None, listed_only=False, only_classified=False)
            derived = self._derive(connection, rows, now, everything=True)
            classified = repo.classified_pack_ids(connection, None) if only_classified else set()
            existing = repo.snapshot_times(connection, None)
        listed = [
            row
            for row in rows
            if row["visibility"] == LISTED_VISIBILITY and (not only_classified or row["id"] in classified)
        ]
        return _Plan(
            full=True,
            named=0,
            derived_rows=rows,
            derived=derived,
            existing=existing,
            gone=sorted(existing.keys() - derived.keys()),
            listed=[(row["id"], microseconds(row["updated_at"])) for row in listed],
            values={pack_id: _values(derivation) for pack_id, derivation in derived.items()},
        )

    def _compute_targeted(
        self, pack_ids: Sequence[str], now: dt.datetime, snapshot_read: Callable[[str], bool]
    ) -> _Plan | None:
        """The named packs' signals, plus every listed pack whose snapshot cannot be used for the
        order (missing, stale, or not to be read); the other listed packs keep their snapshot
        values. None when that is most of the catalog: a full computation is cheaper then."""
        named = list(dict.fromkeys(str(pack_id) for pack_id in pack_ids))
        with self.database.read() as connection:
            listed = repo.order_rows(
                connection,
                only_classified=self.settings.sticker_catalog_only_classified,
                stale_before=now - self.snapshot_max_age,
                source_version=SNAPSHOT_SOURCE_VERSION,
            )
            named_rows = repo.catalog_pack_rows(connection, named, listed_only=False, only_classified=False)
            named_set = {row["id"] for row in named_rows}
            stale = [
                row[0] for row in listed if row[0] not in named_set and (row[6] or not snapshot_read(row[0]))
            ]
            if len(named_rows) + len(stale) > FULL_SHARE * max(1, len(listed)):
                return None
            stale_rows = (
                repo.catalog_pack_rows(connection, stale, listed_only=False, only_classified=False)
                if stale
                else []
            )
            rows = [*named_rows, *stale_rows]
            derived = self._derive(connection, rows, now, everything=False)
            existing = repo.snapshot_times(connection, [*named, *stale])
        values: dict[str, OrderValues] = {}
        for pack_id, _updated, ranking, trend, likes, opens, _stale in listed:
            derivation = derived.get(pack_id)
            if derivation is not None:
                values[pack_id] = _values(derivation)
            elif ranking is not None and trend is not None:  # fresh (else it would be derived)
                values[pack_id] = (float(ranking), float(trend), int(likes), int(opens))
        return _Plan(
            full=False,
            named=len(named),
            derived_rows=rows,
            derived=derived,
            existing=existing,
            gone=sorted(pack_id for pack_id in named if pack_id not in named_set and pack_id in existing),
            listed=[(row[0], microseconds(row[1])) for row in listed if row[0] in values],
            values=values,
        )

    def _compute_named(self, pack_ids: Sequence[str], now: dt.datetime) -> _Plan:
        """Only the named packs' signals, no orders: a refresh that will defer its generation anyway
        (the follow-up computes the orders), so a burst of likes costs a few ms per refresh."""
        named = list(dict.fromkeys(str(pack_id) for pack_id in pack_ids))
        with self.database.read() as connection:
            rows = repo.catalog_pack_rows(connection, named, listed_only=False, only_classified=False)
            derived = self._derive(connection, rows, now, everything=False)
            existing = repo.snapshot_times(connection, named)
        return _Plan(
            full=False,
            named=len(named),
            derived_rows=rows,
            derived=derived,
            existing=existing,
            gone=sorted(pack_id for pack_id in named if pack_id not in derived and pack_id in existing),
            listed=[],
            values={},
        )
