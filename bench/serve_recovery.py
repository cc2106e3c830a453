"""Crash recovery of `omnizap serve`: how long until it serves again after a SIGKILL.

    python -m bench.serve_recovery [--workers 2] [--rounds 5]

On a fresh migrated SQLite database in a temporary folder, each round:

1. HTTP worker killed: SIGKILL to one HTTP worker. Measures until the supervisor's replacement has
   finished its application startup, and whether /healthz answered 200 throughout (the other
   workers keep serving).
2. Supervisor killed: SIGKILL to the `omnizap serve` process. Measures until every HTTP worker has
   exited and the port is free, then starts `omnizap serve` again at once (as supervisord's
   autorestart does; systemd waits RestartSec=5 first) and measures until /healthz answers 200.

Prints the median and worst of each figure as JSON. Linux only (finds the workers in /proc).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.catalog_slo import free_port

DEADLINE_SECONDS = 120


def _omnizap() -> list[str]:
    found = shutil.which("omnizap", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "omnizap.cli.main"]


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _workers(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    found = []
    for child in map(int, children):
        try:
            if b"multiprocessing.spawn" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except FileNotFoundError:
            continue
    return found


def _wait(condition: object, what: str) -> float:
    started = time.perf_counter()
    while not condition():  # type: ignore[operator]
        if time.perf_counter() - started > DEADLINE_SECONDS:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.perf_counter() - started


class Server:
    def __init__(self, env: dict[str, str], port: int, workers: int, log: Path) -> None:
        self.log = log
        self.port = port
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [*_omnizap(), "serve", "--workers", str(workers), "--port", str(port), "--host", "127.0.0.1"],
                env=env,
                stdout=sink,
                stderr=sink,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.workers < 2:
        raise SystemExit("--workers must be at least 2 (with one, the worker is the supervisor)")

    folder = Path(tempfile.mkdtemp(prefix="omnizap-recovery-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "STICKER_", "PROMETHEUS_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'omnizap.db'}",
        STICKER_STORAGE_DIR=str(folder / "stickers"),
        PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
        STICKER_PACK_AUTO_COLLECT_ENABLED="false",
    )
    subprocess.run([*_omnizap(), "migrate"], env=env, check=True, capture_output=True)
    port = free_port()
    figures: dict[str, list[float]] = {
        "worker_killed_replacement_ready_s": [],
        "supervisor_killed_port_free_s": [],
        "supervisor_killed_serving_again_s": [],
    }
    failed_health_checks = 0
    log = folder / "serve.log"  # every server of the run appends to it

    def startups() -> int:
        return log.read_text(errors="replace").count("Application startup complete")

    server = Server(env, port, args.workers, log)
    _wait(lambda: startups() >= args.workers and _healthy(port), "the first start")
    try:
        for _ in range(args.rounds):
            # 1. one HTTP worker killed; /healthz polled meanwhile
            before = startups()
            stop_probing = threading.Event()
            failures: list[int] = []

            def probe(failures: list[int] = failures, stop: threading.Event = stop_probing) -> None:
                while not stop.is_set():
                    if not _healthy(port):
                        failures.append(1)
                    time.sleep(0.02)

            prober = threading.Thread(target=probe)
            prober.start()
            os.kill(_workers(server.process.pid)[0], signal.SIGKILL)
            figures["worker_killed_replacement_ready_s"].append(
                _wait(lambda before=before: startups() > before, "the replacement worker")
            )
            stop_probing.set()
            prober.join()
            failed_health_checks += len(failures)

            # 2. the supervisor killed, then started again at once
            workers = _workers(server.process.pid)
            killed_at = time.perf_counter()
            server.process.kill()
            server.process.wait()
            _wait(lambda workers=workers: not any(map(_running, workers)) and _port_free(port), "the port")
            figures["supervisor_killed_port_free_s"].append(time.perf_counter() - killed_at)
            started_before = startups()
            server = Server(env, port, args.workers, log)
            _wait(lambda: _healthy(port), "the restarted server")
            figures["supervisor_killed_serving_again_s"].append(time.perf_counter() - killed_at)
            # every worker of the new server up before the next round
            expected = started_before + args.workers
            _wait(lambda expected=expected: startups() >= expected, "every restarted worker")
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=DEADLINE_SECONDS)
        shutil.rmtree(folder, ignore_errors=True)

    results: dict[str, object] = {"workers": args.workers, "rounds": args.rounds}
    for name, values in figures.items():
        results[name] = {"median": round(statistics.median(values), 2), "worst": round(max(values), 2)}
    results["failed_health_checks_while_a_worker_was_replaced"] = failed_health_checks
    results["load_average"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
