"""The queue protocol on every engine: idempotent enqueue, atomic claims, leases, backoff, DLQ, replay."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    domain_event_outbox,
    sticker_worker_task_dlq,
    sticker_worker_task_queue,
)
from omnizap.platform.db.types import utcnow
from omnizap.platform.outbox.events import PACK_UPDATED, publish_event
from omnizap.platform.queue.protocol import ClaimedItem, Queue, QueueError, RetryPolicy, retry_deadlocks
from omnizap.platform.queue.specs import OUTBOX, TASK_QUEUE

pytestmark = pytest.mark.engines

tasks = sticker_worker_task_queue
effects_metadata = sa.MetaData()
effects = sa.Table(
    "test_task_effect",
    effects_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.BigInteger, nullable=False),
    sa.Column("worker", sa.String(16), nullable=False),
)


def task_queue(db: Database, **kwargs: object) -> Queue:
    return Queue(
        db, TASK_QUEUE, retry=RetryPolicy(base_seconds=10, max_seconds=100, rng=random.Random(7)), **kwargs
    )


def enqueue(queue: Queue, kind: str = "curation_cycle", key: str | None = None, **kwargs: object) -> bool:
    return queue.enqueue(values={"task_type": kind, "payload": {"n": 1}}, idempotency_key=key, **kwargs)


def row(db: Database, task_id: int) -> dict:
    with db.read() as connection:
        return dict(connection.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().one())


def expire_leases(db: Database) -> None:
    with db.transaction() as connection:
        connection.execute(tasks.update().values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))


def make_due(db: Database) -> None:
    with db.transaction() as connection:
        connection.execute(tasks.update().values(scheduled_at=utcnow() - dt.timedelta(seconds=1)))


def test_duplicate_keys_insert_once_and_keep_the_stronger_request(db: Database):
    queue = task_queue(db)
    later = utcnow() + dt.timedelta(hours=1)
    assert enqueue(queue, key="pipeline:curation_cycle:1", priority=20, available_at=later)
    assert not enqueue(queue, key="pipeline:curation_cycle:1", priority=60)
    with db.read() as connection:
        rows = connection.execute(sa.select(tasks)).mappings().all()
    assert len(rows) == 1 and rows[0]["priority"] == 60 and rows[0]["scheduled_at"] < later
    assert len(queue.claim("w")) == 1


def test_a_row_needs_its_kind(db: Database):
    with pytest.raises(QueueError, match="task_type"):
        task_queue(db).enqueue(values={"payload": {}}, idempotency_key="x")


def test_claims_follow_priority_then_age_and_respect_kinds_and_schedule(db: Database):
    queue = task_queue(db)
    enqueue(queue, "curation_cycle", "a", priority=10)
    enqueue(queue, "curation_cycle", "b", priority=90)
    enqueue(queue, "rebuild_cycle", "c", priority=99)
    enqueue(queue, "curation_cycle", "d", priority=99, available_at=utcnow() + dt.timedelta(hours=1))
    claimed = queue.claim("w", kinds=["curation_cycle"], limit=5)
    assert [item.row["idempotency_key"] for item in claimed] == ["b", "a"]
    assert all(item.attempts == 1 and item.payload == {"n": 1} for item in claimed)
    assert queue.claim("w", kinds=[]) == []
    assert [item.kind for item in queue.claim("w", limit=5)] == ["rebuild_cycle"]


def test_four_concurrent_workers_run_2000_tasks_exactly_once(db: Database):
    effects_metadata.create_all(db.engine)
    try:
        queue = task_queue(db)
        with db.transaction() as connection:
            for index in range(2000):
                queue.enqueue(
                    values={"task_type": "curation_cycle", "payload": {"n": index}},
                    idempotency_key=f"bulk:{index}",
                    connection=connection,
                )
        errors: list[BaseException] = []

        def work(name: str) -> None:
            try:
                while True:
                    batch = queue.claim(name, limit=16)
                    if not batch:
                        return
                    for item in batch:

                        def finish(item: ClaimedItem = item) -> None:
                            with db.transaction() as connection:
                                connection.execute(effects.insert().values(task_id=item.id, worker=name))
                                assert queue.complete(item, connection=connection)

                        retry_deadlocks(finish)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"w{index}",)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with db.read() as connection:
            done = Counter(connection.execute(sa.select(effects.c.task_id)).scalars())
            statuses = Counter(connection.execute(sa.select(tasks.c.status)).scalars())
            workers = set(connection.execute(sa.select(effects.c.worker)).scalars())
        assert len(done) == 2000 and set(done.values()) == {1}
        assert statuses == {"completed": 2000}
        assert len(workers) >= 2  # the work really was shared
    finally:
        effects_metadata.drop_all(db.engine)


def test_an_expired_lease_is_reclaimed_and_the_old_holder_cannot_finish(db: Database):
    queue = task_queue(db, lease_seconds=60)
    enqueue(queue, key="k")
    (first,) = queue.claim("dead-worker")
    assert queue.claim("other") == []  # leased
    expire_leases(db)
    (second,) = queue.claim("other")
    assert second.id == first.id and second.attempts == 2 and second.token != first.token
    assert not queue.heartbeat(first)
    assert not queue.complete(first)
    assert queue.fail(first, "late") == "lost"
    assert queue.heartbeat(second)
    assert queue.complete(second)
    assert row(db, first.id)["status"] == "completed"


def test_heartbeat_extends_the_lease(db: Database):
    queue = task_queue(db, lease_seconds=600)
    enqueue(queue, key="k")
    (item,) = queue.claim("w")
    before = row(db, item.id)["lease_expires_at"]
    with db.transaction() as connection:
        connection.execute(tasks.update().values(lease_expires_at=before - dt.timedelta(seconds=500)))
    assert queue.heartbeat(item)
    assert row(db, item.id)["lease_expires_at"] > before - dt.timedelta(seconds=1)


def test_failures_back_off_exponentially_then_dead_letter_and_replay(db: Database):
    queue = task_queue(db)
    enqueue(queue, key="always-fails", max_attempts=3)
    delays = []
    for attempt in range(1, 4):
        (item,) = queue.claim("w")
        assert item.attempts == attempt
        started = utcnow()
        outcome = queue.fail(item, ValueError(f"boom {attempt}"))
        if attempt < 3:
            assert outcome == "retry"
            current = row(db, item.id)
            assert current["status"] == "pending" and current["last_error"] == f"boom {attempt}"
            delays.append((current["scheduled_at"] - started).total_seconds())
            assert queue.claim("w") == []  # not due yet
            make_due(db)
        else:
            assert outcome == "dead"
    assert 5 <= delays[0] <= 10.5 and 10 <= delays[1] <= 20.5  # base 10 s, doubled, half-jittered
    assert row(db, item.id)["status"] == "failed"
    (letter,) = queue.dead_letters()
    assert letter.ref_id == item.id and letter.last_error == "boom 3" and letter.attempts == 3
    assert letter.kind == "curation_cycle" and letter.row["payload"] == {"n": 1}
    assert queue.replay(letter.id) == item.id
    assert queue.dead_letters() == []
    with pytest.raises(QueueError, match="already replayed"):
        queue.replay(letter.id)
    (again,) = queue.claim("w")
    assert again.attempts == 1
    assert queue.complete(again)


def test_replaying_a_purged_row_recreates_it_and_failing_again_lists_it_again(db: Database):
    queue = task_queue(db)
    enqueue(queue, key="k", max_attempts=1)
    (item,) = queue.claim("w")
    assert queue.fail(item, "nope") == "dead"
    with db.transaction() as connection:
        connection.execute(tasks.delete())
    (letter,) = queue.dead_letters()
    new_id = queue.replay(letter.id)
    assert row(db, new_id)["idempotency_key"] == "k" and row(db, new_id)["status"] == "pending"
    (item,) = queue.claim("w")
    assert queue.fail(item, "nope again") == "dead"
    (listed,) = queue.dead_letters()
    assert listed.ref_id == new_id and listed.last_error == "nope again"
    with pytest.raises(QueueError, match="no dead letter 999999"):
        queue.replay(999_999)


def test_a_lease_lost_on_the_last_attempt_goes_to_the_dead_letters(db: Database):
    queue = task_queue(db)
    enqueue(queue, key="k", max_attempts=1)
    queue.claim("crashed")
    expire_leases(db)
    assert queue.claim("w") == []
    (letter,) = queue.dead_letters()
    assert "lease expired" in (letter.last_error or "")


def test_release_gives_rows_back_without_counting_the_attempt(db: Database):
    queue = task_queue(db)
    enqueue(queue, key="k")
    (item,) = queue.claim("w")
    assert queue.release([item]) == 1
    assert row(db, item.id)["status"] == "pending" and row(db, item.id)["attempts"] == 0


def test_purge_keeps_everything_not_completed(db: Database):
    queue = task_queue(db)
    for key in ("done", "waiting", "dead"):
        enqueue(queue, key=key, max_attempts=1)
    claimed = {item.row["idempotency_key"]: item for item in queue.claim("w", limit=3)}
    queue.complete(claimed["done"])
    queue.fail(claimed["dead"], "x")
    queue.release([claimed["waiting"]])
    with pytest.raises(QueueError, match="negative"):
        queue.purge(older_than=dt.timedelta(seconds=-1))
    assert queue.purge(older_than=dt.timedelta(days=1)) == (0, 0)
    assert queue.purge(older_than=dt.timedelta(0)) == (1, 0)
    with db.read() as connection:
        assert sorted(connection.execute(sa.select(tasks.c.idempotency_key)).scalars()) == ["dead", "waiting"]
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(sticker_worker_task_dlq)).scalar() == 1
        )


def test_status_counts_and_oldest_due(db: Database):
    queue = task_queue(db)
    enqueue(queue, "curation_cycle", "a")
    enqueue(queue, "rebuild_cycle", "b")
    queue.claim("w", kinds=["rebuild_cycle"])
    assert queue.status_counts() == {"curation_cycle": {"pending": 1}, "rebuild_cycle": {"processing": 1}}
    assert queue.oldest_due() is not None


def test_outbox_events_roll_back_with_their_transaction_and_dedupe_by_key(db: Database):
    def publish(connection: sa.Connection, version: int) -> bool:
        return publish_event(
            connection,
            event_type=PACK_UPDATED,
            aggregate_type="sticker_pack",
            aggregate_id="p1",
            payload={"pack_id": "p1", "version": version},
            idempotency_key=f"pack:p1:v{version}",
        )

    with pytest.raises(RuntimeError), db.transaction() as connection:
        assert publish(connection, 1)
        raise RuntimeError("the change failed")
    with db.transaction() as connection:
        assert publish(connection, 1)
        assert not publish(connection, 1)  # a retried write is deduplicated
        assert publish(connection, 2)  # a later change is delivered
    outbox = Queue(db, OUTBOX)
    claimed = outbox.claim("consumer", limit=10)
    assert [item.payload["version"] for item in claimed] == [1, 2]
    with db.read() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(domain_event_outbox)).scalar() == 2


def test_complete_many_finishes_only_rows_still_held(db: Database):
    queue = task_queue(db)
    for key in ("a", "b", "c"):
        enqueue(queue, key=key)
    batch = queue.claim("w", limit=3)
    expire_leases(db)
    (stolen,) = queue.claim("other", limit=1)
    assert queue.complete_many(batch) == 2
    assert queue.complete_many([]) == 0
    assert row(db, stolen.id)["status"] == "processing"


def test_deadlock_victims_are_recognised_on_each_driver():
    from omnizap.platform.queue.protocol import is_deadlock

    class Original(Exception):
        def __init__(self, *args: object, sqlstate: str | None = None) -> None:
            super().__init__(*args)
            self.sqlstate = sqlstate

    def wrapped(original: Exception) -> sa.exc.DBAPIError:
        return sa.exc.OperationalError("UPDATE …", {}, original)

    assert is_deadlock(wrapped(Original(1213, "Deadlock found when trying to get lock")))
    assert is_deadlock(wrapped(Original("deadlock detected", sqlstate="40P01")))
    assert not is_deadlock(wrapped(Original(1062, "Duplicate entry")))
    assert not is_deadlock(wrapped(Original("syntax error", sqlstate="42601")))


def test_the_outbox_consumer_keeps_its_batch_leased_while_it_works(db: Database):
    """A short outbox lease (60 s by default) only bounds crash recovery: the consumer renews its
    batch's leases while a handler runs, so a slow batch is neither taken over nor lost."""
    from omnizap.config import Settings
    from omnizap.platform.outbox.consumer import ConsumerOptions, OutboxConsumer
    from omnizap.platform.queue.context import TaskContext

    assert Settings(_env_file=None).domain_event_outbox_lock_timeout_seconds == 60
    with db.transaction() as connection:
        for version in (1, 2):
            publish_event(
                connection,
                event_type=PACK_UPDATED,
                aggregate_type="sticker_pack",
                aggregate_id="p1",
                payload={"pack_id": "p1", "version": version},
                idempotency_key=f"pack:p1:v{version}",
            )
    outbox = Queue(db, OUTBOX, lease_seconds=60)
    started, release = threading.Event(), threading.Event()

    def slow_handler(_context: TaskContext, _event: object) -> None:
        started.set()
        assert release.wait(60), "the test never released the handler"

    consumer = OutboxConsumer(
        outbox,
        task_queue(db),
        {PACK_UPDATED: slow_handler},
        TaskContext(settings=Settings(_env_file=None), database=db, storage=None, flags=None),  # type: ignore[arg-type]
        ConsumerOptions(name="outbox-test", lease_renew_seconds=0.05),
    )
    handled: list[int] = []
    runner = threading.Thread(target=lambda: handled.append(consumer.run_once()))
    runner.start()
    try:
        assert started.wait(30)
        with db.read() as connection:
            claimed_until = connection.execute(sa.select(sa.func.max(domain_event_outbox.c.lease_expires_at)))
            first_lease = claimed_until.scalar()
        renewed = False
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
        while not renewed and dt.datetime.now(dt.UTC) < deadline:
            with db.read() as connection:
                leases = connection.execute(sa.select(domain_event_outbox.c.lease_expires_at)).scalars().all()
            renewed = all(lease is not None and lease > first_lease for lease in leases)
            release.wait(0.05)
        assert renewed, "the batch's leases were never renewed while its handler ran"
    finally:
        release.set()
        runner.join(timeout=60)
    assert handled == [2]
    with db.read() as connection:
        statuses = connection.execute(sa.select(domain_event_outbox.c.status)).scalars().all()
    assert statuses == ["completed", "completed"]
