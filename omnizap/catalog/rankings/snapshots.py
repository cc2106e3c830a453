"""Snapshot rows: applying a plan, choosing which rows to (re)write, writing and deleting them.

A row is rewritten only when its values changed since this process wrote it, it is missing or was
written by another process since, it is older than the pack's last change, or it passed half the
freshness bound (`_snapshots_to_write`); `_apply` also keeps the facts memo for the next build.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from omnizap.catalog import repository as repo
from omnizap.catalog.derive import PackDerivation, snapshot_row
from omnizap.catalog.rankings.common import (
    _SNAPSHOT_UPDATE_COLUMNS,
    SNAPSHOT_UPSERT_CHUNK,
    _Plan,
    _snapshot_fingerprint,
    snapshot_table,
)
from omnizap.catalog.rankings.generations import GenerationStore
from omnizap.platform.db.engine import excluded


class RankingSnapshotsMixin(GenerationStore):
    """Writing a plan's snapshot rows (see the module docstring)."""

    def _apply(self, plan: _Plan, now: dt.datetime) -> None:
        """Write the plan's changed snapshot rows and drop those of packs no longer reachable."""
        rows = self._snapshots_to_write(plan.derived_rows, plan.derived, plan.existing, now, full=plan.full)
        self._write_snapshots(rows)
        self._delete_snapshots(plan.gone)
        for pack_id in plan.gone:
            self._written.pop(pack_id, None)
        facts = {
            pack_id: (derivation.stamp, derivation.facts)
            for pack_id, derivation in plan.derived.items()
            if derivation.facts.classified_items
        }
        if plan.full:
            self._quality = {
                pack_id: self._quality[pack_id] for pack_id in plan.derived if pack_id in self._quality
            }
            self._facts = facts
        else:
            for pack_id in plan.derived:
                self._facts.pop(pack_id, None)
            self._facts.update(facts)
        plan.written, plan.deleted = len(rows), len(plan.gone)

    def _snapshots_to_write(
        self,
        rows: Sequence[Mapping[str, Any]],
        derived: Mapping[str, PackDerivation],
        existing: Mapping[str, dt.datetime],
        now: dt.datetime,
        *,
        full: bool,
    ) -> list[dict[str, Any]]:
        """Snapshot rows to (re)write: those whose values changed since this process wrote them, whose
        row is missing or was written by another process since, is older than the pack's last
        change, or passed half the freshness bound. The others stay as they are."""
        rewrite_before = now - self.snapshot_max_age / 2
        written: dict[str, tuple[tuple[Any, ...], dt.datetime]] = {} if full else self._written
        changed = []
        for row in rows:
            pack_id = row["id"]
            derivation = derived[pack_id]
            fingerprint = _snapshot_fingerprint(derivation, int(row["sticker_count"]))
            previous = self._written.get(pack_id)
            if (
                previous is not None
                and existing.get(pack_id) == previous[1]
                and previous[0] == fingerprint
                and previous[1] >= derivation.changed_at
                and previous[1] >= rewrite_before
            ):
                written[pack_id] = previous
                continue
            changed.append(snapshot_row(derivation, int(row["sticker_count"]), now))
            written[pack_id] = (fingerprint, now)
        self._written = written
        return changed

    def _write_snapshots(self, rows: list[dict[str, Any]]) -> None:
        # One single-row upsert run as executemany: compiling a 1,000-row VALUES list costs far more
        # than sending the rows.
        template = {column.name: sa.bindparam(column.name, type_=column.type) for column in snapshot_table.c}
        statement = self.database.upsert(
            snapshot_table,
            template,
            conflict_columns=["pack_id"],
            update={name: excluded(name) for name in _SNAPSHOT_UPDATE_COLUMNS},
        )
        for start in range(0, len(rows), SNAPSHOT_UPSERT_CHUNK):
            with self.database.transaction() as connection:
                connection.execute(statement, rows[start : start + SNAPSHOT_UPSERT_CHUNK])

    def _delete_snapshots(self, pack_ids: list[str]) -> None:
        for chunk in repo.batches(pack_ids):
            if chunk:
                with self.database.transaction() as connection:
                    connection.execute(snapshot_table.delete().where(snapshot_table.c.pack_id.in_(chunk)))
