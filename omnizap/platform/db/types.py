"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


def utcnow() -> dt.datetime:
    """Aware UTC now; the one clock every row timestamp comes from."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """Stores naive UTC with microseconds on every engine and hands back aware UTC datetimes.

    MySQL's DATETIME drops fractions unless asked (fsp=6), and PostgreSQL's `timestamp` would apply
    the session time zone to aware values; storing naive UTC sidesteps both.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use omnizap.platform.db.types.utcnow()")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite rows written by plain SQL (CURRENT_TIMESTAMP)
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)


class utc_now(FunctionElement[dt.datetime]):
    """Server-side "now, in UTC" as a column default, spelled the way each engine accepts it."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(utc_now)
def _utc_now_default(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utc_now, "postgresql")
def _utc_now_postgresql(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "(now() AT TIME ZONE 'utc')"


@compiles(utc_now, "mysql")
def _utc_now_mysql(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    # DATETIME(6) only accepts a default of the same precision; the session time zone is UTC (engine.py).
    return "CURRENT_TIMESTAMP(6)"


class utc_now_on_update(utc_now):
    """`utc_now`, plus MySQL's own `ON UPDATE` (the other engines use triggers: db/updated_at.py)."""

    inherit_cache = True


@compiles(utc_now_on_update, "mysql")
def _utc_now_on_update_mysql(element: utc_now_on_update, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)"


def flag_column(name: str, default: int = 0, **kwargs: Any) -> sa.Column[int]:
    """A 0/1 column. An integer, not a boolean, so the runbook's `SET is_enabled = 1` runs everywhere."""
    return sa.Column(
        name, sa.SmallInteger, nullable=False, default=default, server_default=str(default), **kwargs
    )


def created_at_column() -> sa.Column[dt.datetime]:
    return sa.Column("created_at", UtcDateTime(), nullable=False, default=utcnow, server_default=utc_now())


def updated_at_column() -> sa.Column[dt.datetime]:
    return sa.Column(
        "updated_at",
        UtcDateTime(),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=utc_now_on_update(),
    )


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Auto-increment key: BIGINT where it matters, INTEGER on SQLite (only that aliases ROWID)."""
