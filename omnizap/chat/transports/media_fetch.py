"""Downloading a network's media: retries with backoff on transient failures, and a size cap.

Shared by the transports whose media is fetched over HTTP (WhatsApp Cloud API, Telegram Bot API).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import httpx

from omnizap.chat.messages import MediaUnavailable
from omnizap.core.stickers.errors import TOO_LARGE, MediaRejected

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class TransientFailure(Exception):
    """Worth another try (a timeout, a dropped connection, a 5xx or 429 answer)."""


def _amount(size: int) -> str:
    return f"{size / 1_048_576:.2f} MB" if size >= 10_486 else f"{size} bytes"


def too_large(size: int, max_bytes: int) -> MediaRejected:
    """The refusal the chat core expects from `Transport.download` past `max_bytes` (it answers the
    person with the sizes; any other exception would end as "unexpected error")."""
    return MediaRejected(
        TOO_LARGE,
        f"The media has {_amount(size)} and the limit is {_amount(max_bytes)}; send a smaller file.",
        details={"size": size, "max_bytes": max_bytes},
    )


def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The streamed body, refusing it as soon as it (or its Content-Length) passes `max_bytes`."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(int(declared), max_bytes)
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise too_large(total, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def check_status(response: httpx.Response, what: str) -> None:
    if response.status_code in RETRYABLE_STATUSES:
        raise TransientFailure(f"{what}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise MediaUnavailable(f"{what}: HTTP {response.status_code}")


def with_retries(
    attempt: Callable[[], T],
    *,
    attempts: int,
    what: str,
    base_delay_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `attempt` up to `attempts` times, backing off 0.5 s, 1 s, 2 s… between transient failures.

    MediaUnavailable and MediaRejected (too large) are final; timeouts, connection errors and
    TransientFailure are retried, then reported as MediaUnavailable."""
    last: Exception | None = None
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except (TransientFailure, httpx.TransportError) as exc:
            last = exc
            logger.warning("%s failed (try %d of %d): %s", what, number, attempts, exc)
            if number < attempts:
                sleep(base_delay_seconds * 2 ** (number - 1))
    raise MediaUnavailable(f"{what} failed after {attempts} tries: {last}") from last


def stream_capped(
    open_stream: Callable[[], AbstractContextManager[httpx.Response]], *, max_bytes: int, what: str
) -> bytes:
    """One try of a streamed download: status checked, body read under the cap."""
    with open_stream() as response:
        check_status(response, what)
        return read_capped(response, max_bytes)
