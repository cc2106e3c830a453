"""In-memory cache of computed read bodies, invalidated by change sequence numbers.

Every invalidation takes the next number of one counter (`sequence`, which is also the catalog's
`data_version`). An entry remembers the number current when its computation *started* and its
scope: one pack (a pack's detail) or the whole listing (lists, stats, creators, …). It is served
only while no invalidation of its scope, and no global one, happened after that start, so a body
computed from data read before a change is never served after the change was seen. Entries also
expire after their own TTL, and the least recently used go first beyond `max_entries`.

A miss computes once: concurrent callers of the same key wait for the first computation.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

MAX_TRACKED_PACKS = 200_000


@dataclass(slots=True)
class _Entry:
    value: Any
    started_at: int
    scope_pack: str | None  # None: the listing scope
    expires_at: float


class _Flight:
    """One computation in progress; callers arriving meanwhile wait for it."""

    __slots__ = ("done", "entry", "error", "started_at")

    def __init__(self, started_at: int) -> None:
        self.done = threading.Event()
        self.started_at = started_at
        self.entry: _Entry | None = None
        self.error: BaseException | None = None


class ReadCache:
    def __init__(
        self,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        independent_scopes: Iterable[str] = (),
    ) -> None:
        """`independent_scopes`: pack-style scopes that `invalidate_all` leaves alone (only an
        explicit `invalidate_packs([scope])` or their TTL ends their entries)."""
        self.max_entries = max_entries
        self._independent = frozenset(independent_scopes)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self.sequence = 1
        self._global_at = 0
        self._lists_at = 0
        self._pack_at: dict[str, int] = {}
        self.hits = 0
        self.misses = 0

    # --- invalidation ---------------------------------------------------------------------------
    def invalidate_all(self) -> int:
        with self._lock:
            self.sequence += 1
            self._global_at = self.sequence
            kept = {scope: self._pack_at[scope] for scope in self._independent if scope in self._pack_at}
            self._pack_at = kept
            for key in [
                key for key, entry in self._entries.items() if entry.scope_pack not in self._independent
            ]:
                del self._entries[key]
            return self.sequence

    def invalidate_packs(self, pack_ids: Iterable[str]) -> int:
        """These packs changed: their details and every listing-scope entry are stale."""
        with self._lock:
            self.sequence += 1
            self._lists_at = self.sequence
            for pack_id in pack_ids:
                self._pack_at[pack_id] = self.sequence
            if len(self._pack_at) > MAX_TRACKED_PACKS:  # bound memory: one global step instead
                self._pack_at = {scope: self.sequence for scope in self._independent}
                self._global_at = self.sequence
            return self.sequence

    def invalidate_lists(self) -> int:
        with self._lock:
            self.sequence += 1
            self._lists_at = self.sequence
            return self.sequence

    # --- reads ----------------------------------------------------------------------------------
    def _valid(self, entry: _Entry, now: float) -> bool:
        if entry.expires_at <= now:
            return False
        if entry.scope_pack in self._independent:
            return self._pack_at.get(entry.scope_pack, 0) <= entry.started_at
        if self._global_at > entry.started_at:
            return False
        if entry.scope_pack is None:
            return self._lists_at <= entry.started_at
        return self._pack_at.get(entry.scope_pack, 0) <= entry.started_at

    def get_or_compute(
        self,
        key: Hashable,
        ttl_seconds: float,
        compute: Callable[[], tuple[Any, str | None]],
    ) -> Any:
        """The cached value of `key`, else `compute()` → (value, scope pack id or None for lists).

        A caller that waited for another's computation takes its result only if nothing in its scope
        was invalidated since that computation started; otherwise it computes afresh.
        """
        while True:
            with self._lock:
                now = self._clock()
                entry = self._entries.get(key)
                if entry is not None:
                    if self._valid(entry, now):
                        self._entries.move_to_end(key)
                        self.hits += 1
                        return entry.value
                    del self._entries[key]
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = _Flight(self.sequence)
                    self._flights[key] = flight
            if leader:
                return self._lead(key, flight, ttl_seconds, compute)
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            with self._lock:
                if flight.entry is not None and self._valid(flight.entry, self._clock()):
                    self.hits += 1
                    return flight.entry.value

    def _lead(
        self,
        key: Hashable,
        flight: _Flight,
        ttl_seconds: float,
        compute: Callable[[], tuple[Any, str | None]],
    ) -> Any:
        try:
            value, scope_pack = compute()
        except BaseException as error:
            flight.error = error
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
            raise
        with self._lock:
            self.misses += 1
            entry = _Entry(value, flight.started_at, scope_pack, self._clock() + ttl_seconds)
            flight.entry = entry
            self._flights.pop(key, None)
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        flight.done.set()
        return value

    def __len__(self) -> int:
        return len(self._entries)
