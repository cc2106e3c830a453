"""Named leases in `platform_lease`: a mutex across processes and hosts that expires on its own.

`acquire` succeeds when the name is free, expired, or already held by the same holder (then it is
extended). A holder renews while it works and releases when done; a holder that dies stops renewing
and the lease passes to the next caller once `expires_at` is behind. All three engines run the same
statements: one conditional UPDATE, else an INSERT that loses cleanly on the primary key.

Jobs hold their lease with `KeptLease`: a background thread renews it every third of its length, so
the length only bounds how long a crashed holder blocks the next one, and can be short. Task
handlers take STICKER_WORKER_TASK_LOCK_TIMEOUT_SECONDS (`task_lease_seconds`), the same bound as
their queue row. A handler that finds the lease taken raises `LeaseBusy`, a `TaskDeferred`: the
worker puts the task back until the lease ends, without counting an attempt.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.engine import insert_ignore
from omnizap.platform.db.schema import platform_lease
from omnizap.platform.db.types import utcnow
from omnizap.platform.queue.context import TaskDeferred

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
RENEW_SHARE = 1 / 3  # a kept lease is renewed every this share of its length


def task_lease_seconds(settings: Settings) -> float:
    """How long a lease taken by a task outlives a holder that stopped renewing it."""
    return float(settings.sticker_worker_task_lock_timeout_seconds)


class LeaseBusy(TaskDeferred):
    """Another holder has the lease; the message names it and when its lease ends (`retry_at`)."""

    def __init__(self, name: str, holder: str | None, expires_at: dt.datetime | None) -> None:
        detail = f" by {holder} until {expires_at.isoformat()}" if holder and expires_at else ""
        super().__init__(f"lease {name!r} is held{detail}", retry_at=expires_at)
        self.name = name
        self.holder = holder
        self.expires_at = expires_at


def _now(clock: Clock | None) -> dt.datetime:
    # Read at call time (not bound as a default) so tests can swap the module's clock.
    return (clock or utcnow)()


def acquire(
    database: Database, name: str, holder: str, ttl_seconds: float, *, clock: Clock | None = None
) -> bool:
    """Take or extend the lease `name` for `holder`; False when someone else holds a live one."""
    now = _now(clock)
    expires = now + dt.timedelta(seconds=ttl_seconds)
    with database.transaction() as connection:
        taken = connection.execute(
            platform_lease.update()
            .where(platform_lease.c.name == name)
            .where(sa.or_(platform_lease.c.holder == holder, platform_lease.c.expires_at <= now))
            .values(holder=holder[:160], acquired_at=now, expires_at=expires, updated_at=now)
        ).rowcount
        if taken:
            return True
        inserted = connection.execute(
            insert_ignore(
                connection.dialect.name,
                platform_lease,
                {
                    "name": name,
                    "holder": holder[:160],
                    "acquired_at": now,
                    "expires_at": expires,
                    "updated_at": now,
                },
            )
        ).rowcount
        return bool(inserted)


def renew(
    database: Database, name: str, holder: str, ttl_seconds: float, *, clock: Clock | None = None
) -> bool:
    """Push the expiry of a lease this holder still has; False if it was lost meanwhile."""
    now = _now(clock)
    with database.transaction() as connection:
        return bool(
            connection.execute(
                platform_lease.update()
                .where(platform_lease.c.name == name, platform_lease.c.holder == holder)
                .values(expires_at=now + dt.timedelta(seconds=ttl_seconds), updated_at=now)
            ).rowcount
        )


def release(database: Database, name: str, holder: str) -> None:
    with database.transaction() as connection:
        connection.execute(
            platform_lease.delete().where(platform_lease.c.name == name, platform_lease.c.holder == holder)
        )


def current_holder(
    database: Database, name: str, *, clock: Clock | None = None
) -> tuple[str, dt.datetime] | None:
    """(holder, expires_at) of a live lease, or None."""
    with database.read() as connection:
        row = connection.execute(
            sa.select(platform_lease.c.holder, platform_lease.c.expires_at).where(
                platform_lease.c.name == name, platform_lease.c.expires_at > _now(clock)
            )
        ).first()
    return (row.holder, row.expires_at) if row is not None else None


def busy(database: Database, name: str, *, clock: Clock | None = None) -> LeaseBusy:
    """The LeaseBusy to raise for `name`, naming its current holder and when its lease ends."""
    other = current_holder(database, name, clock=clock)
    return LeaseBusy(name, *(other or (None, None)))


class KeptLease:
    """A lease this process holds, renewed in the background every third of its length.

    `with KeptLease(...) as lease:` takes it (unless `take()` already did) or raises LeaseBusy; the
    block asks `lease.held()` before writing (False once a renewal found the lease gone: another
    holder may have it now). Leaving the block stops the renewals and releases it. `beat()` renews
    once, now (the thread calls it; tests call it with a fake clock).
    """

    def __init__(
        self,
        database: Database,
        name: str,
        holder: str,
        ttl_seconds: float,
        *,
        clock: Clock | None = None,
        interval: float | None = None,
    ) -> None:
        self.database = database
        self.name = name
        self.holder = holder[:160]
        self.ttl = max(1.0, float(ttl_seconds))
        self.clock = clock
        self.interval = interval if interval is not None else self.ttl * RENEW_SHARE
        self._held = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self) -> bool:
        """Acquire and start renewing; False when another holder has it (then nothing runs)."""
        if self._held:
            return True
        if not acquire(self.database, self.name, self.holder, self.ttl, clock=self.clock):
            return False
        self._held = True
        self._done.clear()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return True

    def __enter__(self) -> KeptLease:
        if not self.take():
            raise busy(self.database, self.name, clock=self.clock)
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._held:
            release(self.database, self.name, self.holder)
        self._held = False

    def beat(self) -> bool:
        """Renew now; False (and `held()` False from then on) when the lease was lost."""
        if self._held and not renew(self.database, self.name, self.holder, self.ttl, clock=self.clock):
            logger.warning("lease %r of %s was lost", self.name, self.holder)
            self._held = False
        return self._held

    def _run(self) -> None:
        while self._held and not self._done.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a database blip: keep trying until the lease really ends
                logger.warning("renewing lease %r failed", self.name, exc_info=True)

    def held(self) -> bool:
        return self._held


@contextlib.contextmanager
def held(database: Database, name: str, holder: str, ttl_seconds: float) -> Iterator[KeptLease]:
    """Hold `name` for the block, renewed in the background, or raise LeaseBusy at once."""
    with KeptLease(database, name, holder, ttl_seconds) as lease:
        yield lease
