"""Process logging: one JSON object (or one readable line) per record, each carrying the request id.

`configure_logging(settings)` installs the handler once per process (LOG_FORMAT json|text, LOG_LEVEL).
The request id lives in a context variable that the HTTP middleware sets for the duration of a
request; a filter copies it onto every record, so application logs written while serving a request
carry the same `request_id` as that request's access line and its `X-Request-Id` header.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson

from omnizap.config import Settings

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "omnizap_request_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "color_message", "taskName"}
)
_HANDLER_MARKER = "_omnizap_handler"


def current_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def request_id_context(request_id: str) -> Iterator[None]:
    """Bind `request_id` for the code run inside (tests and background jobs acting for a request)."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def _install_record_factory() -> None:
    """Every LogRecord gets `request_id` when it is made, whichever handler later formats it
    (ours, pytest's, uvicorn's), so no log line written during a request lacks it."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_omnizap_request_id", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    make_record._omnizap_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


_install_record_factory()


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record that passes through the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "request_id", ...extra fields, "exc"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`2026-01-01T00:00:00.000Z INFO logger [request-id] message key=value ...` for terminals."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={value}" for key, value in _extra_fields(record).items())
        line = (
            f"{_timestamp(record)} {record.levelname:<7} {record.name} "
            f"[{getattr(record, 'request_id', None) or '-'}] {record.getMessage()}"
        )
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def build_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    setattr(handler, _HANDLER_MARKER, True)
    return handler


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> None:
    """Route every logger (ours, uvicorn's, libraries') through one handler on the root logger.

    Safe to call again: the previous OmniZap handler is replaced, other handlers are left alone.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _HANDLER_MARKER, False):
            root.removeHandler(existing)
    root.addHandler(build_handler(settings.log_format, stream))
    root.setLevel(settings.log_level.upper())
    # uvicorn's loggers keep their own handlers only when it configured them; we hand it log_config=None,
    # so they propagate here. Its access log is replaced by ours (omnizap.access).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    # Alembic announces its dialect each time a revision is read, which /readyz does per probe.
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


class AccessLog:
    """The per-request access lines, written without the logging machinery.

    At thousands of requests a second, a LogRecord, a handler lock and a flushed write per request
    cost more than answering a cached request. These lines have the same shape as the JSON (or text)
    records of `configure_logging` (logger `omnizap.access`, level info) but are formatted directly
    and written in batches: at most every `flush_interval` seconds or when `max_buffer` characters
    are waiting, and at `close()`. Lines therefore reach the stream up to that interval late.
    """

    LOGGER_NAME = "omnizap.access"

    def __init__(
        self,
        log_format: str,
        stream: IO[str] | None = None,
        *,
        flush_interval: float = 0.25,
        max_buffer: int = 256 * 1024,
    ) -> None:
        self.log_format = log_format
        self.stream = stream
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self._lines: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._flusher: threading.Thread | None = None
        self._second = -1
        self._second_text = ""

    def _timestamp(self) -> str:
        """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1000):03d}Z"

    def _format(self, message: str, fields: dict[str, Any]) -> str:
        moment = self._timestamp()
        if self.log_format == "json":
            entry = {"ts": moment, "level": "info", "logger": self.LOGGER_NAME, "message": message, **fields}
            return orjson.dumps(entry, default=str).decode()
        request_id = fields.get("request_id") or "-"
        rest = " ".join(f"{key}={value}" for key, value in fields.items() if key != "request_id")
        return f"{moment} INFO    {self.LOGGER_NAME} [{request_id}] {message} {rest}"

    def write(self, message: str, fields: dict[str, Any]) -> None:
        line = self._format(message, fields)
        with self._lock:
            self._lines.append(line)
            self._size += len(line) + 1
            full = self._size >= self.max_buffer
        if full or self._closed:
            self.flush()
        elif self._flusher is None:
            self._start_flusher()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(target=self._flush_periodically, name="access-log", daemon=True)
            self._flusher.start()

    def _flush_periodically(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        stream = self.stream or sys.stderr
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not break request handling
            pass

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
