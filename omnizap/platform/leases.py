"""Named leases in `platform_lease`: a mutex across processes and hosts that expires on its own.

`acquire` succeeds when the name is free, expired, or already held by the same holder (then it is
extended). A holder renews while it works and releases when done; a holder that dies stops renewing
and the lease passes to the next caller once `expires_at` is behind. All three engines run the same
statements: one conditional UPDATE, else an INSERT that loses cleanly on the primary key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa

from omnizap.platform.db import Database
from omnizap.platform.db.engine import insert_ignore
from omnizap.platform.db.schema import platform_lease
from omnizap.platform.db.types import utcnow


class LeaseBusy(RuntimeError):
    """Another holder has the lease; the message names it and when its lease ends."""


def acquire(database: Database, name: str, holder: str, ttl_seconds: float) -> bool:
    """Take or extend the lease `name` for `holder`; False when someone else holds a live one."""
    now = utcnow()
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


def renew(database: Database, name: str, holder: str, ttl_seconds: float) -> bool:
    """Push the expiry of a lease this holder still has; False if it was lost meanwhile."""
    now = utcnow()
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


def current_holder(database: Database, name: str) -> tuple[str, dt.datetime] | None:
    """(holder, expires_at) of a live lease, or None."""
    with database.read() as connection:
        row = connection.execute(
            sa.select(platform_lease.c.holder, platform_lease.c.expires_at).where(
                platform_lease.c.name == name, platform_lease.c.expires_at > utcnow()
            )
        ).first()
    return (row.holder, row.expires_at) if row is not None else None


@contextlib.contextmanager
def held(database: Database, name: str, holder: str, ttl_seconds: float) -> Iterator[None]:
    """Hold `name` for the block, or raise LeaseBusy at once. Long blocks should call `renew`."""
    if not acquire(database, name, holder, ttl_seconds):
        other = current_holder(database, name)
        detail = f" by {other[0]} until {other[1].isoformat()}" if other else ""
        raise LeaseBusy(f"lease {name!r} is held{detail}")
    try:
        yield
    finally:
        release(database, name, holder)
