"""Schema and migrations on every engine, and the seed runbook's SQL run verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from omnizap.platform.db import Database
from omnizap.platform.db.migrate import current_revision, head_revision, is_current, upgrade
from omnizap.platform.db.schema import metadata

SEED_RUNBOOK = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_556f5d7dc2153c4b.txt"
RUNBOOK_COPY = Path(__file__).with_name("data") / "runbook_seed.sql.md"


def runbook_statements() -> list[str]:
    """Every ```sql block of the seed runbook (the shared copy, else the one kept beside the tests)."""
    source = SEED_RUNBOOK if SEED_RUNBOOK.exists() else RUNBOOK_COPY
    blocks = re.findall(r"```sql\n(.*?)```", source.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 3, "the runbook has three SQL blocks: status, rollout, emergency disable"
    return [block.strip().rstrip(";") for block in blocks]


def test_runbook_copy_matches_seed():
    if not SEED_RUNBOOK.exists():
        pytest.skip("shared/seeds is not beside this checkout")
    assert RUNBOOK_COPY.read_text(encoding="utf-8") == SEED_RUNBOOK.read_text(encoding="utf-8")


def test_migrate_is_idempotent_and_current(db: Database):
    assert is_current(db)
    before, after = upgrade(db)
    assert before == after == head_revision()


def test_migrations_match_schema_definition(db: Database):
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    # Type comparisons on engines that alias types (JSON on MariaDB) are not drift. Indexes with a
    # sort direction (`priority DESC`) are expressions alembic cannot compare: checked by name below.
    expression_indexes = {
        index.name
        for table in metadata.tables.values()
        for index in table.indexes
        if any(isinstance(expression, sa.TextClause) for expression in index.expressions)
    }

    def is_drift(difference: object) -> bool:
        if isinstance(difference, list) and difference and difference[0][0] == "modify_type":
            return False
        is_index = isinstance(difference, tuple) and difference[0] in ("add_index", "remove_index")
        return not (is_index and difference[1].name in expression_indexes)

    assert [d for d in differences if is_drift(d)] == []
    inspector = sa.inspect(db.engine)
    present = {index["name"] for name in metadata.tables for index in inspector.get_indexes(name)}
    assert expression_indexes and expression_indexes <= present


def test_runbook_sql_runs_verbatim(db: Database):
    status_sql, rollout_sql, disable_sql = runbook_statements()
    with db.transaction() as connection:
        rows = connection.exec_driver_sql(status_sql).fetchall()
    assert [row[0] for row in rows] == sorted(
        [
            "enable_domain_event_outbox",
            "enable_object_storage_delivery",
            "enable_ranking_snapshot_read",
            "enable_worker_dedicated_processes",
        ]
    )
    assert {row[0]: (row[1], row[2]) for row in rows}["enable_worker_dedicated_processes"] == (0, 100)

    with db.transaction() as connection:
        assert connection.exec_driver_sql(rollout_sql).rowcount == 1
    with db.transaction() as connection:
        rows = {row[0]: (row[1], row[2]) for row in connection.exec_driver_sql(status_sql)}
    assert rows["enable_worker_dedicated_processes"] == (1, 25)

    with db.transaction() as connection:
        assert connection.exec_driver_sql(disable_sql).rowcount == 3
    with db.transaction() as connection:
        rows = {row[0]: (row[1], row[2]) for row in connection.exec_driver_sql(status_sql)}
    assert rows["enable_worker_dedicated_processes"] == (0, 0)
    assert rows["enable_object_storage_delivery"] == (0, 0)
    assert rows["enable_domain_event_outbox"] == (0, 0)
    assert rows["enable_ranking_snapshot_read"] == (1, 100)


def test_fresh_database_migrates_from_empty(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'fresh' / 'omnizap.db'}")
    assert current_revision(database) is None
    before, after = upgrade(database)
    assert (before, after) == (None, head_revision())
    database.dispose()
