"""Fill a database with a demo catalog: real stickers, packs through PackService, engagement history.

Three steps, each safe to interrupt:
1. The sticker pool: every design is drawn and ingested through `StickerService.ingest`, like an
   upload (in a process pool when there are many). Each sticker is its own transaction; a sticker
   already stored (same seed before) is found by its source hash and not converted again.
2. Packs, in batches through `PackService.create_packs`: a batch's packs, items and PACK_UPDATED
   "created" outbox events commit together or not at all, so no pack is ever half-written.
3. After each batch, that batch's engagement history as a bulk load (same transaction for the whole
   batch): `sticker_pack_engagement` counters and 14 days of `sticker_pack_interaction_event` rows.
   This is history, not live interactions, so it writes no ENGAGEMENT_RECORDED outbox events.

New pool stickers are backdated to before the oldest pack, so no pack holds a sticker younger
than itself.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import multiprocessing
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from omnizap.catalog.demo.images import StickerDesign, render_source
from omnizap.catalog.demo.plan import (
    HISTORY_DAYS,
    MAX_PACKS,
    MIN_STICKERS,
    WHATSAPP_MAX_STICKERS,
    CatalogPlan,
    EngagementPlan,
    PackPlan,
    iter_batches,
    plan_catalog,
)
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput, PackLimitReached, StickerPackError
from omnizap.core.packs.models import Pack
from omnizap.core.packs.service import NewPack, NewPackItem, PackService
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_pack,
    sticker_pack_engagement,
    sticker_pack_interaction_event,
)
from omnizap.platform.db.types import utcnow
from omnizap.platform.storage import Storage, local_storage

DEMO_STICKER_PACK_NAME = "OmniZap Demo"  # embedded in the stickers' metadata (they are shared by packs)
DEMO_STICKER_PUBLISHER = "OmniZap"
PACK_BATCH_SIZE = 100
EVENT_INSERT_BATCH = 5_000
STICKERS_PER_TASK = 6  # designs sent to a worker process at once
PARALLEL_MIN_STICKERS = 24  # below this, starting worker processes costs more than it saves
_OWNER_QUERY_BATCH = 500

ProgressCallback = Callable[[str, int, int], None]  # (phase, done, total); phase: "stickers" | "packs"


class DemoSeedError(InvalidInput):
    """The seed cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class SeedOptions:
    packs: int
    max_stickers: int | None = None  # None: the pack maximum (30, or STICKER_PACK_MAX_ITEMS if lower)
    seed: int = 1
    jobs: int = 1
    batch_size: int = PACK_BATCH_SIZE


@dataclass
class SeedReport:
    """What one run wrote. Counts only committed work, so an interrupted run reports the truth."""

    seed: int
    packs_planned: int
    reference_time: dt.datetime  # "now" of the run: pack ages and event windows count back from it
    packs_by_visibility: collections.Counter[str] = field(default_factory=collections.Counter)
    animated_packs: int = 0
    complete_packs: int = 0  # holding the most a pack may (STICKER_PACK_MAX_ITEMS, 30 by default)
    complete_size: int = 30
    pack_items: int = 0
    owners: set[str] = field(default_factory=set)
    stickers_created: int = 0
    stickers_reused: int = 0
    engagement_rows: int = 0
    interaction_events: int = 0
    trending_packs: int = 0
    sticker_seconds: float = 0.0
    pack_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    interrupted: bool = False

    @property
    def packs_written(self) -> int:
        return sum(self.packs_by_visibility.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "packs_planned": self.packs_planned,
            "reference_time": self.reference_time.isoformat(),
            "packs_written": self.packs_written,
            "packs_by_visibility": {
                name: self.packs_by_visibility.get(name, 0) for name in ("public", "unlisted", "private")
            },
            "animated_packs": self.animated_packs,
            "complete_packs": self.complete_packs,
            "complete_size": self.complete_size,
            "pack_items": self.pack_items,
            "owners": len(self.owners),
            "stickers": self.stickers_created + self.stickers_reused,
            "stickers_created": self.stickers_created,
            "stickers_reused": self.stickers_reused,
            "engagement_rows": self.engagement_rows,
            "interaction_events": self.interaction_events,
            "trending_packs": self.trending_packs,
            "sticker_seconds": round(self.sticker_seconds, 2),
            "pack_seconds": round(self.pack_seconds, 2),
            "elapsed_seconds": round(self.elapsed_seconds, 2),
            "interrupted": self.interrupted,
        }


@dataclass(frozen=True)
class _Ingested:
    kind: str  # "static" | "animated"
    index: int
    asset_id: str
    is_animated: bool
    created: bool


class DemoSeeder:
    """Builds the demo catalog of `SeedOptions` into `database` and `storage`."""

    def __init__(
        self,
        database: Database,
        storage: Storage,
        settings: Settings,
        *,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.database = database
        self.storage = storage
        self.settings = settings
        self.stickers = StickerService(database, storage, settings)
        self.packs = PackService(database, settings)
        self._progress = progress or (lambda _phase, _done, _total: None)

    # --- checks -------------------------------------------------------------------------------------
    def existing_pack_count(self) -> int:
        """Packs in the database, deleted ones included (any pack means "not empty")."""
        with self.database.read() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(sticker_pack)).scalar_one())

    def max_stickers_allowed(self) -> int:
        return min(WHATSAPP_MAX_STICKERS, self.settings.sticker_pack_max_items)

    def validate(self, options: SeedOptions) -> int:
        """Refuse impossible options with the fix in the message; returns the stickers-per-pack maximum."""
        if not 1 <= options.packs <= MAX_PACKS:
            raise DemoSeedError(
                f"--packs must be between 1 and {MAX_PACKS:,}, got {options.packs:,}. For a bigger "
                "catalog run `omnizap demo seed` several times with different --seed values."
            )
        allowed = self.max_stickers_allowed()
        if allowed < MIN_STICKERS:
            raise DemoSeedError(
                f"STICKER_PACK_MAX_ITEMS is {self.settings.sticker_pack_max_items}, but a WhatsApp pack "
                f"needs at least {MIN_STICKERS} stickers: raise STICKER_PACK_MAX_ITEMS to 3 or more."
            )
        wanted = options.max_stickers if options.max_stickers is not None else allowed
        if not MIN_STICKERS <= wanted <= allowed:
            limit_note = (
                f" (STICKER_PACK_MAX_ITEMS is {self.settings.sticker_pack_max_items})"
                if allowed < WHATSAPP_MAX_STICKERS
                else " (WhatsApp's limits)"
            )
            raise DemoSeedError(
                f"--stickers-per-pack must be between {MIN_STICKERS} and {allowed}{limit_note}, got {wanted}."
            )
        if not 1 <= options.jobs <= 64:
            raise DemoSeedError(f"--jobs must be between 1 and 64, got {options.jobs}.")
        if not 1 <= options.batch_size <= 1_000:
            raise DemoSeedError(f"the pack batch size must be between 1 and 1000, got {options.batch_size}.")
        return wanted

    def plan(self, options: SeedOptions) -> CatalogPlan:
        max_stickers = self.validate(options)
        return plan_catalog(
            seed=options.seed,
            packs=options.packs,
            max_stickers=max_stickers,
            max_packs_per_owner=self.settings.sticker_pack_max_packs_per_owner,
        )

    def _check_owner_room(self, plan: CatalogPlan) -> None:
        """Refuse before writing anything if a demo owner would pass the per-owner pack limit
        (possible only when the same --seed already ran on this database)."""
        limit = self.settings.sticker_pack_max_packs_per_owner
        if limit is None:
            return
        planned = collections.Counter(plan.owners[outline.owner].jid for outline in plan.packs)
        jids = list(planned)
        with self.database.read() as connection:
            for start in range(0, len(jids), _OWNER_QUERY_BATCH):
                batch = jids[start : start + _OWNER_QUERY_BATCH]
                query = (
                    sa.select(sticker_pack.c.owner_jid, sa.func.count())
                    .where(sticker_pack.c.owner_jid.in_(batch), sticker_pack.c.deleted_at.is_(None))
                    .group_by(sticker_pack.c.owner_jid)
                )
                for owner, existing in connection.execute(query):
                    if existing + planned[owner] > limit:
                        raise DemoSeedError(
                            f"demo owner {owner} already has {existing} packs (an earlier run with --seed "
                            f"{plan.seed}); {planned[owner]} more would pass "
                            f"STICKER_PACK_MAX_PACKS_PER_OWNER={limit}. Use another --seed, or raise the "
                            "limit (0 means unlimited)."
                        )

    # --- the run ------------------------------------------------------------------------------------
    def seed(self, options: SeedOptions) -> SeedReport:
        """Write the catalog. Ctrl-C (KeyboardInterrupt) stops between transactions: the report
        then says what was written, with `interrupted` set."""
        started = time.perf_counter()
        plan = self.plan(options)
        self._check_owner_room(plan)
        now = utcnow()
        report = SeedReport(
            seed=options.seed,
            packs_planned=len(plan.packs),
            reference_time=now,
            complete_size=self.packs.max_items,
        )
        packs_started: float | None = None
        try:
            pools = self._sticker_pool(plan, options.jobs, report, now)
            packs_started = time.perf_counter()
            self._write_packs(plan, pools, options.batch_size, report, now)
        except KeyboardInterrupt:
            report.interrupted = True
        finished = time.perf_counter()
        report.sticker_seconds = (packs_started or finished) - started
        report.pack_seconds = finished - packs_started if packs_started is not None else 0.0
        report.elapsed_seconds = finished - started
        return report

    # --- step 1: stickers ---------------------------------------------------------------------------
    def _sticker_pool(
        self, plan: CatalogPlan, jobs: int, report: SeedReport, now: dt.datetime
    ) -> dict[str, list[str]]:
        designs = [*plan.static_designs, *plan.animated_designs]
        tasks = [
            [(design, plan.sticker_owner(design)) for design in designs[start : start + STICKERS_PER_TASK]]
            for start in range(0, len(designs), STICKERS_PER_TASK)
        ]
        pools: dict[str, list[str]] = {
            "static": [""] * len(plan.static_designs),
            "animated": [""] * len(plan.animated_designs),
        }
        created: list[str] = []
        done = 0
        self._progress("stickers", 0, len(designs))

        def record(results: Sequence[_Ingested]) -> None:
            nonlocal done
            for result in results:
                if result.is_animated != (result.kind == "animated"):
                    raise StickerPackError(
                        f"demo sticker {result.kind} #{result.index} came out "
                        f"{'animated' if result.is_animated else 'static'}; the demo generator is broken"
                    )
                pools[result.kind][result.index] = result.asset_id
                if result.created:
                    created.append(result.asset_id)
                    report.stickers_created += 1
                else:
                    report.stickers_reused += 1
            done += len(results)
            self._progress("stickers", done, len(designs))

        try:
            if jobs > 1 and len(designs) >= PARALLEL_MIN_STICKERS:
                self._ingest_in_processes(tasks, jobs, record)
            else:
                for task in tasks:
                    record(_ingest_designs(self.stickers, task))
        except KeyboardInterrupt:
            self._backdate_assets(plan, created, now)  # the stickers stored so far get their history too
            raise
        self._backdate_assets(plan, created, now)
        for kind, ids in pools.items():
            if len(set(ids)) != len(ids):
                raise StickerPackError(
                    f"two demo {kind} designs made the same sticker; the demo generator is broken"
                )
        return pools

    def _ingest_in_processes(
        self,
        tasks: Sequence[Sequence[tuple[StickerDesign, str]]],
        jobs: int,
        record: Callable[[Sequence[_Ingested]], None],
    ) -> None:
        # spawn: a fresh interpreter per worker, never a fork of open database connections.
        context = multiprocessing.get_context("spawn")
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_start_worker, initargs=(self.settings,)
        )
        try:
            futures = [executor.submit(_ingest_in_worker, list(task)) for task in tasks]
            for future in concurrent.futures.as_completed(futures):
                record(future.result())
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)  # running tasks finish their sticker
            raise
        executor.shutdown(wait=True)

    def _backdate_assets(self, plan: CatalogPlan, asset_ids: Sequence[str], now: dt.datetime) -> None:
        if not asset_ids:
            return
        oldest = max((outline.age_days for outline in plan.packs), default=HISTORY_DAYS)
        rng = random.Random(f"omnizap-demo:{plan.seed}:asset-times")
        rows = []
        for asset_id in asset_ids:
            moment = now - dt.timedelta(days=oldest + rng.uniform(0.05, 2.0))
            rows.append({"asset_id": asset_id, "moment": moment})
        statement = (
            sticker_asset.update()
            .where(sticker_asset.c.id == sa.bindparam("asset_id"))
            .values(created_at=sa.bindparam("moment"), updated_at=sa.bindparam("moment"))
        )
        with self.database.transaction() as connection:
            connection.execute(statement, rows)

    # --- steps 2 and 3: packs and their engagement -------------------------------------------------------
    def _write_packs(
        self,
        plan: CatalogPlan,
        pools: dict[str, list[str]],
        batch_size: int,
        report: SeedReport,
        now: dt.datetime,
    ) -> None:
        self._progress("packs", 0, len(plan.packs))
        for batch in iter_batches(plan.packs, batch_size):
            pack_plans = [plan.pack(outline, now) for outline in batch]
            specs = [self._new_pack(plan, pack_plan, pools) for pack_plan in pack_plans]
            try:
                created = self.packs.create_packs(specs)
            except PackLimitReached as exc:  # only if packs were added for these owners meanwhile
                raise DemoSeedError(f"{exc.message} (while writing demo pack {batch[0].index + 1})") from exc
            for pack_plan, pack in zip(pack_plans, created, strict=True):
                report.packs_by_visibility[pack.visibility] += 1
                report.animated_packs += int(pack_plan.outline.animated)
                report.complete_packs += int(pack.sticker_count >= self.packs.max_items)
                report.pack_items += pack.sticker_count
                report.owners.add(pack.owner_jid)
            self._write_engagement(plan, pack_plans, created, report, now)
            self._progress("packs", report.packs_written, len(plan.packs))

    @staticmethod
    def _new_pack(plan: CatalogPlan, pack_plan: PackPlan, pools: dict[str, list[str]]) -> NewPack:
        pool = pools["animated" if pack_plan.outline.animated else "static"]
        return NewPack(
            owner_jid=plan.owners[pack_plan.outline.owner].jid,
            name=pack_plan.name,
            publisher=pack_plan.publisher,
            description=pack_plan.description,
            visibility=pack_plan.outline.visibility,
            items=[
                NewPackItem(pool[item.pool_index], emojis=list(item.emojis), accessibility_label=item.label)
                for item in pack_plan.items
            ],
            created_at=pack_plan.created_at,
        )

    def _write_engagement(
        self,
        plan: CatalogPlan,
        pack_plans: Sequence[PackPlan],
        packs: Sequence[Pack],
        report: SeedReport,
        now: dt.datetime,
    ) -> None:
        counters: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        trending = 0
        for pack_plan, pack in zip(pack_plans, packs, strict=True):
            engagement = plan.engagement(pack_plan, now)
            if engagement is None:
                continue
            counters.append(_counter_row(pack.id, pack_plan.created_at, engagement))
            events.extend(
                {
                    "pack_id": pack.id,
                    "interaction": event.interaction,
                    "actor_key": event.actor_key,
                    "session_key": event.session_key,
                    "source": event.source,
                    "client_key": None,  # a keyed hash of a real address; history has none
                    "created_at": event.created_at,
                }
                for event in engagement.events
            )
            trending += int(pack_plan.outline.trending)
        if not counters:
            return
        with self.database.transaction() as connection:
            connection.execute(sticker_pack_engagement.insert(), counters)
            for start in range(0, len(events), EVENT_INSERT_BATCH):
                connection.execute(
                    sticker_pack_interaction_event.insert(), events[start : start + EVENT_INSERT_BATCH]
                )
        report.engagement_rows += len(counters)
        report.interaction_events += len(events)
        report.trending_packs += trending


def _counter_row(pack_id: str, created_at: dt.datetime, engagement: EngagementPlan) -> dict[str, Any]:
    return {
        "pack_id": pack_id,
        "open_count": engagement.open_count,
        "like_count": engagement.like_count,
        "dislike_count": engagement.dislike_count,
        "last_opened_at": engagement.last_opened_at,
        "last_interacted_at": engagement.last_interacted_at,
        "created_at": created_at,
        "updated_at": engagement.last_interacted_at or created_at,
    }


# --- sticker ingest, in this process or in workers ---------------------------------------------------


def _ingest_designs(service: StickerService, task: Sequence[tuple[StickerDesign, str]]) -> list[_Ingested]:
    results = []
    for design, owner in task:
        outcome = service.ingest(
            render_source(design),
            owner_jid=owner,
            pack_name=DEMO_STICKER_PACK_NAME,
            publisher=DEMO_STICKER_PUBLISHER,
            emojis=design.emojis,
        )
        kind = "animated" if design.animated else "static"
        results.append(
            _Ingested(kind, design.index, outcome.asset.id, outcome.asset.is_animated, outcome.created)
        )
    return results


_worker_service: StickerService | None = None


def _start_worker(settings: Settings) -> None:
    """Runs once in each worker process: its own database connection and storage."""
    global _worker_service
    # Ctrl-C goes to the whole process group; only the parent decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_service = StickerService(
        Database(settings.database_url, pool_size=1), local_storage(settings), settings
    )


def _ingest_in_worker(task: list[tuple[StickerDesign, str]]) -> list[_Ingested]:
    if _worker_service is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("demo worker started without its initializer")
    return _ingest_designs(_worker_service, task)
