"""Workers, scheduler, outbox consumer and rollout modes, on every engine, with real processes where
the behaviour is about processes (SIGKILL mid-task, SIGTERM)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from omnizap import pipeline
from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.platform.db import Database
from omnizap.platform.db.schema import domain_event_outbox, sticker_worker_task_queue
from omnizap.platform.db.types import utcnow
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED, PACK_UPDATED, publish_event
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.queue.protocol import Queue, RetryPolicy
from omnizap.platform.queue.scheduler import Schedule, Scheduler
from omnizap.platform.queue.specs import OUTBOX, TASK_QUEUE
from omnizap.platform.queue.waker import PostgresListenWaker
from omnizap.platform.queue.worker import QueueWorker, WorkerOptions
from omnizap.runtime import Runtime

pytestmark = pytest.mark.engines
tasks = sticker_worker_task_queue
TYPES = (
    "classification_cycle",
    "curation_cycle",
    "rebuild_cycle",
    "ranking_refresh",
    "object_storage_sync",
    "chat_message",
)


def rows(db: Database) -> list[dict[str, Any]]:
    with db.read() as connection:
        return [dict(row) for row in connection.execute(sa.select(tasks).order_by(tasks.c.id)).mappings()]


def make_due(db: Database) -> None:
    with db.transaction() as connection:
        connection.execute(tasks.update().values(scheduled_at=utcnow() - dt.timedelta(seconds=1)))


def runtime_for(db_settings: Settings, **overrides: Any) -> Runtime:
    settings = db_settings.model_copy(update={"feature_flag_cache_ttl_ms": 0, **overrides})
    return Runtime(settings=settings)


def set_flag(runtime: Runtime, name: str, *, enabled: bool, rollout: int = 100) -> None:
    runtime.flags.set_flag(name, enabled=enabled, rollout_percent=rollout, updated_by="test")


@pytest.fixture
def omnizap_cli(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke `omnizap …` with DATABASE_URL pointing at the engine under test."""
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    reset_settings_cache()
    yield lambda *args: CliRunner().invoke(cli, list(args))
    reset_settings_cache()


# --- failures, dead letters, replay ----------------------------------------------------------------
def test_an_always_failing_handler_ends_in_the_dlq_and_replay_runs_it_again(
    db: Database, db_settings: Settings, omnizap_cli: Any
):
    runtime = runtime_for(db_settings)
    calls: list[int] = []
    healed = {"now": False}

    def flaky(context: TaskContext, payload: Mapping[str, Any]) -> dict[str, Any]:
        calls.append(context.attempt)
        if not healed["now"]:
            raise RuntimeError("the classifier is unreachable")
        return {"ok": True}

    queue = Queue(db, TASK_QUEUE, retry=RetryPolicy(base_seconds=1, max_seconds=2))
    queue.enqueue(values={"task_type": "curation_cycle", "payload": {}}, idempotency_key="k", max_attempts=3)
    worker = QueueWorker(
        queue,
        {"curation_cycle": flaky},
        pipeline.base_context(runtime),
        WorkerOptions("w", ["curation_cycle"]),
    )
    outcomes = []
    for _ in range(3):
        outcomes.append(worker.run_once())
        make_due(db)
    assert outcomes == [1, 1, 1] and calls == [1, 2, 3]
    assert rows(db)[0]["status"] == "failed"
    listed = omnizap_cli("queue", "dlq", "list")
    assert listed.exit_code == 0 and "the classifier is unreachable" in listed.output
    (letter_id,) = [int(line.split()[0]) for line in listed.output.splitlines() if line.strip()]
    healed["now"] = True
    replayed = omnizap_cli("queue", "dlq", "replay", str(letter_id))
    assert replayed.exit_code == 0, replayed.output
    assert worker.run_once() == 1
    assert rows(db)[0]["status"] == "completed" and calls[-1] == 1
    again = omnizap_cli("queue", "dlq", "replay", str(letter_id))
    assert again.exit_code == 1 and "already replayed" in again.output
    bad = omnizap_cli("queue", "dlq", "replay", "abc")
    assert bad.exit_code == 2


def test_queue_cli_status_purge_and_enqueue_refuse_bad_input(db: Database, omnizap_cli: Any):
    status = omnizap_cli("queue", "status", "--json")
    assert status.exit_code == 0 and '"tasks"' in status.output
    bad_age = omnizap_cli("queue", "purge", "--older-than", "soon")
    assert bad_age.exit_code == 2 and "not a duration" in bad_age.output
    assert omnizap_cli("queue", "purge", "--older-than", "1h").exit_code == 0
    bad_payload = omnizap_cli("queue", "enqueue", "curation_cycle", "--payload", "{not json")
    assert bad_payload.exit_code == 1
    unknown = omnizap_cli("queue", "enqueue", "format_disk")
    assert unknown.exit_code == 1 and "unknown task type" in unknown.output
    assert rows(db) == []


# --- a worker killed mid-task ----------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from omnizap import pipeline
    from omnizap.config import Settings, reset_settings_cache
    from omnizap.platform.queue.protocol import Queue
    from omnizap.platform.queue.specs import TASK_QUEUE
    from omnizap.platform.queue.worker import QueueWorker, WorkerOptions
    from omnizap.runtime import Runtime

    marker = Path(sys.argv[2])
    def hang(context, payload):
        marker.write_text(str(context.task_id))
        time.sleep(3600)  # killed long before this ends

    runtime = Runtime(settings=Settings(_env_file=None, database_url=sys.argv[1]))
    queue = Queue(runtime.database, TASK_QUEUE, lease_seconds=600)
    worker = QueueWorker(queue, {"curation_cycle": hang}, pipeline.base_context(runtime),
                         WorkerOptions("doomed", ["curation_cycle"]))
    worker.run_once()
    """
)


def test_a_worker_killed_with_sigkill_mid_task_is_rerun_after_its_lease(
    db: Database, db_settings: Settings, tmp_path: Path
):
    queue = Queue(db, TASK_QUEUE, lease_seconds=600)
    queue.enqueue(values={"task_type": "curation_cycle", "payload": {"n": 1}}, idempotency_key="k")
    marker = tmp_path / "started"
    child = subprocess.Popen([sys.executable, "-c", CHILD, db_settings.database_url, str(marker)])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the worker process exited before starting the task"
            assert time.monotonic() < deadline, "the worker never started the task"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    (stuck,) = rows(db)
    assert stuck["status"] == "processing" and stuck["attempts"] == 1
    finished: list[int] = []
    survivor = QueueWorker(
        queue,
        {"curation_cycle": lambda context, payload: finished.append(context.attempt) or {}},
        pipeline.base_context(runtime_for(db_settings)),
        WorkerOptions("survivor", ["curation_cycle"]),
    )
    assert survivor.run_once() == 0  # the lease still runs
    with db.transaction() as connection:  # let the lease run out instead of waiting 10 minutes
        connection.execute(tasks.update().values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert survivor.run_once() == 1
    (done,) = rows(db)
    assert done["status"] == "completed" and done["attempts"] == 2 and finished == [2]


def test_the_worker_command_stops_gracefully_on_sigterm(db: Database, db_settings: Settings):
    env = {**os.environ, "DATABASE_URL": db_settings.database_url, "LOG_FORMAT": "text"}
    process = subprocess.Popen(
        [sys.executable, "-m", "omnizap.cli.main", "worker", "outbox"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, process.kill)  # a hung start fails the test instead of CI
    watchdog.start()
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "outbox consumer" in line and "started" in line:
                break
        else:
            pytest.fail("the worker never started: " + "".join(lines))
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        rest = process.stderr.read()
        assert "SIGTERM: finishing the current task" in rest and "stopped" in rest
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()


# --- rollout modes ---------------------------------------------------------------------------------
def test_at_a_partial_rollout_each_type_is_consumed_by_exactly_one_mode_per_cohort(
    db: Database, db_settings: Settings
):
    consumed: dict[tuple[str, str], set[str]] = defaultdict(set)  # (cohort, type) -> modes

    def recorder(cohort: str, mode: str) -> dict[str, Any]:
        def handle(context: TaskContext, payload: Mapping[str, Any]) -> dict[str, Any]:
            consumed[(cohort, context.task_type)].add(mode)
            return {}

        return {task_type: handle for task_type in TYPES}

    base = runtime_for(db_settings)
    set_flag(base, "enable_worker_dedicated_processes", enabled=True, rollout=50)
    queue = pipeline.task_queue(base)
    cohorts = [f"host-{index}" for index in range(8)]
    for cohort in cohorts:
        runtime = runtime_for(db_settings, sticker_worker_pipeline_cohort_key=cohort)
        for task_type in TYPES:
            queue.enqueue(
                values={"task_type": task_type, "payload": {}}, idempotency_key=f"{cohort}:{task_type}"
            )
        consumers = [
            *pipeline.inline_workers(runtime, handlers=recorder(cohort, "inline")),
            *(
                pipeline.dedicated_worker(runtime, name, handlers=recorder(cohort, "dedicated"))
                for name in pipeline.WORKER_TASK_TYPES
            ),
        ]
        for consumer in consumers:
            consumer.run_once()
        assert {row["status"] for row in rows(db)} == {"completed"}, f"a type was left unconsumed in {cohort}"
    assert set(consumed) == {(cohort, task_type) for cohort in cohorts for task_type in TYPES}
    assert all(len(modes) == 1 for modes in consumed.values())
    modes = Counter(next(iter(modes)) for modes in consumed.values())
    assert modes["inline"] > 0 and modes["dedicated"] > 0  # 50% really splits the types


def test_the_flag_moves_all_types_between_modes(db: Database, db_settings: Settings):
    runtime = runtime_for(db_settings, sticker_worker_pipeline_cohort_key="solo")
    handlers = {task_type: (lambda context, payload: {}) for task_type in TYPES}
    inline = pipeline.inline_workers(runtime, handlers=handlers)
    dedicated = [
        pipeline.dedicated_worker(runtime, name, handlers=handlers) for name in pipeline.WORKER_TASK_TYPES
    ]
    assert all(worker.allowed_kinds() for worker in inline)
    assert not any(worker.allowed_kinds() for worker in dedicated)
    set_flag(runtime, "enable_worker_dedicated_processes", enabled=True)
    assert not any(worker.allowed_kinds() for worker in inline)
    assert all(worker.allowed_kinds() for worker in dedicated)
    with db.transaction() as connection:  # the runbook's emergency disable, verbatim in spirit
        connection.exec_driver_sql(
            "UPDATE feature_flag SET is_enabled = 0, rollout_percent = 0, updated_by = 'ops' "
            "WHERE flag_name IN ('enable_worker_dedicated_processes')"
        )
    assert all(worker.allowed_kinds() for worker in inline)


# --- scheduler -------------------------------------------------------------------------------------
def test_the_scheduler_enqueues_each_cadence_once_and_never_piles_up(db: Database):
    clock = {"now": 1_080_000.0}  # a multiple of both cadences, so windows start together
    queue = Queue(db, TASK_QUEUE)
    scheduler = Scheduler(
        queue,
        [Schedule("classification_cycle", 120, priority=70), Schedule("curation_cycle", 300)],
        clock=lambda: clock["now"],
    )
    assert sorted(scheduler.tick()) == ["classification_cycle", "curation_cycle"]
    assert scheduler.tick() == []  # still pending: nothing piles up
    clock["now"] += 600
    assert scheduler.tick() == []  # still pending after many cadences
    for item in queue.claim("w", limit=5):
        queue.complete(item)
    assert sorted(scheduler.tick()) == ["classification_cycle", "curation_cycle"]
    for item in queue.claim("w", limit=5):
        queue.complete(item)
    assert scheduler.tick() == []  # this window's cycle already ran
    clock["now"] += 121
    assert scheduler.tick() == ["classification_cycle"]
    (item,) = queue.claim("w", kinds=["classification_cycle"])
    queue.fail(item, "transient")  # waiting for its retry counts as pending
    clock["now"] += 240
    assert scheduler.tick() == ["curation_cycle"]
    counts = Counter((row["task_type"], row["status"]) for row in rows(db))
    assert counts[("classification_cycle", "pending")] == 1


def test_schedules_follow_the_settings_and_the_types_that_exist(settings: Settings):
    handlers = {"classification_cycle": lambda c, p: {}, "ranking_refresh": lambda c, p: {}}
    planned = pipeline.schedules(
        settings.model_copy(update={"sticker_worker_classification_cadence_ms": 60_000}), handlers
    )
    assert [(s.task_type, s.cadence_seconds) for s in planned] == [
        ("classification_cycle", 60.0),
        ("ranking_refresh", settings.sticker_score_snapshot_refresh_interval_ms / 1000),
    ]


# --- outbox consumer -------------------------------------------------------------------------------
def publish_pack_events(db: Database, pack_ids: list[str], start: int = 0) -> None:
    with db.transaction() as connection:
        for index, pack_id in enumerate(pack_ids, start=start):
            publish_event(
                connection,
                event_type=ENGAGEMENT_RECORDED if index % 2 else PACK_UPDATED,
                aggregate_type="sticker_pack",
                aggregate_id=pack_id,
                payload={"pack_id": pack_id, "n": index},
                idempotency_key=f"test:{pack_id}:{index}",
            )


def test_a_burst_of_events_becomes_one_merged_refresh_in_the_same_transaction(
    db: Database, db_settings: Settings
):
    runtime = runtime_for(db_settings)
    handlers = {"ranking_refresh": lambda c, p: {}, "classification_cycle": lambda c, p: {}}
    consumer = pipeline.outbox_consumer(runtime, mode="inline", handlers=handlers)
    publish_pack_events(db, ["p1", "p2", "p1", "p3", "p2"] * 20)
    assert consumer.run_once() == 50
    assert consumer.run_once() == 50
    assert consumer.run_once() == 0
    refreshes = [row for row in rows(db) if row["task_type"] == "ranking_refresh"]
    assert len(refreshes) == 2  # one per batch, not one per event
    assert all(sorted(row["payload"]["pack_ids"]) == ["p1", "p2", "p3"] for row in refreshes)
    with db.read() as connection:
        statuses = Counter(connection.execute(sa.select(domain_event_outbox.c.status)).scalars())
    assert statuses == {"completed": 100}


def test_the_outbox_flag_pauses_consumption_without_losing_events(db: Database, db_settings: Settings):
    runtime = runtime_for(db_settings)
    consumer = pipeline.outbox_consumer(runtime, mode="inline", handlers={"ranking_refresh": lambda c, p: {}})
    publish_pack_events(db, ["p1", "p2"])
    set_flag(runtime, "enable_domain_event_outbox", enabled=False)
    assert consumer.run_once() == 0
    set_flag(runtime, "enable_domain_event_outbox", enabled=True)
    assert consumer.run_once() == 2


def test_a_failing_event_handler_fails_only_its_event(db: Database, db_settings: Settings):
    runtime = runtime_for(db_settings)
    consumer = pipeline.outbox_consumer(runtime, mode="inline", handlers={})

    def broken(context: TaskContext, event: Any) -> list[Any]:
        if event.aggregate_id == "bad":
            raise ValueError("cannot handle this pack")
        return []

    consumer.handlers = {PACK_UPDATED: broken, ENGAGEMENT_RECORDED: broken}
    publish_pack_events(db, ["good", "bad"])
    assert consumer.run_once() == 2
    with db.read() as connection:
        found = {
            row.aggregate_id: (row.status, row.last_error)
            for row in connection.execute(sa.select(domain_event_outbox))
        }
    assert found["good"] == ("completed", None)
    assert found["bad"][0] == "pending" and "cannot handle this pack" in found["bad"][1]


def test_postgres_listen_wakes_a_waiting_worker(db: Database, engine_name: str):
    if engine_name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    waker = PostgresListenWaker(db, [TASK_QUEUE.notify_channel])
    try:
        assert waker.wait(0.01) is False  # connects and listens; nothing yet
        Queue(db, TASK_QUEUE).enqueue(values={"task_type": "curation_cycle"}, idempotency_key="wake")
        assert waker.wait(30) is True
        assert waker.wait(0.01) is False
    finally:
        waker.close()


def test_outbox_spec_and_flags_reader_share_the_runtime(db_settings: Settings):
    runtime = runtime_for(db_settings)
    assert isinstance(runtime.flags, FeatureFlags)
    assert pipeline.outbox_queue(runtime).spec is OUTBOX


def test_a_stopping_worker_releases_the_rest_of_its_batch(db: Database, db_settings: Settings):
    runtime = runtime_for(db_settings)
    queue = Queue(db, TASK_QUEUE)
    for index in range(3):
        queue.enqueue(values={"task_type": "curation_cycle", "payload": {}}, idempotency_key=f"k{index}")
    ran: list[int | None] = []

    def handle(context: TaskContext, payload: Mapping[str, Any]) -> dict[str, Any]:
        ran.append(context.task_id)
        worker.stop()  # SIGTERM arrives while the first task runs
        return {}

    worker = QueueWorker(
        queue,
        {"curation_cycle": handle},
        pipeline.base_context(runtime),
        WorkerOptions("w", ["curation_cycle"], batch_size=3),
    )
    assert worker.run_once() == 1
    states = Counter((row["status"], row["attempts"]) for row in rows(db))
    assert states == {("completed", 1): 1, ("pending", 0): 2}
    worker.run()  # already stopping: returns at once
    assert len(ran) == 1


def test_serve_runs_several_quick_chat_consumers(db: Database, db_settings: Settings):
    """People wait on chat messages: two arriving together run side by side, and an idle chat
    consumer looks every CHAT_WORKER_POLL_INTERVAL_MS, not at the 4 s cadence of the cycles."""
    runtime = runtime_for(
        db_settings,
        chat_worker_threads=2,
        chat_worker_poll_interval_ms=250,
        sticker_worker_pipeline_poller_interval_ms=4000,
    )
    both_running = threading.Barrier(2, timeout=60)

    def handle(context: TaskContext, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        both_running.wait()  # breaks (and the task fails) unless the other message runs meanwhile
        return {}

    handlers = {pipeline.CHAT_MESSAGE: handle, pipeline.RANKING_REFRESH: lambda context, payload: {}}
    workers = pipeline.inline_workers(runtime, handlers=handlers)
    chat = [worker for worker in workers if worker.options.kinds == (pipeline.CHAT_MESSAGE,)]
    others = [worker for worker in workers if worker.options.kinds != (pipeline.CHAT_MESSAGE,)]
    assert len(chat) == 2 and len({worker.options.name for worker in chat}) == 2
    assert {worker.options.poll_interval for worker in chat} == {0.25}
    assert [worker.options.poll_interval for worker in others] == [4.0]

    queue = pipeline.task_queue(runtime)
    for number in range(2):
        queue.enqueue(
            values={"task_type": pipeline.CHAT_MESSAGE, "payload": {}}, idempotency_key=f"chat:{number}"
        )
    threads = [threading.Thread(target=worker.run_once) for worker in chat]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [row["status"] for row in rows(db)] == ["completed", "completed"]


def test_chat_consumers_default_to_the_usable_cpus_up_to_four():
    settings = Settings(_env_file=None)
    assert settings.chat_consumers == max(1, min(4, len(os.sched_getaffinity(0))))
    assert Settings(_env_file=None, chat_worker_threads=7).chat_consumers == 7
