"""Platform leases (`platform_lease`) and their three users on every engine, with a fake clock.

- A lease whose holder died (no renewals) passes to the next holder after the configured timeout
  (STICKER_WORKER_TASK_LOCK_TIMEOUT_SECONDS for task leases), not after a fixed 300 s.
- A live holder's background renewals keep it.
- A task that finds its lease taken is deferred (pending again, no attempt counted, outcome
  `deferred` in the log, the metric and `omnizap queue status`), never recorded as completed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from test_catalog_support import wait_until
from test_curation_cycles import _dataset, _metrics

from omnizap.catalog import rankings
from omnizap.catalog.rankings import RankingStore
from omnizap.config import Settings
from omnizap.intelligence.classification.cycle import PENDING_LEASE, ClassificationCycle
from omnizap.intelligence.classification.service import Tally
from omnizap.intelligence.curation.cycle import run_cycle
from omnizap.intelligence.curation.policy import LEASE_NAME as CURATION_LEASE
from omnizap.pipeline import task_handlers
from omnizap.platform import leases
from omnizap.platform.db import Database
from omnizap.platform.db.schema import platform_lease, sticker_asset, sticker_worker_task_queue
from omnizap.platform.db.types import utcnow
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.queue.context import TaskContext
from omnizap.platform.queue.protocol import Queue
from omnizap.platform.queue.specs import TASK_QUEUE
from omnizap.platform.queue.worker import QueueWorker, WorkerOptions
from omnizap.platform.storage import LocalStorage

pytestmark = pytest.mark.engines

TASK_LEASE_SECONDS = 37  # STICKER_WORKER_TASK_LOCK_TIMEOUT_SECONDS in these tests: not 300, not 900
CURATION_LEASE_SECONDS = 23  # STICKER_AUTO_PACK_BY_TAGS_LEASE_SECONDS, curation's own knob
OWNER = "5511977776666@s.whatsapp.net"


class FakeClock:
    """The leases' clock: starts at the real now (queue rows use the real one) and moves only when
    told to."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(leases, "utcnow", fake)
    # Renew every 1/500 of the lease (≈ 70 ms) so a test sees renewals without waiting a third of it.
    monkeypatch.setattr(leases, "RENEW_SHARE", 1 / 500)
    return fake


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_worker_task_lock_timeout_seconds=TASK_LEASE_SECONDS,
        sticker_auto_pack_by_tags_lease_seconds=CURATION_LEASE_SECONDS,
        sticker_pack_auto_collect_enabled=False,
        sticker_reprocess_queue_enabled=False,
    )


def lease_row(db: Database, name: str) -> Mapping[str, Any] | None:
    with db.read() as connection:
        return (
            connection.execute(sa.select(platform_lease).where(platform_lease.c.name == name))
            .mappings()
            .first()
        )


# --- the lease itself -------------------------------------------------------------------------------
def test_a_dead_holders_lease_passes_on_after_the_configured_timeout(
    db: Database, settings: Settings, clock: FakeClock
):
    ttl = leases.task_lease_seconds(settings)
    assert ttl == TASK_LEASE_SECONDS
    assert leases.acquire(db, "job", "dead-worker", ttl)  # then it dies: no renewal, no release
    clock.advance(TASK_LEASE_SECONDS - 1)
    assert not leases.acquire(db, "job", "next-worker", ttl)
    busy = leases.busy(db, "job")
    assert busy.holder == "dead-worker" and busy.retry_at == clock.now + dt.timedelta(seconds=1)
    clock.advance(1)
    assert leases.acquire(db, "job", "next-worker", ttl)
    assert lease_row(db, "job")["holder"] == "next-worker"


def test_a_live_holders_renewals_keep_the_lease(db: Database, settings: Settings, clock: FakeClock):
    ttl = leases.task_lease_seconds(settings)
    with leases.KeptLease(db, "job", "live-worker", ttl, interval=3600) as lease:  # beats by hand
        for _ in range(5):  # 5 × 30 s: far past one lease length
            clock.advance(30)
            assert lease.beat()
            assert not leases.acquire(db, "job", "other-worker", ttl)
        assert lease.held()
        # Taken over (as after a pause longer than the lease): the next renewal says so.
        clock.advance(ttl)
        assert leases.acquire(db, "job", "other-worker", ttl)
        assert not lease.beat() and not lease.held()
    assert lease_row(db, "job")["holder"] == "other-worker"  # leaving did not release another's lease


def test_a_kept_lease_renews_in_the_background_and_is_released(
    db: Database, settings: Settings, clock: FakeClock
):
    with leases.KeptLease(db, "job", "live-worker", leases.task_lease_seconds(settings)):
        first = lease_row(db, "job")["expires_at"]
        clock.advance(10)
        wait_until(lambda: lease_row(db, "job")["expires_at"] > first, "a background renewal")
        with (
            pytest.raises(leases.LeaseBusy, match="live-worker"),
            leases.KeptLease(db, "job", "other-worker", 60),
        ):
            pass
    assert lease_row(db, "job") is None


# --- every user of a lease: the configured length, renewed while held --------------------------------
class _PendingService:
    """Stands in for the classification service: calls `during` while it "classifies" one batch."""

    def __init__(self, during: Callable[[], None]) -> None:
        self.during = during

    def classify_and_store(self, assets: list[Mapping[str, Any]]) -> Tally:
        self.during()
        return Tally()


def _pending_asset(db: Database) -> None:
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert().values(
                id="00000000-0000-4000-8000-000000000001",
                owner_jid=OWNER,
                sha256="ab" * 32,
                size_bytes=100,
                storage_path="ab/cd/missing.webp",
            )
        )


def _run_classification(db: Database, settings: Settings, during: Callable[[], None]) -> str:
    _pending_asset(db)
    cycle = ClassificationCycle(
        settings=settings, database=db, storage=LocalStorage(settings.sticker_storage_dir), worker="t"
    )
    cycle._service = _PendingService(during)  # type: ignore[assignment]
    return cycle.run(reprocess_enabled=False).status


def _run_curation(db: Database, settings: Settings, during: Callable[[], None]) -> str:
    _dataset(db, count=300)
    calls: list[int] = []

    def heartbeat() -> bool:
        if not calls:
            during()
        calls.append(1)
        return True

    return run_cycle("curation", database=db, settings=settings, heartbeat=heartbeat, metrics=_metrics())[
        "status"
    ]


def _run_ranking(db: Database, settings: Settings, during: Callable[[], None]) -> str:
    calls: list[int] = []

    def heartbeat() -> bool:
        if not calls:
            during()
        calls.append(1)
        return True

    return RankingStore(db, settings, "test").refresh(None, heartbeat=heartbeat).outcome


USERS: dict[str, tuple[str, int, Callable[[Database, Settings, Callable[[], None]], str]]] = {
    "classification": (PENDING_LEASE, TASK_LEASE_SECONDS, _run_classification),
    "curation": (CURATION_LEASE, CURATION_LEASE_SECONDS, _run_curation),
    "ranking": (rankings.LEASE_NAME, TASK_LEASE_SECONDS, _run_ranking),
}


@pytest.mark.parametrize("user", list(USERS))
def test_each_lease_user_holds_its_lease_for_the_configured_time_and_renews_it(
    db: Database, settings: Settings, clock: FakeClock, user: str
):
    name, ttl, run = USERS[user]
    seen: list[Mapping[str, Any]] = []

    def during() -> None:
        row = lease_row(db, name)
        assert row is not None
        assert row["expires_at"] - row["acquired_at"] == dt.timedelta(seconds=ttl)
        # A live holder: past its first expiry, it still holds the lease because it renews it.
        clock.advance(ttl + 5)
        wait_until(
            lambda: lease_row(db, name)["expires_at"] == clock.now + dt.timedelta(seconds=ttl),
            f"{user} renewing its lease",
        )
        assert not leases.acquire(db, name, "someone-else", ttl)
        seen.append(row)

    assert run(db, settings, during) in ("completed", "ok", "published", "unchanged")
    assert seen, f"the {user} job never ran while holding its lease"
    assert lease_row(db, name) is None  # released at the end


@pytest.mark.parametrize("user", list(USERS))
def test_a_dead_holders_lease_blocks_each_user_only_for_the_configured_time(
    db: Database, settings: Settings, clock: FakeClock, user: str
):
    name, ttl, run = USERS[user]
    assert leases.acquire(db, name, "dead-worker", ttl)  # what the dead worker had taken
    ran: list[bool] = []
    clock.advance(ttl - 1)
    assert not leases.acquire(db, name, "probe", ttl)  # still blocked a second before the end
    clock.advance(1)
    assert run(db, settings, lambda: ran.append(True)) in ("completed", "ok", "published", "unchanged")
    assert ran


# --- a task that finds the lease taken is deferred, not completed -----------------------------------
TASK_TYPES = {
    "classification": ("classification_cycle", PENDING_LEASE, TASK_LEASE_SECONDS),
    "curation": ("curation_cycle", CURATION_LEASE, CURATION_LEASE_SECONDS),
    "rebuild": ("rebuild_cycle", CURATION_LEASE, CURATION_LEASE_SECONDS),
    "ranking": ("ranking_refresh", rankings.LEASE_NAME, TASK_LEASE_SECONDS),
}


@pytest.fixture
def no_lease_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(rankings, "LEASE_WAIT_TASK_SECONDS", 0.0)  # defer at once instead of 10 s
    yield


def _deferred_metric(task_type: str) -> float:
    value = REGISTRY.get_sample_value(
        "omnizap_worker_tasks_total",
        {"queue": TASK_QUEUE.name, "task_type": task_type, "mode": "dedicated", "outcome": "deferred"},
    )
    return value or 0.0


@pytest.mark.parametrize("user", list(TASK_TYPES))
def test_a_task_that_finds_its_lease_taken_is_deferred_not_completed(
    db: Database, settings: Settings, clock: FakeClock, no_lease_wait: None, user: str
):
    task_type, name, ttl = TASK_TYPES[user]
    assert leases.acquire(db, name, "another-worker", ttl)
    queue = Queue(db, TASK_QUEUE, lease_seconds=settings.sticker_worker_task_lock_timeout_seconds)
    queue.enqueue(values={"task_type": task_type, "payload": {}}, idempotency_key="t")
    storage = LocalStorage(settings.sticker_storage_dir)
    context = TaskContext(
        settings=settings, database=db, storage=storage, flags=FeatureFlags(db, cache_ttl_ms=0)
    )
    worker = QueueWorker(queue, task_handlers(settings), context, WorkerOptions(name="w", kinds=[task_type]))
    before = _deferred_metric(task_type)

    assert worker.run_once() == 1

    with db.read() as connection:
        row = connection.execute(sa.select(sticker_worker_task_queue)).mappings().one()
    assert row["status"] == "pending" and row["processed_at"] is None  # not completed
    assert row["attempts"] == 0  # not counted towards the dead-letter table
    assert row["last_error"].startswith("deferred: ") and "another-worker" in row["last_error"]
    # Back when the holder's lease ends (its expiry, from the lease's clock), not at once.
    assert row["scheduled_at"] >= utcnow() + dt.timedelta(seconds=ttl - 5)
    assert queue.status_counts() == {task_type: {"deferred": 1}}
    assert _deferred_metric(task_type) == before + 1


def test_queue_status_shows_deferred_tasks_apart(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    from click.testing import CliRunner

    from omnizap.cli.main import cli
    from omnizap.config import reset_settings_cache

    queue = Queue(db, TASK_QUEUE)
    for key in ("a", "b"):
        queue.enqueue(values={"task_type": "curation_cycle", "payload": {}}, idempotency_key=key)
    (item,) = queue.claim("w", limit=1)
    assert queue.defer(item, "lease 'auto_theme_packs' is held by x") == "deferred"
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    reset_settings_cache()
    try:
        shown = CliRunner().invoke(cli, ["queue", "status"])
        as_json = CliRunner().invoke(cli, ["queue", "status", "--json"])
    finally:
        reset_settings_cache()
    assert shown.exit_code == 0, shown.output
    assert "pending=1  deferred=1  processing=0" in shown.output
    assert '"deferred": 1' in as_json.output
