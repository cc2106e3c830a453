"""Waiting for work: a plain sleep, or PostgreSQL LISTEN so a new row starts within milliseconds.

`Queue.enqueue` sends `pg_notify(channel, kind)` in the inserting transaction; PostgreSQL delivers it
at commit. A worker waits on its LISTEN connection instead of sleeping, and polls anyway at the end
of each interval, so a lost connection or a missed notification costs at most one poll interval.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from omnizap.platform.db import Database

logger = logging.getLogger(__name__)


class Waker(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when woken early (work may be there, or stopping)."""
        ...

    def wake(self) -> None:
        """Wake a waiting `wait` (used on shutdown)."""
        ...

    def close(self) -> None: ...


class SleepWaker:
    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def wake(self) -> None:
        self._event.set()

    def close(self) -> None:
        self._event.set()


class PostgresListenWaker:
    """LISTEN on the queue's channels over one autocommit psycopg connection of its own."""

    def __init__(self, database: Database, channels: list[str]) -> None:
        self._conninfo = database.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._channels = channels
        self._connection: Any = None
        self._woken = threading.Event()

    def _connect(self) -> Any:
        if self._connection is None or self._connection.closed:
            import psycopg

            connection = psycopg.connect(self._conninfo, autocommit=True)
            for channel in self._channels:
                connection.execute(f'LISTEN "{channel}"')
            self._connection = connection
        return self._connection

    def wait(self, timeout: float) -> bool:
        if self._woken.is_set():
            self._woken.clear()
            return True
        try:
            connection = self._connect()
            for _notification in connection.notifies(timeout=timeout, stop_after=1):
                return True
            return self._woken.is_set()
        except Exception as exc:  # fall back to sleeping; the next wait reconnects
            logger.warning("LISTEN connection failed (%s); polling instead", type(exc).__name__)
            self._drop()
            return self._woken.wait(timeout)
        finally:
            self._woken.clear()

    def wake(self) -> None:
        self._woken.set()
        connection = self._connection
        if connection is not None and not connection.closed:
            try:  # a NOTIFY to ourselves ends a blocking notifies() at once
                import psycopg

                with psycopg.connect(self._conninfo, autocommit=True) as other:
                    other.execute("SELECT pg_notify(%s, 'wake')", (self._channels[0],))
            except Exception:
                logger.debug("could not send the wake-up NOTIFY", exc_info=True)

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                logger.debug("closing the LISTEN connection failed", exc_info=True)

    def close(self) -> None:
        self._woken.set()
        self._drop()


def waker_for(database: Database, channels: list[str]) -> Waker:
    if database.dialect == "postgresql":
        return PostgresListenWaker(database, channels)
    return SleepWaker()
