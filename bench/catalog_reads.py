"""Catalog read costs: ranking build, index load, cold and warm reads, on a generated catalog.

    python -m bench.catalog_reads [--packs 10000] [--runs 20] [--database-url URL] [--existing]

Without `--existing` it generates `--packs` packs (3-30 stickers each, long-tailed engagement,
interaction events over the last 9 days, `[pack-tags:…]` markers) into a fresh SQLite file, or into
the empty database at `--database-url`, by direct batched inserts. With `--existing` it reads the
catalog at `--database-url` (default: DATABASE_URL) as it is.

"cold" = the read's cached body was dropped (index and ranking generation already in memory, as
after any change); "warm" = answered from the read cache. Times are per call, in-process (no HTTP).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omnizap.catalog.service import AGGREGATES_SCOPE, CatalogService
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.db.schema import (
    sticker_asset,
    sticker_pack,
    sticker_pack_engagement,
    sticker_pack_interaction_event,
    sticker_pack_item,
)
from omnizap.platform.db.types import utcnow

OWNER = "5511900000000@s.whatsapp.net"
TAGS = ["cats", "dogs", "memes", "anime", "love", "football", "food", "games", "music", "reactions", "cute"]
WORDS = ["Sunny", "Happy", "Crazy", "Café", "Night", "Retro", "Pixel", "Tiny", "Epic", "Soft", "Wild"]
CHUNK = 5_000


def _insert(database: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        with database.transaction() as connection:
            connection.execute(table.insert(), rows[start : start + CHUNK])


def generate(database: Database, packs: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = utcnow()
    pool = [str(uuid.uuid4()) for _ in range(max(200, packs // 2))]
    _insert(
        database,
        sticker_asset,
        [
            {
                "id": asset_id,
                "owner_jid": OWNER,
                "sha256": uuid.uuid4().hex * 2,
                "size_bytes": rng.randint(4_000, 90_000),
                "width": 512,
                "height": 512,
                "storage_path": asset_id,
                "created_at": now - dt.timedelta(days=rng.uniform(0, 200)),
            }
            for asset_id in pool
        ],
    )
    pack_rows, item_rows, engagement_rows, event_rows = [], [], [], []
    for number in range(packs):
        pack_id = str(uuid.uuid4())
        created = now - dt.timedelta(days=rng.uniform(0.5, 180))
        tags = rng.sample(TAGS, rng.randint(1, 4))
        visibility = rng.choices(["public", "unlisted", "private"], [0.8, 0.1, 0.1])[0]
        stickers = rng.sample(pool, rng.randint(3, 30))
        pack_rows.append(
            {
                "id": pack_id,
                "cover_sticker_id": stickers[0],
                "owner_jid": OWNER,
                "name": f"{rng.choice(WORDS)} {rng.choice(TAGS).title()} {number}",
                "publisher": f"Creator {rng.randint(1, max(2, packs // 8))}",
                "description": f"Pack number {number} [pack-tags:{','.join(tags)}]",
                "pack_key": f"bench-{number:06d}-{uuid.uuid4().hex[:5]}",
                "visibility": visibility,
                "status": "published",
                "pack_status": "ready",
                "created_at": created,
                "updated_at": min(now, created + dt.timedelta(hours=rng.uniform(0, 48))),  # never ahead
            }
        )
        for position, sticker in enumerate(stickers, start=1):
            item_rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "pack_id": pack_id,
                    "sticker_id": sticker,
                    "position": position,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        if visibility != "private" and rng.random() < 0.85:
            opens = int(10 * rng.paretovariate(1.2))
            likes = int(opens * rng.uniform(0.02, 0.15))
            engagement_rows.append(
                {
                    "pack_id": pack_id,
                    "open_count": opens,
                    "like_count": likes,
                    "dislike_count": int(opens * 0.01),
                    "created_at": created,
                    "updated_at": now,
                }
            )
            for _ in range(min(opens, 40)):
                event_rows.append(
                    {
                        "pack_id": pack_id,
                        "interaction": rng.choice(["open", "open", "open", "like"]),
                        "actor_key": f"viewer-{rng.randint(1, 5000)}",
                        "source": "web",
                        "created_at": now - dt.timedelta(days=rng.uniform(0, 9)),
                    }
                )
    for table, rows in (
        (sticker_pack, pack_rows),
        (sticker_pack_item, item_rows),
        (sticker_pack_engagement, engagement_rows),
        (sticker_pack_interaction_event, event_rows),
    ):
        _insert(database, table, rows)
    print(f"generated {packs} packs, {len(item_rows)} items, {len(event_rows)} interaction events")


def timed(
    function: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None
) -> tuple[float, float]:
    """(median ms, max ms) over `runs` calls; `before` runs untimed ahead of each call."""
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--packs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--existing", action="store_true", help="read the catalog at --database-url as it is")
    arguments = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="omnizap-bench-catalog-"))
    if arguments.existing:
        settings = Settings(**({"database_url": arguments.database_url} if arguments.database_url else {}))
    else:
        url = arguments.database_url or f"sqlite:///{folder / 'catalog.db'}"
        settings = Settings(_env_file=None, database_url=url, sticker_storage_dir=folder / "stickers")
    database = Database(settings.database_url)
    if not arguments.existing:
        upgrade(database)
        started = time.perf_counter()
        generate(database, arguments.packs)
        print(f"generation took {time.perf_counter() - started:.1f} s ({settings.database_url})")

    catalog = CatalogService(database, settings)
    started = time.perf_counter()
    catalog.refresh_rankings()
    print(f"first ranking build + index load: {(time.perf_counter() - started) * 1000:.0f} ms")
    median, worst = timed(catalog.refresh_rankings, 3)
    print(f"ranking build + index load (again): median {median:.0f} ms, max {worst:.0f} ms")
    median, worst = timed(catalog._reload_index, 3)
    print(f"index full reload: median {median:.0f} ms, max {worst:.0f} ms")

    first = catalog.list_packs(limit=24)
    cursor = first["pagination"]["next_cursor"]
    some_key = first["data"][0]["pack_key"] if first["data"] else "missing-aaaaa"
    reads: list[tuple[str, Callable[[], Any]]] = [
        ("list popular, page 1", lambda: catalog.list_packs(limit=24)),
        ("list popular, page 2 (cursor)", lambda: catalog.list_packs(limit=24, cursor=cursor)),
        ("list popular, offset 2400", lambda: catalog.list_packs(limit=24, offset=2400)),
        ("list trending", lambda: catalog.list_packs(sort="trending", limit=24)),
        ("list new", lambda: catalog.list_packs(sort="new", limit=24)),
        ("list search q=cafe", lambda: catalog.list_packs(q="cafe", limit=24)),
        ("list search, no match", lambda: catalog.list_packs(q="zzzz-nothing", limit=24)),
        ("list categories=music", lambda: catalog.list_packs(categories=["music"], limit=24)),
        ("list intent=mais_curtidos", lambda: catalog.list_packs(intent="mais_curtidos", limit=24)),
        ("list limit=60", lambda: catalog.list_packs(limit=60)),
        ("pack detail", lambda: catalog.pack_detail(some_key)),
        ("intents", lambda: catalog.intents()),
        ("creators limit=25", lambda: catalog.creators(limit=25)),
        ("stats", lambda: catalog.stats()),
        ("marketplace stats", lambda: catalog.marketplace_stats()),
        ("readme summary", lambda: catalog.readme_summary()),
        ("sitemap entries", lambda: catalog.sitemap_entries()),
    ]

    def drop_cached_bodies() -> None:
        catalog._cache.invalidate_all()
        catalog._cache.invalidate_packs([AGGREGATES_SCOPE])

    print(f"\n{'read':34} {'cold median':>12} {'cold max':>9} {'warm median':>12} {'warm max':>9}")
    for name, read in reads:
        read()
        cold_median, cold_max = timed(read, arguments.runs, before=drop_cached_bodies)
        warm_median, warm_max = timed(read, arguments.runs * 10)
        cold = f"{cold_median:10.2f}ms {cold_max:7.2f}ms"
        print(f"{name:34} {cold} {warm_median * 1000:10.1f}µs {warm_max:7.2f}ms")
    median, worst = timed(catalog.data_version, 1000)
    print(f"\ndata_version(): median {median * 1000:.2f} µs")
    database.dispose()


if __name__ == "__main__":
    main()
