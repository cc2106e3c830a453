"""The queue protocol: enqueue, claim with a lease, heartbeat, complete, retry with backoff, dead-letter.

One implementation serves the task queue, the domain-event outbox and the reprocess queue
(`specs.py`). What it guarantees, on SQLite, PostgreSQL and MySQL/MariaDB alike:

- **Atomic claim.** PostgreSQL and MySQL/MariaDB pick rows with `SELECT … FOR UPDATE SKIP LOCKED`, so
  concurrent claimers never wait for or take each other's rows; SQLite runs the claim in one
  `BEGIN IMMEDIATE` transaction, which makes claimers take turns. A claimed row carries a fresh
  `worker_token`; every later state change names that token, so a worker that lost its lease cannot
  complete or fail a row another worker now holds (the original's two-step claim could).
- **Leases.** A claim sets `lease_expires_at`; `heartbeat` extends it. A row whose lease ran out is
  claimable again (the worker died), and counts as an attempt; past `max_attempts` it is dead-lettered
  instead of run again.
- **Backoff.** A failure reschedules the row after `base × 2^(attempt-1)` seconds, capped, with up to
  half of that removed at random so retries of a burst spread out (the original used a fixed delay).
- **Dead letters.** The last failure marks the row `failed` and copies it, with its error, into the
  dead-letter table in the same transaction; `replay` puts it back to `pending` with fresh attempts.
- **Deferral.** A row whose handler could not run yet (another process holds the lease its job
  needs) goes back to pending until a given time without counting the attempt; its `last_error`
  starts with `deferred:` and `status_counts` reports it as `deferred`.
- **Idempotent enqueue.** A duplicate idempotency key inserts nothing; if the existing row is still
  pending it keeps the higher priority and the earlier start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.engine import excluded, for_update_skip_locked, insert_ignore, upsert
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.specs import QueueSpec

logger = logging.getLogger(__name__)

ERROR_MAX = 1000
DEFERRED_PREFIX = "deferred: "
# A deferred row waits at least this long, so a lease that ends as the row is put back cannot
# make it spin.
MIN_DEFER_SECONDS = 1.0
PRIORITY_RANGE = (1, 100)
MAX_ATTEMPTS_RANGE = (1, 30)
FailOutcome = Literal["retry", "dead", "lost"]
DeferOutcome = Literal["deferred", "lost"]
T = TypeVar("T")


class QueueError(ValueError):
    """A queue operation that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    jitter: float = 0.5  # share of the delay that may be removed at random
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.sticker_worker_retry_base_seconds, settings.sticker_worker_retry_max_seconds)

    def delay(self, attempts: int) -> float:
        """Seconds to wait before attempt `attempts + 1`; never more than the cap."""
        exponent = min(max(attempts - 1, 0), 40)
        capped = min(self.max_seconds, self.base_seconds * (2**exponent))
        return capped * (1.0 - self.jitter * self.rng.random())


@dataclass(frozen=True)
class ClaimedItem:
    """A row this worker holds until its lease ends; pass it back to complete/fail/heartbeat."""

    id: int
    kind: str
    token: str
    attempts: int
    max_attempts: int
    row: Mapping[str, Any]

    @property
    def payload(self) -> Mapping[str, Any]:
        payload = self.row.get("payload")
        return payload if isinstance(payload, Mapping) else {}


@dataclass(frozen=True)
class DeadLetter:
    id: int
    ref_id: int
    kind: str
    attempts: int
    last_error: str | None
    failed_at: dt.datetime
    replayed_at: dt.datetime | None
    row: Mapping[str, Any]


EXPIRED_CHECK_SECONDS = 5.0
# What every transition out of `processing` clears: the holder's token and its lease.
_UNLEASED: dict[str, Any] = {"worker_token": None, "locked_at": None, "lease_expires_at": None}
# Engines whose UPDATE takes RETURNING (MariaDB's does not; SQLite's since 3.35).
_UPDATE_RETURNING = frozenset({"postgresql", "sqlite"})
DEADLOCK_RETRIES = 5
_DEADLOCK_CODES = {1213, 1205}  # MySQL/MariaDB: deadlock, lock wait timeout
_DEADLOCK_SQLSTATES = {"40P01", "40001"}  # PostgreSQL: deadlock, serialization failure


def is_deadlock(exc: BaseException) -> bool:
    """A transaction the engine chose as a deadlock victim: rolled back whole, safe to run again."""
    original = getattr(exc, "orig", None)
    if getattr(original, "sqlstate", None) in _DEADLOCK_SQLSTATES:
        return True
    args = getattr(original, "args", ())
    return bool(args) and args[0] in _DEADLOCK_CODES


def retry_deadlocks(run: Callable[[], T], *, attempts: int = DEADLOCK_RETRIES) -> T:
    """MariaDB's next-key locks can make two claimers of neighbouring rows deadlock; the victim's
    transaction rolled back completely, so it is simply tried again after a short random pause."""
    for attempt in range(attempts):
        try:
            return run()
        except sa.exc.DBAPIError as exc:
            if not is_deadlock(exc) or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], int(value)))


def _error_text(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:ERROR_MAX]


class Queue:
    """The protocol over one `QueueSpec`. Cheap to build; holds no connection between calls."""

    def __init__(
        self,
        database: Database,
        spec: QueueSpec,
        *,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 900.0,
    ) -> None:
        self.database = database
        self.spec = spec
        self.retry = retry or RetryPolicy()
        self.lease = dt.timedelta(seconds=max(1.0, lease_seconds))
        self.table = spec.table
        self._kind = spec.table.c[spec.kind_column]
        self._available = spec.table.c[spec.available_column]
        self._expired_checked_at = float("-inf")

    @contextlib.contextmanager
    def _state_transaction(self) -> Iterator[Connection]:
        """A transaction for claims, heartbeats, completions and failures.

        On PostgreSQL these commit without waiting for the WAL flush (`synchronous_commit = off`
        for this transaction only): a crash of the database server may forget the last fraction
        of a second of such changes, which at-least-once delivery already tolerates (a forgotten
        claim or completion just runs the task again). Enqueues and replays stay durable.
        """
        with self.database.transaction() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield connection

    # --- enqueue ---------------------------------------------------------------------------------
    def enqueue(
        self,
        *,
        values: Mapping[str, Any],
        idempotency_key: str | None,
        priority: int = 50,
        available_at: dt.datetime | None = None,
        max_attempts: int | None = None,
        connection: Connection | None = None,
    ) -> bool:
        """Insert one row (in `connection`'s transaction when given); False when the key exists."""
        if self.spec.kind_column not in values or not str(values[self.spec.kind_column]).strip():
            raise QueueError(f"{self.spec.name}: a row needs a {self.spec.kind_column}")
        now = utcnow()
        row: dict[str, Any] = {
            **values,
            "idempotency_key": idempotency_key,
            "priority": _clamp(priority, PRIORITY_RANGE),
            self.spec.available_column: available_at or now,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        if max_attempts is not None:
            row["max_attempts"] = _clamp(max_attempts, MAX_ATTEMPTS_RANGE)
        if connection is not None:
            return self._enqueue(connection, row)
        with self.database.transaction() as own:
            return self._enqueue(own, row)

    def _enqueue(self, connection: Connection, row: dict[str, Any]) -> bool:
        dialect = connection.dialect.name
        if row["idempotency_key"] is None:
            connection.execute(self.table.insert().values(row))
            inserted = True
        else:
            inserted = bool(connection.execute(insert_ignore(dialect, self.table, row)).rowcount)
            if not inserted:
                self._merge_duplicate(connection, row)
        if inserted and dialect == "postgresql":
            # Delivered at commit, so a woken worker finds the row; nothing is sent on rollback.
            connection.execute(
                sa.select(sa.func.pg_notify(self.spec.notify_channel, str(row[self.spec.kind_column])))
            )
        return inserted

    def _merge_duplicate(self, connection: Connection, row: dict[str, Any]) -> None:
        """A pending duplicate keeps the higher priority and the earlier start (never a later one)."""
        table, available = self.table, self._available
        connection.execute(
            table.update()
            .where(table.c.idempotency_key == row["idempotency_key"], table.c.status == "pending")
            .values(
                priority=sa.case(
                    (table.c.priority < row["priority"], row["priority"]), else_=table.c.priority
                ),
                **{
                    self.spec.available_column: sa.case(
                        (available > row[self.spec.available_column], row[self.spec.available_column]),
                        else_=available,
                    )
                },
            )
        )

    # --- claim -----------------------------------------------------------------------------------
    def claim(self, worker: str, *, kinds: Sequence[str] | None = None, limit: int = 1) -> list[ClaimedItem]:
        """Take up to `limit` due rows (highest priority, then oldest), each under a fresh lease."""
        if limit < 1:
            return []
        if kinds is not None and not kinds:
            return []
        return retry_deadlocks(lambda: self._claim(worker, kinds, limit))

    def _claim(self, worker: str, kinds: Sequence[str] | None, limit: int) -> list[ClaimedItem]:
        # Two picks, each walking its own index: rows whose lease ran out (rare: their workers died)
        # and due rows in claim order; one query with an OR of both would sort every pending row.
        # Expired leases are looked for every EXPIRED_CHECK_SECONDS, and whenever due rows did not
        # fill the claim, so an idle queue recovers them at once and a busy one within seconds.
        now = utcnow()
        token = str(uuid.uuid4())
        clock = time.monotonic()
        check_first = clock - self._expired_checked_at >= EXPIRED_CHECK_SECONDS
        with self._state_transaction() as connection:
            claimed: list[ClaimedItem] = []
            if check_first:
                claimed += self._claim_expired(connection, kinds, limit, token, now)
            if len(claimed) < limit:
                claimed += self._claim_due(connection, kinds, limit - len(claimed), token, now)
            if len(claimed) < limit and not check_first:
                claimed += self._claim_expired(connection, kinds, limit - len(claimed), token, now)
                check_first = True
        if check_first:
            self._expired_checked_at = clock
        if claimed:
            logger.debug("%s claimed %d row(s) of %s", worker, len(claimed), self.spec.name)
        return claimed

    def _take(
        self, connection: Connection, ids: list[int], token: str, now: dt.datetime
    ) -> list[ClaimedItem]:
        """Lease the locked rows `ids` to `token`; returns them in the order of `ids`."""
        table = self.table
        connection.execute(table.update().where(table.c.id.in_(ids)).values(**self._lease_values(token, now)))
        rows = connection.execute(sa.select(table).where(table.c.id.in_(ids), table.c.worker_token == token))
        by_id = {int(row["id"]): self._claimed(row, token) for row in rows.mappings()}
        return [by_id[row_id] for row_id in ids if row_id in by_id]

    def _lease_values(self, token: str, now: dt.datetime) -> dict[str, Any]:
        return {
            "status": "processing",
            "worker_token": token,
            "locked_at": now,
            "lease_expires_at": now + self.lease,
            "attempts": self.table.c.attempts + 1,
            "updated_at": now,
        }

    def _claimed(self, row: Mapping[str, Any], token: str) -> ClaimedItem:
        return ClaimedItem(
            id=int(row["id"]),
            kind=str(row[self.spec.kind_column]),
            token=token,
            attempts=int(row["attempts"]),
            max_attempts=int(row["max_attempts"]),
            row=dict(row),
        )

    def _claim_expired(
        self, connection: Connection, kinds: Sequence[str] | None, limit: int, token: str, now: dt.datetime
    ) -> list[ClaimedItem]:
        table = self.table
        query = sa.select(table.c.id, table.c.attempts, table.c.max_attempts).where(
            table.c.status == "processing", table.c.lease_expires_at <= now
        )
        if kinds is not None:
            query = query.where(self._kind.in_(list(kinds)))
        query = query.order_by(table.c.lease_expires_at.asc(), table.c.id.asc()).limit(limit)
        picked = connection.execute(for_update_skip_locked(connection.dialect.name, query)).all()
        if not picked:
            return []
        # Visible in the log of the worker that takes over: a crash otherwise shows only as a gap.
        logger.warning(
            "%s: %d row(s) whose lease ran out (their worker stopped or died) are taken over: ids %s",
            self.spec.name,
            len(picked),
            ", ".join(str(row.id) for row in picked),
        )
        exhausted = [row.id for row in picked if row.attempts >= row.max_attempts]
        if exhausted:
            self._dead_letter(
                connection, exhausted, "lease expired on the last attempt (worker stopped or died)", now
            )
        runnable = [row.id for row in picked if row.attempts < row.max_attempts]
        return self._take(connection, runnable, token, now) if runnable else []

    def _claim_due(
        self, connection: Connection, kinds: Sequence[str] | None, limit: int, token: str, now: dt.datetime
    ) -> list[ClaimedItem]:
        table = self.table
        order = (table.c.priority.desc(), self._available.asc(), table.c.id.asc())
        query = sa.select(table.c.id).where(table.c.status == "pending", self._available <= now)
        if kinds is not None:
            query = query.where(self._kind.in_(list(kinds)))
        query = for_update_skip_locked(connection.dialect.name, query.order_by(*order).limit(limit))
        if connection.dialect.name in _UPDATE_RETURNING:
            # One round trip: lock, lease and read the rows in a single UPDATE … RETURNING.
            rows = connection.execute(
                table.update()
                .where(table.c.id.in_(query.scalar_subquery()))
                .values(**self._lease_values(token, now))
                .returning(*table.c)
            ).mappings()
            claimed = [self._claimed(row, token) for row in rows]
            claimed.sort(
                key=lambda item: (-item.row["priority"], item.row[self.spec.available_column], item.id)
            )
            return claimed
        ids = list(connection.execute(query).scalars())
        return self._take(connection, ids, token, now) if ids else []

    # --- while holding ---------------------------------------------------------------------------
    def _held(self, item: ClaimedItem) -> sa.ColumnElement[bool]:
        table = self.table
        return sa.and_(
            table.c.id == item.id, table.c.worker_token == item.token, table.c.status == "processing"
        )

    def heartbeat(self, item: ClaimedItem) -> bool:
        """Extend the lease; False when it was lost (another worker may hold the row now)."""
        return retry_deadlocks(lambda: self._heartbeat(item))

    def _heartbeat(self, item: ClaimedItem) -> bool:
        now = utcnow()
        with self._state_transaction() as connection:
            result = connection.execute(
                self.table.update()
                .where(self._held(item))
                .values(lease_expires_at=now + self.lease, updated_at=now)
                .execution_options(preserve_rowcount=True)
            )
            return bool(result.rowcount)

    def complete(self, item: ClaimedItem, *, connection: Connection | None = None) -> bool:
        """Mark done (inside `connection`'s transaction when given, so the handler's writes and the
        completion commit together). False when the lease was lost: the caller must roll back."""
        now = utcnow()
        statement = (
            self.table.update()
            .where(self._held(item))
            .values(
                status="completed",
                processed_at=now,
                **_UNLEASED,
                last_error=None,
                updated_at=now,
            )
            .execution_options(preserve_rowcount=True)
        )
        if connection is not None:
            return bool(connection.execute(statement).rowcount)

        def run() -> bool:
            with self._state_transaction() as own:
                return bool(own.execute(statement).rowcount)

        return retry_deadlocks(run)

    def complete_many(self, items: Sequence[ClaimedItem]) -> int:
        """Mark a whole claimed batch done in one statement; returns how many were still held."""
        if not items:
            return 0
        return retry_deadlocks(lambda: self._complete_many(items))

    def _complete_many(self, items: Sequence[ClaimedItem]) -> int:
        now = utcnow()
        table = self.table
        done = 0
        with self._state_transaction() as connection:
            for token in {item.token for item in items}:
                ids = [item.id for item in items if item.token == token]
                done += connection.execute(
                    table.update()
                    .where(table.c.id.in_(ids), table.c.worker_token == token, table.c.status == "processing")
                    .values(
                        status="completed",
                        processed_at=now,
                        **_UNLEASED,
                        last_error=None,
                        updated_at=now,
                    )
                    .execution_options(preserve_rowcount=True)
                ).rowcount
        return done

    def release(self, items: Iterable[ClaimedItem]) -> int:
        """Give rows back unrun (a worker shutting down): pending again, the attempt not counted."""
        released = 0
        now = utcnow()
        with self._state_transaction() as connection:
            for item in items:
                released += connection.execute(
                    self.table.update()
                    .where(self._held(item))
                    .values(
                        status="pending",
                        **_UNLEASED,
                        attempts=sa.case((self.table.c.attempts > 0, self.table.c.attempts - 1), else_=0),
                        updated_at=now,
                    )
                    .execution_options(preserve_rowcount=True)
                ).rowcount
        return released

    def defer(self, item: ClaimedItem, reason: object, retry_at: dt.datetime | None = None) -> DeferOutcome:
        """Put a held row back to pending until `retry_at` (at least MIN_DEFER_SECONDS, at most one
        lease length from now), without counting the attempt: the handler could not run yet."""
        return retry_deadlocks(lambda: self._defer(item, reason, retry_at))

    def _defer(self, item: ClaimedItem, reason: object, retry_at: dt.datetime | None) -> DeferOutcome:
        now = utcnow()
        earliest = now + dt.timedelta(seconds=MIN_DEFER_SECONDS)
        until = min(max(retry_at or earliest, earliest), now + self.lease)
        table = self.table
        with self._state_transaction() as connection:
            result = connection.execute(
                table.update()
                .where(self._held(item))
                .values(
                    status="pending",
                    **_UNLEASED,
                    attempts=sa.case((table.c.attempts > 0, table.c.attempts - 1), else_=0),
                    last_error=(DEFERRED_PREFIX + _error_text(reason))[:ERROR_MAX],
                    updated_at=now,
                    **{self.spec.available_column: until},
                )
                .execution_options(preserve_rowcount=True)
            )
            return "deferred" if result.rowcount else "lost"

    def fail(self, item: ClaimedItem, error: object) -> FailOutcome:
        """Record a failed attempt: retry later with backoff, or dead-letter after the last one."""
        return retry_deadlocks(lambda: self._fail(item, error))

    def _fail(self, item: ClaimedItem, error: object) -> FailOutcome:
        now = utcnow()
        text = _error_text(error)
        with self._state_transaction() as connection:
            if item.attempts >= item.max_attempts:
                held = connection.execute(sa.select(self.table.c.id).where(self._held(item))).first()
                if held is None:
                    return "lost"
                self._dead_letter(connection, [item.id], text, now)
                return "dead"
            retry_at = now + dt.timedelta(seconds=self.retry.delay(item.attempts))
            result = connection.execute(
                self.table.update()
                .where(self._held(item))
                .values(
                    status="pending",
                    **_UNLEASED,
                    last_error=text,
                    updated_at=now,
                    **{self.spec.available_column: retry_at},
                )
                .execution_options(preserve_rowcount=True)
            )
            return "retry" if result.rowcount else "lost"

    def _dead_letter(self, connection: Connection, ids: Sequence[int], error: str, now: dt.datetime) -> None:
        table, spec = self.table, self.spec
        connection.execute(
            table.update()
            .where(table.c.id.in_(list(ids)))
            .values(
                status="failed",
                processed_at=now,
                **_UNLEASED,
                last_error=error[:ERROR_MAX],
                updated_at=now,
            )
        )
        rows = connection.execute(sa.select(table).where(table.c.id.in_(list(ids)))).mappings().all()
        for row in rows:
            values = {
                spec.dlq_ref_column: row["id"],
                **{column: row[column] for column in spec.copied_columns},
                "attempts": row["attempts"],
                "max_attempts": row["max_attempts"],
                "priority": row["priority"],
                "last_error": row["last_error"],
                "failed_at": now,
                "replayed_at": None,
                "created_at": now,
            }
            refresh = ("attempts", "max_attempts", "priority", "last_error", "failed_at", "replayed_at")
            connection.execute(
                upsert(
                    connection.dialect.name,
                    spec.dlq_table,
                    values,
                    conflict_columns=[spec.dlq_ref_column],
                    update={column: excluded(column) for column in refresh},
                )
            )

    # --- dead-letter administration ---------------------------------------------------------------
    def dead_letters(self, *, include_replayed: bool = False, limit: int = 50) -> list[DeadLetter]:
        dlq = self.spec.dlq_table
        query = sa.select(dlq).order_by(dlq.c.failed_at.desc(), dlq.c.id.desc()).limit(max(1, limit))
        if not include_replayed:
            query = query.where(dlq.c.replayed_at.is_(None))
        with self.database.read() as connection:
            return [self._dead_letter_row(row) for row in connection.execute(query).mappings()]

    def _dead_letter_row(self, row: Mapping[str, Any]) -> DeadLetter:
        return DeadLetter(
            id=int(row["id"]),
            ref_id=int(row[self.spec.dlq_ref_column]),
            kind=str(row[self.spec.kind_column]),
            attempts=int(row["attempts"]),
            last_error=row["last_error"],
            failed_at=row["failed_at"],
            replayed_at=row["replayed_at"],
            row=dict(row),
        )

    def replay(self, dead_letter_id: int) -> int:
        """Put a dead-lettered row back to pending with fresh attempts; returns the queue row id.
        A row that was purged from the queue meanwhile is re-created from the dead-letter copy."""
        dlq, table, spec = self.spec.dlq_table, self.table, self.spec
        now = utcnow()
        with self.database.transaction() as connection:
            letter = connection.execute(sa.select(dlq).where(dlq.c.id == dead_letter_id)).mappings().first()
            if letter is None:
                raise QueueError(
                    f"no dead letter {dead_letter_id} in {dlq.name}; `omnizap queue dlq list` shows the ids"
                )
            if letter["replayed_at"] is not None:
                raise QueueError(
                    f"dead letter {dead_letter_id} was already replayed at "
                    f"{letter['replayed_at']:%Y-%m-%d %H:%M:%S} UTC; if it failed again it is listed again"
                )
            ref = int(letter[spec.dlq_ref_column])
            reset = {
                "status": "pending",
                "attempts": 0,
                **_UNLEASED,
                "processed_at": None,
                "last_error": None,
                "updated_at": now,
                spec.available_column: now,
            }
            updated = connection.execute(
                table.update()
                .where(table.c.id == ref, table.c.status == "failed")
                .values(**reset)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            if not updated:
                present = connection.execute(sa.select(table.c.status).where(table.c.id == ref)).first()
                if present is not None:
                    raise QueueError(
                        f"row {ref} of {table.name} is {present.status}, not failed; nothing to replay"
                    )
                restored = {column: letter[column] for column in spec.copied_columns}
                result = connection.execute(
                    table.insert().values(
                        **restored,
                        **reset,
                        priority=letter["priority"],
                        max_attempts=letter["max_attempts"],
                        created_at=now,
                    )
                )
                ref = int(result.inserted_primary_key[0])
            connection.execute(dlq.update().where(dlq.c.id == dead_letter_id).values(replayed_at=now))
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.select(sa.func.pg_notify(spec.notify_channel, str(letter[spec.kind_column])))
                )
            return ref

    # --- inspection and housekeeping --------------------------------------------------------------
    def status_counts(self) -> dict[str, dict[str, int]]:
        """kind → status → rows, for every kind present; pending rows put back by `defer` (their
        handler found its lease taken) count as `deferred`."""
        table = self.table
        state = sa.case(
            (
                sa.and_(table.c.status == "pending", table.c.last_error.like(DEFERRED_PREFIX + "%")),
                "deferred",
            ),
            else_=table.c.status,
        ).label("state")
        with self.database.read() as connection:
            rows = connection.execute(
                sa.select(self._kind, state, sa.func.count()).group_by(self._kind, state)
            ).all()
        counts: dict[str, dict[str, int]] = {}
        for kind, status, count in rows:
            counts.setdefault(str(kind), {})[str(status)] = int(count)
        return counts

    def oldest_due(self) -> dt.datetime | None:
        """When the longest-waiting pending row became due (None when nothing is due)."""
        table = self.table
        with self.database.read() as connection:
            return connection.execute(
                sa.select(sa.func.min(self._available)).where(
                    table.c.status == "pending", self._available <= utcnow()
                )
            ).scalar_one_or_none()

    def purge(
        self, *, older_than: dt.timedelta, include_replayed_dead_letters: bool = False
    ) -> tuple[int, int]:
        """Delete completed rows processed before now − older_than (and, when asked, dead letters
        already replayed). Pending, running and failed rows are never deleted. Returns (rows, letters)."""
        if older_than < dt.timedelta(0):
            raise QueueError("--older-than must not be negative")
        cutoff = utcnow() - older_than
        table, dlq = self.table, self.spec.dlq_table
        with self.database.transaction() as connection:
            rows = connection.execute(
                table.delete()
                .where(table.c.status == "completed", table.c.processed_at < cutoff)
                .execution_options(preserve_rowcount=True)
            ).rowcount
            letters = 0
            if include_replayed_dead_letters:
                letters = connection.execute(
                    dlq.delete()
                    .where(dlq.c.replayed_at.is_not(None), dlq.c.replayed_at < cutoff)
                    .execution_options(preserve_rowcount=True)
                ).rowcount
        return int(rows), int(letters)
