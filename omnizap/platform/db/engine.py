"""One connector over SQLite, PostgreSQL and MySQL/MariaDB.

Services talk to `Database`; only this module knows which driver sits underneath, how SQLite takes
its write lock, and how each engine spells "insert unless it exists".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

SUPPORTED_SCHEMES = {
    "sqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mysql+pymysql": "mysql+pymysql",
}


class DatabaseConfigError(ValueError):
    """DATABASE_URL cannot be used; the message says how to fix it."""


def normalize_database_url(url: str) -> sa.URL:
    """Map the operator's `postgresql://`/`mysql://` URL to the driver this project ships."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseConfigError(
            f"DATABASE_URL {url!r} is not a URL; use sqlite:///./data/omnizap.db, "
            "postgresql://user@host/db or mysql://user@host/db"
        ) from exc
    driver = SUPPORTED_SCHEMES.get(parsed.drivername)
    if driver is None:
        raise DatabaseConfigError(
            f"DATABASE_URL scheme {parsed.drivername!r} is not supported; use sqlite, postgresql or mysql"
        )
    parsed = parsed.set(drivername=driver)
    if driver == "mysql+pymysql" and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def _prepare_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so `BEGIN IMMEDIATE` below is what runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the lock up front: a deferred transaction that later writes can fail with
        # SQLITE_BUSY without waiting, while IMMEDIATE queues behind busy_timeout. Readers stay deferred.
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The engine plus the few operations whose SQL differs between engines."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_database_url(url)
        self.dialect = self.url.get_backend_name()  # "sqlite" | "postgresql" | "mysql"
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        elif self.dialect == "mysql":
            kwargs["connect_args"] = {"init_command": "SET time_zone = '+00:00'"}
        else:
            kwargs["connect_args"] = {"options": "-c timezone=UTC"}
        if self.dialect != "sqlite":
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _prepare_sqlite(self.engine)

    # --- transactions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A read-write transaction: commits on success, rolls back on any exception."""
        with self.engine.connect() as connection, connection.begin():
            yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit of work (deferred on SQLite so readers never wait for the writer)."""
        with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                connection = connection.execution_options(sqlite_begin="DEFERRED")
            with connection.begin():
                yield connection

    def dispose(self) -> None:
        self.engine.dispose()

    # --- engine-specific statements -------------------------------------------------------------
    def insert_ignore(self, table: sa.Table, values: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        return insert_ignore(self.dialect, table, values)

    def upsert(
        self,
        table: sa.Table,
        values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        conflict_columns: Sequence[str],
        update: Mapping[str, Any],
    ) -> Any:
        return upsert(self.dialect, table, values, conflict_columns=conflict_columns, update=update)

    def for_update_skip_locked(self, select: sa.Select[Any]) -> sa.Select[Any]:
        return for_update_skip_locked(self.dialect, select)


def insert_ignore(
    dialect: str, table: sa.Table, values: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> Any:
    """INSERT that silently skips rows colliding with a unique key; `rowcount` says how many went in.

    psycopg reports -1 for a compiled single-row INSERT unless SQLAlchemy is told to keep the count,
    and -1 is truthy: `preserve_rowcount` makes "was it inserted?" answerable on every engine.
    """
    if dialect == "postgresql":
        statement = pg_dialect.insert(table).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_dialect.insert(table).values(values).on_conflict_do_nothing()
    else:
        statement = mysql_dialect.insert(table).prefix_with("IGNORE").values(values)
    return statement.execution_options(preserve_rowcount=True)


def upsert(
    dialect: str,
    table: sa.Table,
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    conflict_columns: Sequence[str],
    update: Mapping[str, Any],
) -> Any:
    """INSERT … ON CONFLICT DO UPDATE. `update` maps columns to values or `excluded(column)`."""
    if dialect in {"postgresql", "sqlite"}:
        module = pg_dialect if dialect == "postgresql" else sqlite_dialect
        stmt = module.insert(table).values(values)
        resolved = {key: _resolve_excluded(value, stmt.excluded) for key, value in update.items()}
        return stmt.on_conflict_do_update(index_elements=list(conflict_columns), set_=resolved)
    stmt = mysql_dialect.insert(table).values(values)
    resolved = {key: _resolve_excluded(value, stmt.inserted) for key, value in update.items()}
    return stmt.on_duplicate_key_update(resolved)


def for_update_skip_locked(dialect: str, select: sa.Select[Any]) -> sa.Select[Any]:
    """Row locks that concurrent claimers step over; SQLite serialises writers instead."""
    if dialect == "sqlite":
        return select
    return select.with_for_update(skip_locked=True)


class Excluded:
    """Placeholder for "the value this INSERT proposed" in `Database.upsert(update=…)`."""

    def __init__(self, column: str) -> None:
        self.column = column


def excluded(column: str) -> Excluded:
    return Excluded(column)


def _resolve_excluded(value: Any, proposed: Any) -> Any:
    if isinstance(value, Excluded):
        return proposed[value.column]
    return value
