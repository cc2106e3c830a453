"""Reading, caching, evaluating and changing the rows of `feature_flag` (rules in the package doc)."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from omnizap.platform.db import Database
from omnizap.platform.db.schema import feature_flag
from omnizap.platform.db.types import utcnow
from omnizap.platform.flags.defaults import FLAG_DEFAULTS

logger = logging.getLogger(__name__)

BUCKETS = 10_000
_NAME_UNSAFE = re.compile(r"[^a-z0-9_:-]")
_NAME_MAX = 120


class FlagError(ValueError):
    """A flag name or value that cannot be used; the message says what is accepted."""


@dataclass(frozen=True)
class FlagRow:
    flag_name: str
    is_enabled: bool
    rollout_percent: int
    description: str | None
    updated_by: str | None
    updated_at: object


@dataclass(frozen=True)
class FlagDecision:
    """Why a flag is on or off for one subject (shown by `omnizap flags check`)."""

    name: str
    subject: str
    enabled: bool
    source: str  # "table", "environment", "fallback"
    rollout_percent: int | None
    bucket: int
    # The row's is_enabled (None without a row): tells "switched off" apart from "outside the rollout".
    row_enabled: bool | None = None


def normalize_flag_name(name: str) -> str:
    """Lowercase, only `[a-z0-9_:-]`, at most 120 characters; an empty result is an error."""
    cleaned = _NAME_UNSAFE.sub("", str(name).strip().lower())[:_NAME_MAX]
    if not cleaned:
        raise FlagError(f"flag name {name!r} has no usable characters; use lowercase letters, digits and _")
    return cleaned


def flag_bucket(name: str, subject: str) -> int:
    """The subject's fixed bucket in 0..9999 for this flag (SHA-256 of `name:subject`).

    The flag name is part of the hash so two flags at 10% pick independent subsets of subjects.
    An empty subject stands for the flag itself (one decision for the whole deployment).
    """
    digest = hashlib.sha256(f"{name}:{subject or name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _rollout_allows(rollout_percent: int, bucket: int) -> bool:
    if rollout_percent >= 100:
        return True
    if rollout_percent <= 0:
        return False
    return bucket < rollout_percent * (BUCKETS // 100)


class FeatureFlags:
    """The cached flag table of one process. Thread-safe; one instance per Runtime."""

    def __init__(
        self,
        database: Database,
        *,
        cache_ttl_ms: int,
        environment: Mapping[str, bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.cache_ttl = max(0, cache_ttl_ms) / 1000.0
        self.environment = {normalize_flag_name(key): value for key, value in (environment or {}).items()}
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: dict[str, FlagRow] | None = None
        self._loaded_at = float("-inf")

    # --- reading ---------------------------------------------------------------------------------
    def _table(self) -> dict[str, FlagRow] | None:
        now = self._clock()
        with self._lock:
            if self._rows is not None and now - self._loaded_at < self.cache_ttl:
                return self._rows
        try:
            rows = self._read_rows()
        except Exception as exc:  # flags must never take a request or a worker down
            logger.warning("feature flags unreadable, keeping the last known values: %s", type(exc).__name__)
            with self._lock:
                # Retry after a full TTL rather than on every call while the database is down.
                self._loaded_at = now
                return self._rows
        with self._lock:
            self._rows, self._loaded_at = rows, now
            return rows

    def _read_rows(self) -> dict[str, FlagRow]:
        with self.database.read() as connection:
            result = connection.execute(sa.select(feature_flag))
            rows = {}
            for row in result.mappings():
                name = normalize_flag_name(row["flag_name"])
                rows[name] = FlagRow(
                    flag_name=name,
                    is_enabled=bool(row["is_enabled"]),
                    rollout_percent=int(row["rollout_percent"]),
                    description=row["description"],
                    updated_by=row["updated_by"],
                    updated_at=row["updated_at"],
                )
            return rows

    def invalidate(self) -> None:
        """Forget the cached table (after this process changed a flag)."""
        with self._lock:
            self._loaded_at = float("-inf")

    # --- evaluating -------------------------------------------------------------------------------
    def decide(self, name: str, subject: str = "", *, fallback: bool | None = None) -> FlagDecision:
        flag = normalize_flag_name(name)
        bucket = flag_bucket(flag, subject)
        table = self._table()
        row = table.get(flag) if table is not None else None
        if row is not None:
            enabled = row.is_enabled and _rollout_allows(row.rollout_percent, bucket)
            return FlagDecision(
                flag, subject, enabled, "table", row.rollout_percent, bucket, row_enabled=row.is_enabled
            )
        if flag in self.environment:
            return FlagDecision(flag, subject, self.environment[flag], "environment", None, bucket)
        if fallback is None:
            default = FLAG_DEFAULTS.get(flag)
            fallback = default.fallback if default is not None else False
        return FlagDecision(flag, subject, fallback, "fallback", None, bucket)

    def is_enabled(self, name: str, subject: str = "", *, fallback: bool | None = None) -> bool:
        return self.decide(name, subject, fallback=fallback).enabled

    def state(self, name: str, *, fallback: bool | None = None) -> tuple[object, ...]:
        """What the decisions of `name` depend on besides the subject (source, switch, percentage).

        Equal states give every subject the same answer, so a caller that evaluated many subjects
        (a whole catalog) compares states to know when to evaluate them again."""
        flag = normalize_flag_name(name)
        table = self._table()
        row = table.get(flag) if table is not None else None
        if row is not None:
            return ("table", row.is_enabled, row.rollout_percent)
        decision = self.decide(flag, fallback=fallback)
        return (decision.source, decision.enabled)

    def decider(self, name: str, *, fallback: bool | None = None) -> Callable[[str], bool]:
        """`is_enabled(name, subject)` as a function of the subject, resolved from one reading of the
        table: on or off for everyone costs nothing per subject, a partial rollout one hash each."""
        flag = normalize_flag_name(name)
        table = self._table()
        row = table.get(flag) if table is not None else None
        if row is None or not row.is_enabled or row.rollout_percent <= 0 or row.rollout_percent >= 100:
            answer = self.decide(flag, fallback=fallback).enabled
            return lambda _subject: answer
        percent = row.rollout_percent
        return lambda subject: _rollout_allows(percent, flag_bucket(flag, subject))

    # --- administering ---------------------------------------------------------------------------
    def list_flags(self) -> list[FlagRow]:
        """Every row, read now (not from the cache), by name."""
        rows = self._read_rows()
        return [rows[name] for name in sorted(rows)]

    def set_flag(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        rollout_percent: int | None = None,
        updated_by: str,
        description: str | None = None,
    ) -> FlagRow:
        """Create or change a flag row; unspecified fields keep their value (new rows: off, 100%)."""
        flag = normalize_flag_name(name)
        if rollout_percent is not None and not 0 <= int(rollout_percent) <= 100:
            raise FlagError(f"rollout percent must be a whole number 0-100, got {rollout_percent}")
        who = str(updated_by).strip()[:120]
        if not who:
            raise FlagError("say who changes the flag (--by NAME); it is kept in updated_by")
        now = utcnow()
        with self.database.transaction() as connection:
            current = (
                connection.execute(sa.select(feature_flag).where(feature_flag.c.flag_name == flag))
                .mappings()
                .first()
            )
            values: dict[str, object] = {"updated_by": who, "updated_at": now}
            if enabled is not None:
                values["is_enabled"] = 1 if enabled else 0
            if rollout_percent is not None:
                values["rollout_percent"] = int(rollout_percent)
            if description is not None:
                values["description"] = description[:255]
            if current is None:
                default = FLAG_DEFAULTS.get(flag)
                values.setdefault("is_enabled", 0)
                values.setdefault("rollout_percent", 100)
                values.setdefault("description", default.description if default else None)
                connection.execute(feature_flag.insert().values(flag_name=flag, created_at=now, **values))
            else:
                connection.execute(
                    feature_flag.update().where(feature_flag.c.flag_name == flag).values(**values)
                )
        self.invalidate()
        return self._read_rows()[flag]
