"""How `omnizap serve` binds its port and ties its HTTP worker processes to their supervisor.

A worker must not outlive the supervisor that started it: it would keep answering on the port with
no pipeline behind it, and the next `omnizap serve` could not bind. Each worker asks Linux to send
it SIGTERM when the supervisor dies (PR_SET_PDEATHSIG) and, on every platform, watches its parent
pid; once the parent is gone it shuts down gracefully, and exits hard if that takes longer than the
graceful-shutdown time.

Kept light on purpose: a worker unpickles `WorkerConfig`, importing this module, before it can
answer the supervisor's first health check.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_SECONDS = 0.5
HARD_EXIT_MARGIN_SECONDS = 5.0
# Sent by the kernel (PR_SET_PDEATHSIG) or the watch thread; uvicorn's workers leave it alone.
PARENT_GONE_SIGNAL = signal.SIGUSR1
ORPHANED_EXIT = 70  # EX_SOFTWARE: the worker lost its supervisor and did not stop on SIGTERM in time


class PortInUse(OSError):
    """Another process already listens on the address."""


def bind_listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """The server's socket, bound, listening and inheritable by the worker processes (connections
    that arrive before a worker is ready wait in the backlog instead of being refused).

    Raises `PortInUse` when another process holds the address, and OSError for other refusals
    (an address this host does not have, a privileged port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    # Lets a restart bind while connections of the previous run linger in TIME_WAIT; a socket
    # that is still listening is refused all the same.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(exc.errno, exc.strerror) from exc
        raise
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def set_parent_death_signal(signum: int) -> bool:
    """Linux only: have the kernel send `signum` to this process when its parent exits.
    Returns False where that is not available (other systems, a libc without prctl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    if result != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def die_with_parent(parent_pid: int, grace_seconds: float) -> threading.Thread:
    """Stop this process when `parent_pid` is no longer its parent: a log line saying why, SIGTERM
    to itself (uvicorn's graceful shutdown), and a hard exit if it still runs `grace_seconds` plus a
    margin later. Call it from the main thread.

    The parent-death signal covers Linux at once; the watch thread covers other platforms and the
    moments before the signal was armed (a parent that died earlier is not signalled). Both go
    through PARENT_GONE_SIGNAL's handler, so the log says why the worker stops."""
    announced = threading.Event()

    def on_parent_gone(_signum: int, _frame: object) -> None:
        if announced.is_set():
            return
        announced.set()
        logger.warning(
            "HTTP worker [%d] stops: its omnizap serve supervisor [%d] is gone", os.getpid(), parent_pid
        )
        signal.raise_signal(signal.SIGTERM)

    signal.signal(PARENT_GONE_SIGNAL, on_parent_gone)
    set_parent_death_signal(PARENT_GONE_SIGNAL)
    watcher = threading.Thread(
        target=_watch_parent,
        args=(parent_pid, grace_seconds + HARD_EXIT_MARGIN_SECONDS),
        name="omnizap-parent-watch",
        daemon=True,
    )
    watcher.start()
    return watcher


def _watch_parent(parent_pid: int, hard_exit_after: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), PARENT_GONE_SIGNAL)
    time.sleep(hard_exit_after)
    logger.error("HTTP worker still running %.0f s after its supervisor died; exiting now", hard_exit_after)
    os._exit(ORPHANED_EXIT)


class WorkerConfig(uvicorn.Config):
    """uvicorn's settings plus the supervisor's pid: a worker process that loads the app first
    arranges to stop when that supervisor is gone. With one worker the supervisor serves itself,
    and nothing is armed."""

    def __init__(self, *args: Any, supervisor_pid: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.supervisor_pid = supervisor_pid

    def load(self) -> None:
        # uvicorn calls load() in each worker before it imports the app (the slow part), so the
        # worker is tied to its supervisor from then on.
        if os.getpid() != self.supervisor_pid:
            grace = float(self.timeout_graceful_shutdown or 0)
            die_with_parent(self.supervisor_pid, grace)
        super().load()
