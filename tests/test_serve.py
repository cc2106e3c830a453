"""`omnizap serve` as operators run it: a real uvicorn server with two worker processes on a migrated
SQLite database. Metrics add up across workers; SIGTERM stops it cleanly; an unmigrated database is
refused with a message that says what to do."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from omnizap.catalog.interactions import client_key, client_key_secret
from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_pack_interaction_event

STARTUP_DEADLINE_SECONDS = 90
SHUTDOWN_DEADLINE_SECONDS = 60
SPREAD_DEADLINE_SECONDS = 60
BATCH = 24


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _omnizap() -> list[str]:
    found = shutil.which("omnizap", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "omnizap.cli.main"]


def _env(folder: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DATABASE_", "STICKER_", "PROMETHEUS_", "METRICS_", "LOG_", "HTTP_", "FORWARDED_")
        )
    }
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'omnizap.db'}",
        STICKER_STORAGE_DIR=str(folder / "stickers"),
        PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
        LOG_FORMAT="json",
        STICKER_PACK_AUTO_COLLECT_ENABLED="false",
    )
    return env


def _get(
    port: int, path: str, timeout: float = 10, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_until_healthy(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"omnizap serve exited early with {process.returncode}")
        try:
            if _get(port, "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("omnizap serve did not answer /healthz in time")


def _stats_requests_counted(port: int) -> float:
    status, body = _get(port, "/metrics")
    assert status == 200
    total = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "omnizap_http_requests_total"
                and labels["route_group"] == "catalog_api_public"
                and labels["method"] == "GET"
                and labels["status_class"] == "2xx"
            ):
                total += sample.value
    return total


def _recording_processes(metrics_dir: Path) -> set[str]:
    return {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SimpleNamespace]:
    options = getattr(request, "param", {})
    workers = options.get("workers", 2)
    env = {**_env(tmp_path), **options.get("env", {})}
    if options.get("default_metrics_dir"):
        # As operators run it: no PROMETHEUS_MULTIPROC_DIR, `omnizap serve` picks a folder in TMPDIR.
        del env["PROMETHEUS_MULTIPROC_DIR"]
        env["TMPDIR"] = str(tmp_path)
    subprocess.run([*_omnizap(), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    port = _free_port()
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*_omnizap(), "serve", "--workers", str(workers), "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    worker_pids: list[int] = []
    try:
        _wait_until_healthy(process, port)
        if sys.platform.startswith("linux") and workers > 1:
            worker_pids = _http_workers(process.pid)
        yield SimpleNamespace(
            process=process,
            env=env,
            port=port,
            metrics_dir=tmp_path / "metrics",
            stdout=stdout_path,
            stderr=stderr_path,
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        for pid in worker_pids:  # HTTP workers stop with their supervisor; none is left if they did not
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _access_lines(stderr: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "omnizap.access"]


@pytest.mark.parametrize("server", [{"env": {"FORWARDED_ALLOW_IPS": "192.0.2.1"}}], indirect=True)
def test_serve_aggregates_metrics_over_workers_and_stops_on_sigterm(server: SimpleNamespace):
    assert f"http://127.0.0.1:{server.port}" in server.stdout.read_text()

    # Send batches of concurrent requests (new connection each) until both workers have answered
    # some: the kernel hands connections to whichever worker accepts first.
    sent = 0
    deadline = time.monotonic() + SPREAD_DEADLINE_SECONDS
    with ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            statuses = list(
                pool.map(lambda _: _get(server.port, "/api/sticker-packs/stats")[0], range(BATCH))
            )
            assert statuses == [200] * BATCH
            sent += BATCH
            if len(_recording_processes(server.metrics_dir)) >= 2:
                break
            if time.monotonic() > deadline:
                pytest.fail("only one worker process ever answered")

    assert _stats_requests_counted(server.port) == sent
    assert (
        _get(server.port, "/healthz", headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "spoofed"})[
            0
        ]
        == 200
    )

    # Several answers on one keep-alive connection (each written in one piece by the server):
    # bodies, a HEAD, a 304 and an error all arrive whole and in order.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/api/sticker-packs/stats")
        first = connection.getresponse()
        body, etag = first.read(), first.getheader("ETag")
        assert first.status == 200 and body and etag
        connection.request("HEAD", "/api/sticker-packs/stats")
        head = connection.getresponse()
        assert (
            head.status == 200 and head.read() == b"" and head.getheader("Content-Length") == str(len(body))
        )
        connection.request("GET", "/api/sticker-packs/stats", headers={"If-None-Match": etag})
        cached = connection.getresponse()
        assert cached.status == 304 and cached.read() == b""
        connection.request("GET", "/api/no-such-route")
        missing = connection.getresponse()
        assert missing.status == 404 and b"NOT_FOUND" in missing.read()
        connection.request("GET", "/sitemap.xml")
        sitemap = connection.getresponse()
        assert sitemap.status == 200 and sitemap.read().rstrip().endswith(b"</urlset>")
    finally:
        connection.close()
    sent += 1  # of those, only the first is a catalog_api_public GET answered 2xx
    # A scrape is answered by one worker but counts the other's requests too: ask several times.
    assert {_stats_requests_counted(server.port) for _ in range(6)} == {sent}

    server.process.send_signal(signal.SIGTERM)
    try:
        exit_code = server.process.wait(timeout=SHUTDOWN_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail("omnizap serve did not stop within the deadline after SIGTERM")
    assert exit_code == 0
    log = server.stderr.read_text()
    assert log.count("Application shutdown complete") == 2  # each worker ran its lifespan shutdown
    # 127.0.0.1 is not a trusted proxy here: X-Forwarded-For is not believed.
    (spoofed,) = [line for line in _access_lines(server.stderr) if line["request_id"] == "spoofed"]
    assert spoofed["client"] == "127.0.0.1"


@pytest.mark.parametrize(
    "server", [{"workers": 1, "env": {"FORWARDED_ALLOW_IPS": "127.0.0.1"}}], indirect=True
)
def test_serve_with_one_worker_process(server: SimpleNamespace):
    for _ in range(3):
        assert _get(server.port, "/api/sticker-packs/stats")[0] == 200
    assert _stats_requests_counted(server.port) == 3
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "via-proxy"}
    assert _get(server.port, "/healthz", headers=forwarded)[0] == 200
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=SHUTDOWN_DEADLINE_SECONDS) == 0
    assert "Application shutdown complete" in server.stderr.read_text()
    # The connection comes from 127.0.0.1, named as a trusted proxy (FORWARDED_ALLOW_IPS).
    (line,) = [line for line in _access_lines(server.stderr) if line["request_id"] == "via-proxy"]
    assert line["client"] == "203.0.113.9" and line["path"] == "/healthz" and line["status"] == 200


def _post(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("server", "believed"),
    [
        ({"workers": 1}, "127.0.0.1"),  # the default trusts no proxy, not even a local one
        ({"workers": 1, "env": {"FORWARDED_ALLOW_IPS": "127.0.0.1"}}, "203.0.113.9"),
    ],
    indirect=["server"],
)
def test_forwarded_for_is_believed_only_from_configured_proxies(server: SimpleNamespace, believed: str):
    """A local process sending a forged X-Forwarded-For cannot choose the address its interaction
    rate limit and dedupe are keyed by, unless FORWARDED_ALLOW_IPS names it as a proxy."""
    settings = Settings(_env_file=None, database_url=server.env["DATABASE_URL"])
    database = Database(settings.database_url, pool_size=1)
    try:
        pack = PackService(database, settings).create_pack("ana", "Forwarded", visibility="public")
        forged = {"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "forged", "X-Viewer-Key": "viewer-1"}
        status, _ = _post(server.port, f"/api/sticker-packs/{pack.pack_key}/like", forged)
        assert status == 200
        with database.read() as connection:
            (event,) = connection.execute(sa.select(sticker_pack_interaction_event)).mappings().all()
    finally:
        database.dispose()
    secret = client_key_secret(settings)
    assert event["client_key"] == client_key(believed, secret, event["created_at"].date())
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=SHUTDOWN_DEADLINE_SECONDS) == 0
    (line,) = [line for line in _access_lines(server.stderr) if line["request_id"] == "forged"]
    assert line["client"] == believed


def test_serve_refuses_an_unmigrated_database(tmp_path: Path):
    env = _env(tmp_path)
    finished = subprocess.run(
        [*_omnizap(), "serve", "--workers", "2", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert "run `omnizap migrate`" in finished.stderr
    assert "listening" not in finished.stdout


# --- the supervisor dies, the port is taken, one worker's metrics ---------------------------------

WORKER_EXIT_DEADLINE_SECONDS = 60
PIPELINE_METRICS_DEADLINE_SECONDS = 120


def _http_workers(supervisor_pid: int) -> list[int]:
    """The supervisor's uvicorn worker processes (multiprocessing spawn children), from /proc."""
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text().split()
    workers = []
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:
            continue
        if b"multiprocessing.spawn" in command:
            workers.append(child)
    return workers


def _running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")
def test_http_workers_stop_when_the_supervisor_is_killed_and_a_restart_binds(server: SimpleNamespace):
    workers = _http_workers(server.process.pid)
    assert len(workers) == 2
    try:
        server.process.kill()  # SIGKILL: no handler runs in the supervisor
        server.process.wait(timeout=30)
        deadline = time.monotonic() + WORKER_EXIT_DEADLINE_SECONDS
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _running(pid)], "HTTP workers outlived their supervisor"
        log = server.stderr.read_text()
        supervisor = server.process.pid
        for pid in workers:  # the log says why they stopped
            assert f"HTTP worker [{pid}] stops: its omnizap serve supervisor [{supervisor}] is gone" in log
        while not _port_is_free(server.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _port_is_free(server.port)

        # and a new server starts on the same port
        restarted = subprocess.Popen(
            [*_omnizap(), "serve", "--workers", "2", "--port", str(server.port), "--host", "127.0.0.1"],
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_healthy(restarted, server.port)
        finally:
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(timeout=SHUTDOWN_DEADLINE_SECONDS) == 0
    finally:
        for pid in workers:  # a failed run leaves no orphan behind
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_port_in_use_is_one_clear_error(tmp_path: Path, workers: int):
    env = _env(tmp_path)
    subprocess.run([*_omnizap(), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    # What another server on that port recorded must survive the refused start.
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir()
    (metrics_dir / "counter_4242.db").write_bytes(b"not ours to delete")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        finished = subprocess.run(
            [*_omnizap(), "serve", "--workers", str(workers), "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert finished.returncode == 1
    assert finished.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use (another omnizap serve?); stop it or pass --port"
    )
    assert "listening" not in finished.stdout
    assert (metrics_dir / "counter_4242.db").exists()


def _families(port: int) -> dict[str, list[object]]:
    status, body = _get(port, "/metrics")
    assert status == 200
    return {family.name: family.samples for family in text_string_to_metric_families(body.decode())}


# Recorded by the pipeline in the supervisor process (scheduler + inline poller), not by the HTTP
# workers: /metrics must add them in with one worker as with several.
PIPELINE_FAMILIES = (
    "omnizap_worker_tasks",
    "omnizap_sticker_classification_cycle",
    "omnizap_sticker_autopack_cycle",
)
FAST_CYCLES = {
    "STICKER_WORKER_CLASSIFICATION_CADENCE_MS": "1000",
    "STICKER_WORKER_CURATION_CADENCE_MS": "1000",
}


@pytest.mark.parametrize(
    "server",
    [
        pytest.param({"workers": 1, "env": FAST_CYCLES, "default_metrics_dir": True}, id="1-worker"),
        pytest.param({"workers": 2, "env": FAST_CYCLES, "default_metrics_dir": True}, id="2-workers"),
    ],
    indirect=True,
)
def test_pipeline_metrics_are_on_metrics_with_any_number_of_workers(server: SimpleNamespace):
    deadline = time.monotonic() + PIPELINE_METRICS_DEADLINE_SECONDS
    while True:
        families = _families(server.port)
        missing = [name for name in PIPELINE_FAMILIES if not families.get(name)]
        if not missing:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"never on /metrics: {missing}")
        time.sleep(0.5)
    ran = {
        sample.labels["task_type"]
        for sample in families["omnizap_worker_tasks"]
        if sample.name == "omnizap_worker_tasks_total" and sample.labels["mode"] == "inline"
    }
    assert {"classification_cycle", "curation_cycle"} <= ran
    # the HTTP workers' own metrics are still there
    assert _stats_requests_counted(server.port) == 0
    assert _get(server.port, "/api/sticker-packs/stats")[0] == 200
    assert _stats_requests_counted(server.port) == 1


# A worker process that takes this long before it can answer its supervisor's first ping, as on a
# busy machine. uvicorn's own limit is 5 s.
SLOW_WORKER_START_SECONDS = 8
SLOW_START = f"""
import sys, time
if "--multiprocessing-fork" in sys.argv:  # only the HTTP workers
    time.sleep({SLOW_WORKER_START_SECONDS})
"""


def test_a_worker_that_starts_slowly_is_not_killed_as_hung(tmp_path: Path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_START)  # runs at interpreter start-up
    env = _env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hooks), env.get("PYTHONPATH")]))
    subprocess.run([*_omnizap(), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    port = _free_port()
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*_omnizap(), "serve", "--workers", "2", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    worker_pids: list[int] = []
    try:
        _wait_until_healthy(process, port)
        worker_pids = _http_workers(process.pid)
        # both first workers started; none was killed and replaced
        log = stderr_path.read_text()
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while log.count("Application startup complete") < 2 and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.2)
            log = stderr_path.read_text()
        assert "died" not in log
        assert log.count("Started server process") == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_DEADLINE_SECONDS)
        for pid in worker_pids:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
