"""The seed's 10x validation of the catalog, end to end on this machine.

    python -m bench.catalog_slo [--packs 10000] [--data-dir DIR] [--database-url URL]
                                [--duration-seconds 120] [--concurrency 200] [--rate 4000]
                                [--workers 2] [--likes-per-second 20]

1. Seeds a demo catalog of `--packs` packs unless the database already holds packs (a 10,000-pack
   seed takes a few minutes; later runs reuse it). The database is SQLite in `--data-dir` unless
   `--database-url` names another (an existing, empty or seeded PostgreSQL/MySQL database);
   sticker files go to `--data-dir` either way.
2. Starts `omnizap serve --workers N` on a free loopback port and waits for `/readyz`.
3. Runs the seed's load test, `omnizap loadtest --duration-seconds 120 --concurrency 200` on the
   default paths (closed model), then the same paths in the open model at `--rate` requests/s,
   then the closed run again while another thread likes random packs at `--likes-per-second`
   (each like invalidates the catalog's caches in every worker within about a second).
4. Stops the server with SIGTERM, prints one summary line per run and writes the reports to
   `bench/results/` (git-ignored).

`--refresher` also runs `bench.refresher` beside the server: the ranking work of the task pipeline
(targeted refreshes for the packs outbox events name, due follow-ups, full refreshes), which
`omnizap serve` will run in its inline poller. Without it, and with
STICKER_CATALOG_RANKING_BUILD_IN_API unset, generations are not rebuilt during the run.
`--only-with-likes` runs the third run alone.

The load generator runs on the same 2 cores as the server, so these numbers include its cost; the
report's `generator` block says how busy it was.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OMNIZAP = [sys.executable, "-m", "omnizap.cli.main"]
DEFAULT_PATHS = (
    "/api/sticker-packs?limit=24&offset=0&sort=popular",
    "/api/sticker-packs/stats",
    "/api/sticker-packs/creators?limit=25",
)
TARGETS = {"p95_ms": 50.0, "p99_ms": 150.0, "throughput_rps": 4000.0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(command: list[str], env: dict[str, str], **options: Any) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(command[2:] if command[:2] == OMNIZAP[:2] else command), flush=True)
    return subprocess.run(command, env=env, check=True, text=True, **options)


def seed_if_needed(data_dir: Path, packs: int, env: dict[str, str]) -> None:
    run([*OMNIZAP, "migrate"], env)
    started = time.monotonic()
    run([*OMNIZAP, "demo", "seed", "--if-empty", "--packs", str(packs)], env)
    print(f"seed step took {time.monotonic() - started:.1f} s", flush=True)


def wait_ready(base_url: str, server: subprocess.Popen[bytes], deadline_seconds: float = 120) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base_url + "/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in time")


def warm_up(base_url: str, rounds: int = 40) -> None:
    """Fill every worker's catalog index and response cache before measuring."""
    for _ in range(rounds):
        for path in DEFAULT_PATHS:
            with urllib.request.urlopen(base_url + path, timeout=30) as answer:
                answer.read()


def listed_pack_keys(base_url: str, pages: int = 10) -> list[str]:
    keys: list[str] = []
    cursor = None
    for _ in range(pages):
        url = base_url + "/api/sticker-packs?limit=60" + (f"&cursor={cursor}" if cursor else "")
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = json.loads(answer.read())
        keys += [pack["pack_key"] for pack in body["data"]]
        cursor = body["pagination"].get("next_cursor")
        if not cursor:
            break
    return keys


def post_likes(base_url: str, keys: list[str], per_second: float, stop: threading.Event) -> list[int]:
    """Like random listed packs as ever-new viewers at a fixed rate, so caches keep being invalidated."""
    statuses: list[int] = []
    chooser = random.Random(7)
    next_at = time.monotonic()
    number = 0
    while not stop.is_set():
        number += 1
        request = urllib.request.Request(
            f"{base_url}/api/sticker-packs/{chooser.choice(keys)}/like",
            method="POST",
            headers={"X-Viewer-Key": f"bench-viewer-{number}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
        next_at += 1 / per_second
        stop.wait(max(0.0, next_at - time.monotonic()))
    return statuses


def loadtest(base_url: str, env: dict[str, str], name: str, extra: list[str]) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    engine = env["DATABASE_URL"].split(":", 1)[0]
    out = RESULTS / f"catalog_slo_{engine}_{name}.json"
    command = [*OMNIZAP, "loadtest", "--base-url", base_url, "--quiet", "--out", str(out), *extra]
    result = subprocess.run(command, env=env, text=True, capture_output=True)
    print("$", " ".join(command[2:]), f"(exit {result.returncode})", flush=True)
    return json.loads(out.read_text())


def summary(name: str, report: dict[str, Any]) -> str:
    latency = report["latency_ms"]
    generator = report.get("generator", {})
    line = (
        f"{name}: {report['requests_total']} requests, {report['throughput_rps']:.0f} req/s, "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms, "
        f"max {latency['max']} ms, errors {report['error_rate']:.4%}, "
        f"4xx {report.get('client_error_rate', 0):.4%}, generator CPU "
        f"{generator.get('cpu_utilization', 0):.0%}"
    )
    if "open_model" in report:
        open_model = report["open_model"]
        line += f", dropped {open_model.get('dropped', 0)} of {open_model.get('scheduled', 0)} arrivals"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--packs", type=int, default=10_000)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/omnizap-catalog-slo"))
    parser.add_argument("--database-url", default=None, help="default: SQLite in --data-dir")
    parser.add_argument("--duration-seconds", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rate", type=float, default=4000.0, help="open-model arrival rate (0: skip)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--likes-per-second", type=float, default=20.0, help="writes during a third run (0: skip it)"
    )
    parser.add_argument("--refresher", action="store_true", help="run bench.refresher beside the server")
    parser.add_argument("--only-with-likes", action="store_true", help="skip the closed and open runs")
    args = parser.parse_args()

    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url or f"sqlite:///{data_dir / 'omnizap.db'}",
        "STICKER_STORAGE_DIR": str(data_dir / "stickers"),
        "HTTP_ACCESS_LOG": "true",
        "LOG_LEVEL": "WARNING",
        # Every bench request comes from 127.0.0.1: lift the per-client interaction limit for the likes.
        "STICKER_INTERACTION_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    seed_if_needed(data_dir, args.packs, env)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    serve = [*OMNIZAP, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    print("$", " ".join(serve[2:]), flush=True)
    with open(data_dir / "serve.log", "wb") as log:
        server = subprocess.Popen(serve, env=env, stdout=log, stderr=subprocess.STDOUT)
        refresher = None
        try:
            wait_ready(base_url, server)
            if args.refresher:
                refresher_log = open(data_dir / "refresher.log", "w")  # noqa: SIM115 - closed below
                refresher = subprocess.Popen(
                    [sys.executable, "-m", "bench.refresher"],
                    cwd=ROOT,
                    env=env,
                    stdout=refresher_log,
                    stderr=subprocess.STDOUT,
                )
            warm_up(base_url)
            window = ["--duration-seconds", str(args.duration_seconds)]
            window += ["--concurrency", str(args.concurrency)]
            reports: dict[str, dict[str, Any]] = {}
            if not args.only_with_likes:
                reports["closed"] = loadtest(base_url, env, "closed", window)
            if args.rate > 0 and not args.only_with_likes:
                reports["open"] = loadtest(base_url, env, "open", [*window, "--rate", str(args.rate)])
            if args.likes_per_second > 0:
                keys = listed_pack_keys(base_url)
                stop = threading.Event()
                statuses: list[int] = []
                writer = threading.Thread(
                    target=lambda: statuses.extend(post_likes(base_url, keys, args.likes_per_second, stop))
                )
                writer.start()
                try:
                    reports["closed_with_likes"] = loadtest(base_url, env, "closed_with_likes", window)
                finally:
                    stop.set()
                    writer.join()
                counted = sum(1 for status in statuses if status == 200)
                print(f"likes posted during the third run: {len(statuses)}, answered 200: {counted}")
        finally:
            if refresher is not None:
                refresher.send_signal(signal.SIGTERM)
                refresher.wait(timeout=120)
                refresher_log.close()
                print((data_dir / "refresher.log").read_text().strip().splitlines()[-1])
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    print(f"server exit code {server.returncode}")
    for name, report in reports.items():
        print(summary(name, report))
    if "closed" not in reports:
        return
    closed = reports["closed"]
    met = (
        closed["latency_ms"]["p95"] <= TARGETS["p95_ms"]
        and closed["latency_ms"]["p99"] <= TARGETS["p99_ms"]
        and closed["throughput_rps"] >= TARGETS["throughput_rps"]
        and closed["requests_error"] == 0
    )
    print(f"targets (p95 <= 50 ms, p99 <= 150 ms, >= 4,000 req/s, 0 errors): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
