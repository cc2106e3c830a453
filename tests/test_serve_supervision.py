"""omnizap.web.http.supervision on its own: each of the two ways an HTTP worker notices that its
supervisor died (Linux's parent-death signal, the portable parent-pid watch) stops it by itself,
with a log line that says why. Real processes: the test kills a parent with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXIT_DEADLINE_SECONDS = 60

CHILD = """
import logging, os, sys, time
from omnizap.web.http import supervision
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
if {only!r} == "watch":
    supervision.set_parent_death_signal = lambda signum: False  # as on a system without prctl
else:
    supervision._watch_parent = lambda parent_pid, hard_exit_after: None  # the kernel's signal alone
supervision.die_with_parent(os.getppid(), grace_seconds=30)
print(os.getpid(), flush=True)
time.sleep(600)
"""

PARENT = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", sys.argv[1]], stderr=open(sys.argv[2], "wb")).wait()
"""


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("only", ["parent-death-signal", "watch"])
def test_a_worker_stops_when_its_parent_is_killed(tmp_path: Path, only: str):
    log = tmp_path / "child.log"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD.format(only=only), str(log)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())  # printed once the child is armed
    try:
        assert _running(child)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + EXIT_DEADLINE_SECONDS
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "the child outlived its parent"
        assert f"HTTP worker [{child}] stops: its omnizap serve supervisor [{parent.pid}] is gone" in (
            log.read_text()
        )
    finally:
        if _running(child):
            os.kill(child, signal.SIGKILL)
