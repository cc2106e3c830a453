"""updated_at is kept by the database (migration 0012): the seed runbook's own UPDATE statements
move it on every engine, and the application's explicit values still win."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from test_migrations import runbook_statements

from omnizap.platform.db import Database
from omnizap.platform.db.schema import feature_flag, metadata, platform_lease
from omnizap.platform.db.types import utcnow
from omnizap.platform.db.updated_at import trigger_name

LONG_AGO = dt.datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
FLAGS_TOUCHED_BY_DISABLE = {
    "enable_worker_dedicated_processes",
    "enable_object_storage_delivery",
    "enable_domain_event_outbox",
}


def tables_with_updated_at() -> list[str]:
    return sorted(table.name for table in metadata.tables.values() if "updated_at" in table.c)


def kept_by_database(db: Database) -> set[str]:
    """The tables whose updated_at the database itself maintains, read from the engine's catalog."""
    with db.read() as connection:
        if db.dialect == "mysql":
            rows = connection.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                    "AND column_name = 'updated_at' AND LOWER(extra) LIKE 'on update current_timestamp%'"
                )
            )
            return {row[0] for row in rows}
        if db.dialect == "postgresql":
            rows = connection.execute(
                sa.text(
                    "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal"
                )
            )
        else:
            rows = connection.execute(
                sa.text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
            )
        return {table for table, name in rows if name == trigger_name(table)}


def set_flag_times(db: Database, when: dt.datetime) -> None:
    with db.transaction() as connection:
        connection.execute(feature_flag.update().values(updated_at=when))


def flag_times(db: Database) -> dict[str, dt.datetime]:
    with db.read() as connection:
        return dict(connection.execute(sa.select(feature_flag.c.flag_name, feature_flag.c.updated_at)).all())


def assert_recent(value: dt.datetime) -> None:
    # The database's clock, not the test's: generous bounds, never timing.
    assert value > LONG_AGO and abs(value - utcnow()) < dt.timedelta(hours=1), value


def test_every_table_with_updated_at_has_it_kept_by_the_database(db: Database):
    expected = tables_with_updated_at()
    assert len(expected) >= 12
    assert sorted(kept_by_database(db) & set(expected)) == expected


def test_the_seed_runbook_updates_move_updated_at(db: Database):
    status_sql, rollout_sql, disable_sql = runbook_statements()
    set_flag_times(db, LONG_AGO)
    with db.transaction() as connection:
        assert connection.exec_driver_sql(rollout_sql).rowcount == 1
    times = flag_times(db)
    assert_recent(times["enable_worker_dedicated_processes"])
    assert {name for name, value in times.items() if value == LONG_AGO} == set(times) - {
        "enable_worker_dedicated_processes"
    }

    set_flag_times(db, LONG_AGO)
    with db.transaction() as connection:
        assert connection.exec_driver_sql(disable_sql).rowcount == 3
        status = {row[0]: row[3] for row in connection.exec_driver_sql(status_sql)}
    for name in FLAGS_TOUCHED_BY_DISABLE:
        # The runbook's status query reads what the operator sees: a fresh time, as text on SQLite.
        shown = status[name]
        shown = dt.datetime.fromisoformat(shown) if isinstance(shown, str) else shown
        assert_recent(shown.replace(tzinfo=dt.UTC))
    times = flag_times(db)
    for name, value in times.items():
        if name in FLAGS_TOUCHED_BY_DISABLE:
            assert_recent(value)
        else:
            assert value == LONG_AGO, name


def test_explicit_application_values_win_and_no_op_updates_change_nothing(db: Database):
    set_flag_times(db, LONG_AGO)
    chosen = dt.datetime(2021, 6, 7, 8, 9, 10, 123456, tzinfo=dt.UTC)
    with db.transaction() as connection:
        connection.execute(
            feature_flag.update()
            .where(feature_flag.c.flag_name == "enable_ranking_snapshot_read")
            .values(rollout_percent=40, updated_at=chosen)
        )
        # A statement that changes nothing (like the engagement row lock) leaves updated_at alone.
        connection.exec_driver_sql("UPDATE feature_flag SET rollout_percent = rollout_percent")
    times = flag_times(db)
    assert times["enable_ranking_snapshot_read"] == chosen
    assert {value for name, value in times.items() if name != "enable_ranking_snapshot_read"} == {LONG_AGO}


def test_plain_sql_moves_updated_at_of_other_tables_too(db: Database):
    with db.transaction() as connection:
        connection.execute(
            platform_lease.insert().values(
                name="probe", holder="a", acquired_at=LONG_AGO, expires_at=LONG_AGO, updated_at=LONG_AGO
            )
        )
        connection.exec_driver_sql("UPDATE platform_lease SET holder = 'b' WHERE name = 'probe'")
    with db.read() as connection:
        value = connection.execute(sa.select(platform_lease.c.updated_at)).scalar_one()
    assert_recent(value)
