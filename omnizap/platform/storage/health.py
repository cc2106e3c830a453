"""Whether a remote store answers, known without asking it on every request.

A presigned URL is computed locally, so handing one out says nothing about the store: if the store
is down, every redirected client gets a broken image. Each process therefore probes the store at
most once per interval (one short request) and remembers the answer. The probe runs in the request
that finds the answer stale; requests arriving meanwhile use the previous answer instead of waiting.
Before the first answer the store counts as unavailable, so nothing is redirected on a guess.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class StoreHealth:
    def __init__(
        self,
        probe: Callable[[], None],
        *,
        interval_seconds: float,
        name: str = "object store",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self.interval = max(0.0, interval_seconds)
        self.name = name
        self._clock = clock
        self._probing = threading.Lock()
        self._healthy = False
        self._checked_at = float("-inf")
        self.last_error: str | None = None

    def healthy(self) -> bool:
        """The latest known answer, refreshed first when it is older than the interval."""
        if self._clock() - self._checked_at >= self.interval and self._probing.acquire(blocking=False):
            try:
                self._refresh()
            finally:
                self._probing.release()
        return self._healthy

    def _refresh(self) -> None:
        try:
            self._probe()
        except Exception as exc:  # any failure means "do not send clients there"
            if self._healthy or self.last_error is None:
                logger.warning("%s unavailable, serving from local disk: %s", self.name, exc)
            self._healthy, self.last_error = False, str(exc)
        else:
            if not self._healthy and self.last_error is not None:
                logger.info("%s reachable again", self.name)
            self._healthy, self.last_error = True, None
        self._checked_at = self._clock()
