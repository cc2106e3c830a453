"""`updated_at` kept by the database, so plain SQL moves it too (the runbook's `UPDATE feature_flag …`).

The application sets `updated_at` explicitly on every write (`onupdate=utcnow`); that value always
wins. The database steps in only when an UPDATE changed some other column and left `updated_at`
as it was, which is what MySQL/MariaDB's `ON UPDATE CURRENT_TIMESTAMP(6)` does natively; the
triggers of the other two engines do the same:

- PostgreSQL: one BEFORE UPDATE trigger function shared by every table.
- SQLite: an AFTER UPDATE trigger per table that rewrites the row's `updated_at` in the text format
  SQLAlchemy stores (`YYYY-MM-DD HH:MM:SS.ffffff`; SQLite's clock has milliseconds, so the last
  three digits are 0). Its own UPDATE changes `updated_at`, so its WHEN clause is false for it and
  it never recurses (recursive triggers are off anyway).

A no-op update (the engagement lock's `SET open_count = open_count`) changes nothing, so it does not
move `updated_at` on any engine. Migration 0008 installs this for every table that has the column;
a later migration that adds such a table, or rebuilds one (SQLite batch mode drops its triggers),
calls `install` for it again. `tests/test_updated_at.py` checks every table of the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

PG_FUNCTION = "omnizap_touch_updated_at"
# What SQLAlchemy's SQLite DateTime writes, to the millisecond SQLite's clock gives.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"
MYSQL_COLUMN = "DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"


def trigger_name(table: str) -> str:
    return f"trg_{table}_updated_at"


def pg_function_statements() -> list[str]:
    # Comparing the rows as jsonb (json columns have no equality operator) runs only when the
    # statement left updated_at alone: never for the application's own writes.
    return [
        f"""CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
    IF to_jsonb(NEW) IS DISTINCT FROM to_jsonb(OLD) THEN
      NEW.updated_at := statement_timestamp() AT TIME ZONE 'utc';
    END IF;
  END IF;
  RETURN NEW;
END
$$"""
    ]


def create_statements(dialect: str, table: str, columns: Sequence[str]) -> list[str]:
    """DDL that makes `table` keep its updated_at; `columns` are the table's columns (SQLite only
    uses them: its trigger fires when one of the others changed)."""
    name = trigger_name(table)
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
        ]
    if dialect == "mysql":
        return [f"ALTER TABLE {table} MODIFY COLUMN updated_at {MYSQL_COLUMN} ON UPDATE CURRENT_TIMESTAMP(6)"]
    if dialect == "sqlite":
        others = [column for column in columns if column != "updated_at"]
        changed = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in others)
        return [
            f"CREATE TRIGGER {name} AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN NEW.updated_at IS OLD.updated_at AND ({changed}) "
            f"BEGIN UPDATE {table} SET updated_at = {SQLITE_NOW} WHERE rowid = NEW.rowid; END"
        ]
    raise ValueError(f"no updated_at maintenance for the {dialect} dialect")


def drop_statements(dialect: str, table: str) -> list[str]:
    name = trigger_name(table)
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {table}"]
    if dialect == "mysql":
        return [f"ALTER TABLE {table} MODIFY COLUMN updated_at {MYSQL_COLUMN}"]
    return [f"DROP TRIGGER IF EXISTS {name}"]


def _run(connection: Connection, statements: Sequence[str]) -> None:
    for statement in statements:
        connection.exec_driver_sql(statement)


def install(connection: Connection, tables: Sequence[str]) -> None:
    """Make each of `tables` keep its updated_at (their columns are read from the database)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        _run(connection, pg_function_statements())
    inspector = sa.inspect(connection)
    for table in tables:
        columns = [column["name"] for column in inspector.get_columns(table)]
        _run(connection, drop_statements(dialect, table) if dialect != "mysql" else [])
        _run(connection, create_statements(dialect, table, columns))


def uninstall(connection: Connection, tables: Sequence[str]) -> None:
    dialect = connection.dialect.name
    for table in tables:
        _run(connection, drop_statements(dialect, table))
    if dialect == "postgresql":
        _run(connection, [f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()"])
