"""`omnizap serve`: the web catalog, JSON API and /metrics on uvicorn, in one or more worker processes.

Before any worker starts it checks that the database answers and is migrated (else it says to run
`omnizap migrate` and exits 1), binds the port (a port in use is one error line and exit 1), points
PROMETHEUS_MULTIPROC_DIR at an emptied folder so the metrics of the workers and of the pipeline add
up in every scrape, and only then prints where it listens. SIGTERM or SIGINT stops accepting
connections, lets in-flight requests finish (up to HTTP_GRACEFUL_SHUTDOWN_SECONDS), runs each
worker's shutdown and exits 0. HTTP workers stop by themselves when the supervisor dies, even by
SIGKILL (omnizap.web.http.supervision).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import tempfile
from pathlib import Path
from socket import socket

import click

from omnizap.cli.common import AppContext, fail, pass_app, require_migrated_database
from omnizap.config import Settings

APP_FACTORY = "omnizap.web.app:create_server_app"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STARTUP_FAILED_EXIT = 3
BACKLOG = 2048


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _check_database(app: AppContext) -> None:
    require_migrated_database(app)
    app.runtime.database.dispose()  # workers open their own connections


def _share_metrics(settings: Settings, port: int) -> Path:
    """Point PROMETHEUS_MULTIPROC_DIR at an emptied folder. The variable is set before anything in
    this process imports prometheus_client, which picks its value store once, at import: with one
    worker the app runs in this very process."""
    chosen = settings.prometheus_multiproc_dir or Path(tempfile.gettempdir()) / f"omnizap-metrics-{port}"
    os.environ[MULTIPROC_ENV] = str(chosen)
    from omnizap.platform.metrics.exposition import prepare_multiprocess_dir, values_are_shared

    if not values_are_shared():
        fail("internal error: prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    return prepare_multiprocess_dir(chosen)


def _bind(host: str, port: int) -> socket:
    from omnizap.web.http.supervision import PortInUse, bind_listening_socket

    try:
        return bind_listening_socket(host, port, BACKLOG)
    except PortInUse:
        fail(f"port {port} on {host} is already in use (another omnizap serve?); stop it or pass --port")
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port")


def _app_factory(settings: Settings, metrics_dir: Path, workers: int) -> object:
    """What uvicorn loads. Worker processes import the factory by name and read their settings,
    PROMETHEUS_MULTIPROC_DIR included, from the environment this process set up. With one worker
    the app runs here, where the settings were read before that variable was set: it gets them
    with the metrics folder filled in, so its /metrics shows the pipeline's metrics too."""
    if workers > 1:
        return APP_FACTORY
    from omnizap.web.app import create_server_app

    return functools.partial(
        create_server_app, settings.model_copy(update={"prometheus_multiproc_dir": metrics_dir})
    )


def _run_workers(config: object, sockets: list[socket], metrics_dir: Path) -> bool:
    """uvicorn's supervisor, plus prometheus_client bookkeeping for each worker that exits.
    Returns False when a worker could not start."""
    from prometheus_client.multiprocess import mark_process_dead
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess

    class MetricsAwareMultiprocess(Multiprocess):
        def _pids(self) -> set[int]:
            return {process.pid for process in self.processes if process.pid is not None}

        def _forget(self, pids: set[int]) -> None:
            for pid in pids:
                mark_process_dead(pid, str(metrics_dir))

        def keep_subprocess_alive(self) -> None:
            before = self._pids()
            super().keep_subprocess_alive()
            self._forget(before - self._pids())

        def restart_all(self) -> None:
            before = self._pids()
            super().restart_all()
            self._forget(before - self._pids())

        def handle_ttou(self) -> None:
            before = self._pids()
            super().handle_ttou()
            self._forget(before - self._pids())

        def join_all(self) -> None:
            super().join_all()
            self._forget(self._pids())

    supervisor = MetricsAwareMultiprocess(config, sockets=sockets)  # type: ignore[arg-type]
    supervisor.run()
    return not any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on [default: METRICS_HOST, 0.0.0.0].")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port [default: METRICS_PORT, 9102]."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes [default: HTTP_WORKERS, else the number of CPUs].",
)
@click.option(
    "--pipeline/--no-pipeline",
    "run_pipeline",
    default=None,
    help="Run the task scheduler, inline poller and outbox consumer here "
    "[default: STICKER_WORKER_PIPELINE_ENABLED, on].",
)
@pass_app
def serve(
    app: AppContext, host: str | None, port: int | None, workers: int | None, run_pipeline: bool | None
) -> None:
    """Run the web catalog, the JSON API and /metrics, and the background pipeline.

    The pipeline (scheduler, inline poller, outbox consumer) runs in this supervising process, once
    per server; each task type is left to dedicated `omnizap worker` processes while
    `enable_worker_dedicated_processes` gives it to them.
    """
    settings = app.runtime.settings
    host = host or settings.metrics_host
    port = port or settings.metrics_port
    workers = workers or settings.http_workers or default_workers()
    _check_database(app)
    # Bound before anything else happens (metrics folder emptied, pipeline started, "listening"
    # printed): a port another server holds stops here, with nothing of that server touched.
    listening_socket = _bind(host, port)

    # The workers, and this process (the pipeline; with one worker the app too), keep their
    # values in files there, and every scrape adds them up.
    metrics_dir = _share_metrics(settings, port)

    from omnizap.platform.logging import configure_logging
    from omnizap.web.http.protocol import CoalescingHttpToolsProtocol
    from omnizap.web.http.supervision import WorkerConfig

    configure_logging(settings)
    background = None
    if settings.sticker_worker_pipeline_enabled if run_pipeline is None else run_pipeline:
        from omnizap.pipeline import InlinePipeline

        background = InlinePipeline(app.runtime)
        background.start()
    config = WorkerConfig(
        _app_factory(settings, metrics_dir, workers),
        supervisor_pid=os.getpid(),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,  # httptools, one socket write per answer
        lifespan="on",
        log_config=None,  # our handler (LOG_FORMAT) formats uvicorn's messages too
        access_log=False,  # one access line per request comes from the app, with its request id
        # X-Forwarded-For/-Proto are read only from the proxies FORWARDED_ALLOW_IPS names; with it
        # empty (the default) uvicorn must not read them at all: its own fallback would trust
        # 127.0.0.1, letting any local process choose the client address.
        proxy_headers=bool(settings.forwarded_allow_ips.strip()),
        forwarded_allow_ips=settings.forwarded_allow_ips.strip(),
        timeout_graceful_shutdown=settings.http_graceful_shutdown_seconds,
        timeout_worker_healthcheck=settings.http_worker_healthcheck_timeout_seconds,
        server_header=False,
        backlog=BACKLOG,
    )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(
        f"omnizap serve: listening on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}); "
        f"catalog http://{shown_host}:{port}{settings.sticker_web_path}, "
        f"metrics http://{shown_host}:{port}{settings.metrics_path}",
        err=False,
    )
    sys.stdout.flush()
    try:
        if workers > 1:
            started = _run_workers(config, [listening_socket], metrics_dir)
        else:
            import uvicorn

            # uvicorn re-raises the stop signal after a graceful shutdown, with the handlers that were
            # in place before it started; these make that a normal exit (0), as with several workers.
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop_signal, lambda _signum, _frame: None)
            server = uvicorn.Server(config)
            server.run(sockets=[listening_socket])
            started = server.started
    finally:
        if background is not None:
            background.stop(timeout=settings.http_graceful_shutdown_seconds)
    if not started:
        fail("the server did not start; see the log above", exit_code=STARTUP_FAILED_EXIT)
