"""`omnizap worker NAME`: one dedicated consumer process (a task type, the outbox, or the scheduler).

SIGTERM or Ctrl-C stops it gracefully: the running task finishes and is marked done, claimed tasks
not yet started go back to the queue, and the process exits 0. A second signal exits at once; the
interrupted task's lease then expires and another worker runs it again.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Protocol

import click

from omnizap.cli.common import AppContext, fail, pass_app, require_migrated_database
from omnizap.pipeline import WORKER_NAMES, WORKER_TASK_TYPES


class Stoppable(Protocol):
    def stop(self) -> None: ...


def _install_signal_handlers(target: Stoppable) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"{signal.Signals(signum).name}: finishing the current task, then stopping", err=True)
        target.stop()
        # A second signal ends the process at once (the default action).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


@click.command("worker")
@click.argument("name", type=click.Choice(WORKER_NAMES))
@click.option("--once", is_flag=True, help="Run one tick (claim and run what is due) and exit.")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve this worker's Prometheus metrics on 0.0.0.0:PORT/metrics.",
)
@pass_app
def worker(app: AppContext, name: str, once: bool, metrics_port: int | None) -> None:
    """Run a dedicated worker: classification, curation, rebuild, ranking, storage, chat, outbox or
    scheduler.

    Task workers consume their task type while `enable_worker_dedicated_processes` gives it to the
    dedicated workers for this host's cohort (`omnizap flags check enable_worker_dedicated_processes
    --subject <cohort>:<task type>`); otherwise they idle and the server's inline poller consumes it.
    """
    from omnizap import pipeline
    from omnizap.platform.logging import configure_logging

    runtime = app.runtime
    configure_logging(runtime.settings)
    require_migrated_database(app)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    if name == "scheduler":
        target = pipeline.scheduler(runtime)
        if once:
            click.echo(f"scheduled: {', '.join(target.tick()) or 'nothing due'}")
            return
        interval = runtime.settings.sticker_worker_scheduler_interval_ms / 1000
        _install_signal_handlers(target)
        target.run(interval)
        return
    if name == "outbox":
        consumer = pipeline.outbox_consumer(runtime, mode="dedicated")
        if once:
            click.echo(f"handled {consumer.run_once()} event(s)")
            return
        _install_signal_handlers(consumer)
        consumer.run()
        return
    try:
        task_worker = pipeline.dedicated_worker(runtime, name)
    except ValueError as exc:
        if name != "storage" or once:
            fail(str(exc))
        # Idle instead of exiting: a unit with Restart=on-failure would otherwise loop on it.
        click.echo(f"{exc}; idling until stopped", err=True)
        idle = _Idle()
        _install_signal_handlers(idle)
        idle.wait()
        return
    if once:
        kinds = task_worker.allowed_kinds()
        if not kinds:
            click.echo(
                f"{', '.join(WORKER_TASK_TYPES[name])} is consumed by the inline poller for this cohort "
                "(enable_worker_dedicated_processes is off for it); nothing run"
            )
            return
        click.echo(f"ran {task_worker.run_once()} task(s)")
        return
    _install_signal_handlers(task_worker)
    task_worker.run()


class _Idle:
    def __init__(self) -> None:
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def wait(self) -> None:
        while not self._stopped.wait(3600):
            pass
