"""Per-key write locks inside a transaction, for count-then-insert limits (`platform_lock_slot`).

`lock_key(connection, scope, key)` makes every other transaction that locks the same key wait until
this one ends. Take it as the transaction's first statement: on MySQL the repeatable-read snapshot
of later reads then starts after the wait, and on PostgreSQL every later statement sees what the
previous holder committed, so the count that follows includes the other writer's rows.

The key is hashed onto one of `SLOTS` rows per scope (a bounded table that needs no cleanup); two
keys that share a slot only serialise. The lock is an upsert whose update leaves the row as it is:
it locks the row exclusively on every engine, including the first time, when it inserts it. SQLite
transactions are already exclusive (BEGIN IMMEDIATE), so nothing is written there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy.engine import Connection

from omnizap.platform.db.engine import upsert
from omnizap.platform.db.schema import platform_lock_slot
from omnizap.platform.db.types import utcnow

SLOTS = 4096

# Scopes in use (one name per limit, at most 32 characters).
PACK_OWNER = "pack_owner"
INTERACTION_CLIENT = "interaction_client"


def slot_of(key: str) -> int:
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") % SLOTS


def lock_key(connection: Connection, scope: str, key: str) -> None:
    """Hold the write lock of `key`'s slot in `scope` until the transaction ends."""
    lock_keys(connection, scope, [key])


def lock_keys(connection: Connection, scope: str, keys: Iterable[str]) -> None:
    """Lock several keys' slots, in slot order, so two transactions locking overlapping sets of keys
    never wait for each other in a cycle."""
    if connection.dialect.name == "sqlite":
        return
    for slot in sorted({slot_of(key) for key in keys}):
        statement = upsert(
            connection.dialect.name,
            platform_lock_slot,
            {"scope": scope, "slot": slot, "updated_at": utcnow()},
            conflict_columns=["scope", "slot"],
            update={"updated_at": platform_lock_slot.c.updated_at},
        )
        connection.execute(statement)
