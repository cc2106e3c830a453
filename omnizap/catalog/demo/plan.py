"""What a demo catalog contains, decided from a seed before anything is written.

`plan_catalog` makes the outline (owners, and per pack its owner, visibility, kind, size, age and
whether it trends) and the sticker pool's designs. Everything else about a pack (theme, language,
name, publisher, description and tags, which pool stickers it holds, its engagement history) is
derived on demand from the seed and the pack's number, so a 100,000-pack plan stays small in memory
and the same seed always gives the same catalog. Only times are relative: `now` is an argument.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from omnizap.catalog.demo.images import StickerDesign, design_sticker
from omnizap.catalog.demo.themes import (
    ANIMATED_TAGS,
    EXTRA_TAGS,
    FIRST_NAMES,
    LAST_NAMES,
    STUDIOS,
    THEMES,
    Theme,
)
from omnizap.core.packs.rules import NAME_MAX, slugify

MAX_PACKS = 100_000  # per run; a bigger catalog is several runs with different seeds
MIN_STICKERS = 3  # WhatsApp's minimum per pack
WHATSAPP_MAX_STICKERS = 30
VISIBILITY_SHARES = (("public", 0.75), ("unlisted", 0.15), ("private", 0.10))
ANIMATED_SHARE = 0.12
COMPLETE_SHARE = 0.08  # packs filled to the maximum size
TRENDING_SHARE = 0.025  # of the public packs
PACKS_PER_OWNER = (5, 10)
HISTORY_DAYS = 180
MIN_AGE_DAYS = 1.5  # younger packs could only "trend" (all their opens fall in the last 24 h)
EVENT_WINDOW_DAYS = 14
MAX_WINDOW_OPENS = 400  # interaction events per pack are bounded; lifetime counters are not
TAGS_MAX = 8
TAG_MARKER_PREFIX = "[pack-tags:"
# Pool sizes grow with the square root of the items that use them, up to these caps: enough variety
# for a small catalog, a bounded conversion cost for a big one. Each pack's stickers are distinct.
STATIC_POOL_MAX = 1_600
ANIMATED_POOL_MAX = 128
STATIC_POOL_FACTOR = 9.0
ANIMATED_POOL_FACTOR = 3.5
POOL_SHARE_MAX = 0.6  # a pool never needs more stickers than 60% of its items
PORTUGUESE_SHARE = 0.65
VIEWER_POPULATION_MIN = 2_000
VIEWER_POPULATION_MAX = 200_000


def _rng(seed: int, *parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, so they do not depend on PYTHONHASHSEED.
    return random.Random(":".join(["omnizap-demo", str(seed), *map(str, parts)]))


def _short_hash(*parts: object, size: int = 8) -> str:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=size).hexdigest()


@dataclass(frozen=True)
class OwnerPlan:
    jid: str
    publishers: tuple[str, ...]  # the first is the usual one


@dataclass(frozen=True)
class PackOutline:
    index: int
    owner: int  # index into CatalogPlan.owners
    visibility: str
    animated: bool
    size: int
    age_days: float
    trending: bool


@dataclass(frozen=True)
class PlannedItem:
    pool_index: int  # into the static or the animated pool, as the pack is
    emojis: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class PackPlan:
    outline: PackOutline
    theme: str
    language: str
    name: str
    publisher: str
    description: str
    tags: tuple[str, ...]
    created_at: dt.datetime
    items: tuple[PlannedItem, ...]


@dataclass(frozen=True)
class Interaction:
    interaction: str  # open, like, dislike
    actor_key: str
    session_key: str
    source: str
    created_at: dt.datetime


@dataclass(frozen=True)
class EngagementPlan:
    open_count: int
    like_count: int
    dislike_count: int
    last_opened_at: dt.datetime | None
    last_interacted_at: dt.datetime | None
    events: tuple[Interaction, ...]  # the last EVENT_WINDOW_DAYS days only


def tag_marker(tags: Sequence[str]) -> str:
    """`[pack-tags:a,b]`, the trailing description marker the catalog reads theme tags from."""
    return f"{TAG_MARKER_PREFIX}{','.join(tags)}]"


def _largest_remainder(total: int, shares: Sequence[float]) -> list[int]:
    exact = [total * share for share in shares]
    counts = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (exact[i] - counts[i], -i), reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _pool_size(items: int, largest_pack: int, factor: float, cap: int) -> int:
    if items == 0:
        return 0
    wanted = min(cap, round(factor * math.sqrt(items)), math.ceil(items * POOL_SHARE_MAX))
    return max(largest_pack, wanted)


def _weighted_themes() -> list[Theme]:
    """Themes repeated by weight: memes and greetings are the most common packs."""
    return [theme for theme in THEMES for _ in range(theme.weight)]


class CatalogPlan:
    """The demo catalog of one seed: outline, owners, sticker pool; pack details on demand."""

    def __init__(
        self,
        seed: int,
        max_stickers: int,
        owners: Sequence[OwnerPlan],
        packs: Sequence[PackOutline],
    ) -> None:
        self.seed = seed
        self.max_stickers = max_stickers
        self.owners = tuple(owners)
        self.packs = tuple(packs)
        self._theme_cycle = _weighted_themes()
        static_items = [p.size for p in self.packs if not p.animated]
        animated_items = [p.size for p in self.packs if p.animated]
        self.static_designs = self._designs(
            _pool_size(sum(static_items), max(static_items, default=0), STATIC_POOL_FACTOR, STATIC_POOL_MAX),
            animated=False,
        )
        self.animated_designs = self._designs(
            _pool_size(
                sum(animated_items), max(animated_items, default=0), ANIMATED_POOL_FACTOR, ANIMATED_POOL_MAX
            ),
            animated=True,
        )
        self._members = {
            kind: self._members_by_theme(designs)
            for kind, designs in (("static", self.static_designs), ("animated", self.animated_designs))
        }
        self.viewer_population = max(VIEWER_POPULATION_MIN, min(VIEWER_POPULATION_MAX, len(self.packs) * 20))

    # --- the sticker pool -------------------------------------------------------------------------
    def _designs(self, count: int, *, animated: bool) -> tuple[StickerDesign, ...]:
        # Pool themes follow the same weights as pack themes, so popular themes have more stickers.
        cycle = self._theme_cycle
        return tuple(
            design_sticker(self.seed, index, cycle[index % len(cycle)].key, animated=animated)
            for index in range(count)
        )

    @staticmethod
    def _members_by_theme(designs: Sequence[StickerDesign]) -> dict[str, list[int]]:
        members: dict[str, list[int]] = {}
        for design in designs:
            members.setdefault(design.theme, []).append(design.index)
        return members

    def sticker_owner(self, design: StickerDesign) -> str:
        """The owner recorded on a pool sticker (the first one to have uploaded it)."""
        return self.owners[design.index % len(self.owners)].jid

    # --- packs ------------------------------------------------------------------------------------
    def pack(self, outline: PackOutline, now: dt.datetime) -> PackPlan:
        """Every detail of one pack; the same for the same seed and pack number."""
        rng = _rng(self.seed, "pack", outline.index)
        theme = rng.choice(self._theme_cycle)
        language = "pt" if rng.random() < PORTUGUESE_SHARE else "en"
        owner = self.owners[outline.owner]
        publisher = (
            owner.publishers[-1] if len(owner.publishers) > 1 and rng.random() < 0.25 else owner.publishers[0]
        )
        tags = self._tags(rng, theme, language, outline.animated)
        text = rng.choice(theme.descriptions(language)) if rng.random() < 0.85 else ""
        description = f"{text} {tag_marker(tags)}".strip()
        kind = "animated" if outline.animated else "static"
        designs = self.animated_designs if outline.animated else self.static_designs
        picks = self._pick(rng, self._members[kind].get(theme.key, []), len(designs), outline.size)
        items = tuple(self._item(rng, designs[index], theme, language) for index in picks)
        return PackPlan(
            outline=outline,
            theme=theme.key,
            language=language,
            name=self._name(rng, theme, language),
            publisher=publisher,
            description=description,
            tags=tags,
            created_at=now - dt.timedelta(days=outline.age_days),
            items=items,
        )

    @staticmethod
    def _name(rng: random.Random, theme: Theme, language: str) -> str:
        name = rng.choice(theme.names(language))
        roll = rng.random()
        if roll < 0.22:
            name += f" vol. {rng.randint(2, 5)}"
        elif roll < 0.3:
            name += f" {rng.choice((2023, 2024, 2025, 2026))}"
        if name.isascii() and rng.random() < 0.15:
            name += " " + rng.choice(theme.emojis)
        return name[:NAME_MAX]

    @staticmethod
    def _tags(rng: random.Random, theme: Theme, language: str, animated: bool) -> tuple[str, ...]:
        chosen = [theme.tags[0], *rng.sample(theme.tags[1:], rng.randint(1, len(theme.tags) - 1))]
        if animated:
            chosen.append(ANIMATED_TAGS[language])
        if rng.random() < 0.2:
            chosen.append(rng.choice(EXTRA_TAGS))
        return tuple(dict.fromkeys(slugify(tag) for tag in chosen))[:TAGS_MAX]

    @staticmethod
    def _pick(rng: random.Random, theme_members: Sequence[int], pool_size: int, size: int) -> list[int]:
        """`size` distinct pool stickers: the theme's own first, the rest from the whole pool."""
        picks = rng.sample(list(theme_members), min(size, len(theme_members)))
        chosen = set(picks)
        while len(picks) < size:  # the pool holds at least `size` stickers, so this ends
            index = rng.randrange(pool_size)
            if index not in chosen:
                chosen.add(index)
                picks.append(index)
        return picks

    @staticmethod
    def _item(rng: random.Random, design: StickerDesign, theme: Theme, language: str) -> PlannedItem:
        emojis = list(design.emojis)
        if len(emojis) < 3 and rng.random() < 0.3:
            emojis.append(rng.choice(theme.emojis))
        return PlannedItem(design.index, tuple(dict.fromkeys(emojis)), design.describe(language))

    # --- engagement ----------------------------------------------------------------------------------
    def engagement(self, plan: PackPlan, now: dt.datetime) -> EngagementPlan | None:
        """Lifetime counters and the last 14 days of interaction events; None: never interacted with.

        Popularity is long-tailed (Pareto): most packs are quiet, a few are opened thousands of
        times. Events of a quiet pack are spread so its last 24 h stay below 1.4× its 7-day daily
        average (the ranking's trending threshold); a trending pack gets about half of its week's
        opens in the last 24 h. Counters are at least the events they summarise.
        """
        outline = plan.outline
        if outline.visibility == "private":  # only its owner sees it: no public opens or likes
            return None
        rng = _rng(self.seed, "engagement", outline.index)
        if not outline.trending and rng.random() < 0.15:
            return None
        reach = 1.0 if outline.visibility == "public" else 0.15  # unlisted: only people with the link
        lifetime_opens = max(1, round(12 * rng.paretovariate(1.16) * reach))
        window_start = max(now - dt.timedelta(days=EVENT_WINDOW_DAYS), plan.created_at)
        window_days = (now - window_start).total_seconds() / 86_400
        recent_share = min(1.0, window_days / outline.age_days) * rng.uniform(0.5, 1.0)
        window_opens = min(MAX_WINDOW_OPENS, round(lifetime_opens * recent_share))
        if outline.trending:
            window_opens = max(window_opens, rng.randint(30, 80))
        lifetime_opens = max(lifetime_opens, window_opens)

        open_times = self._open_times(rng, window_opens, window_start, now, trending=outline.trending)
        like_rate, dislike_rate = rng.uniform(0.03, 0.15), rng.uniform(0.0, 0.02)
        window_likes = round(window_opens * like_rate)
        window_dislikes = min(window_opens - window_likes, round(window_opens * dislike_rate))
        viewers = rng.sample(range(self.viewer_population), window_opens)
        events: list[Interaction] = []
        for number, (viewer, opened_at) in enumerate(zip(viewers, open_times, strict=True)):
            actor = f"viewer:{_short_hash(self.seed, 'viewer', viewer)}"
            source = "whatsapp" if rng.random() < 0.2 else "web"
            session = f"s:{_short_hash(self.seed, viewer, opened_at.date())}"
            events.append(Interaction("open", actor, session, source, opened_at))
            # Likes and dislikes come from distinct viewers, shortly after their own open.
            reaction = (
                "like"
                if number < window_likes
                else "dislike"
                if number < window_likes + window_dislikes
                else None
            )
            if reaction is not None:
                reacted_at = min(now, opened_at + dt.timedelta(seconds=rng.uniform(3, 300)))
                events.append(Interaction(reaction, actor, session, source, reacted_at))
        events.sort(key=lambda event: event.created_at)
        like_count = max(window_likes, round(lifetime_opens * like_rate))
        dislike_count = max(window_dislikes, round(lifetime_opens * dislike_rate))
        if events:
            last_opened = max(event.created_at for event in events if event.interaction == "open")
            last_interacted = events[-1].created_at
        else:  # opened, but not in the last 14 days
            span = max(0.0, (window_start - plan.created_at).total_seconds())
            last_opened = plan.created_at + dt.timedelta(seconds=rng.uniform(0.5, 1.0) * span)
            last_interacted = last_opened
        return EngagementPlan(
            open_count=lifetime_opens,
            like_count=like_count,
            dislike_count=dislike_count,
            last_opened_at=last_opened,
            last_interacted_at=last_interacted,
            events=tuple(events),
        )

    @staticmethod
    def _open_times(
        rng: random.Random, count: int, start: dt.datetime, now: dt.datetime, *, trending: bool
    ) -> list[dt.datetime]:
        day = dt.timedelta(days=1)
        last_day = now - day
        span = (now - start).total_seconds()
        if trending:
            recent = max(1, round(count * rng.uniform(0.45, 0.65)))
            earlier_span = (last_day - start).total_seconds()
            times = [now - dt.timedelta(seconds=rng.uniform(0, 86_400)) for _ in range(recent)]
            times += [
                start + dt.timedelta(seconds=rng.uniform(0, earlier_span)) for _ in range(count - recent)
            ]
            return sorted(times)
        times = sorted(start + dt.timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
        # Keep a quiet pack below the trending threshold: move surplus opens of the last 24 h back
        # into the rest of the week (the week's total, the trend's baseline, stays the same).
        week_start = max(start, now - 7 * day)
        room = (last_day - week_start).total_seconds()
        if room <= 0:
            return times
        week = sum(1 for moment in times if moment >= week_start)
        while True:
            recent_count = len(times) - bisect.bisect_left(times, last_day)
            if recent_count == 0 or recent_count < 1.3 * max(0.5, week / 7):
                return times
            times.pop()  # the newest open moves back
            bisect.insort(times, week_start + dt.timedelta(seconds=rng.uniform(0, room)))


def plan_catalog(
    *,
    seed: int,
    packs: int,
    max_stickers: int,
    max_packs_per_owner: int | None,
) -> CatalogPlan:
    """The outline of a demo catalog of `packs` packs of 3..`max_stickers` stickers each."""
    if not 1 <= packs <= MAX_PACKS:
        raise ValueError(f"packs must be between 1 and {MAX_PACKS}, got {packs}")
    if not MIN_STICKERS <= max_stickers <= WHATSAPP_MAX_STICKERS:
        raise ValueError(f"max_stickers must be between {MIN_STICKERS} and {WHATSAPP_MAX_STICKERS}")
    owners, owner_of_pack = _plan_owners(seed, packs, max_packs_per_owner)
    visibility_counts = _largest_remainder(packs, [share for _, share in VISIBILITY_SHARES])
    visibilities = _shuffled_mix(
        seed,
        "visibility",
        [(name, count) for (name, _), count in zip(VISIBILITY_SHARES, visibility_counts, strict=True)],
    )
    # From 5 packs on, at least one is animated, so every demo shows both kinds.
    animated_count = round(packs * ANIMATED_SHARE) if packs < 5 else max(1, round(packs * ANIMATED_SHARE))
    kinds = _shuffled_mix(seed, "kind", [("animated", animated_count), ("static", packs - animated_count)])
    public = [index for index, visibility in enumerate(visibilities) if visibility == "public"]
    trending_count = max(1, round(len(public) * TRENDING_SHARE)) if len(public) >= 4 else 0
    trending = set(_rng(seed, "trending").sample(public, trending_count))
    outlines = []
    for index in range(packs):
        rng = _rng(seed, "outline", index)
        if max_stickers == MIN_STICKERS or rng.random() < COMPLETE_SHARE:
            size = max_stickers
        else:
            size = min(max_stickers, MIN_STICKERS + round(rng.gammavariate(2.2, 3.2)))
        # More packs were made recently than long ago (a growing community).
        age_days = MIN_AGE_DAYS + (HISTORY_DAYS - MIN_AGE_DAYS) * rng.random() ** 1.3
        outlines.append(
            PackOutline(
                index=index,
                owner=owner_of_pack[index],
                visibility=visibilities[index],
                animated=kinds[index] == "animated",
                size=size,
                age_days=age_days,
                trending=index in trending,
            )
        )
    return CatalogPlan(seed, max_stickers, owners, outlines)


def _shuffled_mix(seed: int, name: str, counts: Sequence[tuple[str, int]]) -> list[str]:
    """Each label `count` times, in an order fixed by the seed."""
    labels = [label for label, count in counts for _ in range(count)]
    _rng(seed, name).shuffle(labels)
    return labels


def _plan_owners(seed: int, packs: int, limit: int | None) -> tuple[list[OwnerPlan], list[int]]:
    """Owners with 5–10 packs each (fewer when the per-owner pack limit is lower)."""
    rng = _rng(seed, "owners")
    owners: list[OwnerPlan] = []
    owner_of_pack: list[int] = []
    jids: set[str] = set()
    while len(owner_of_pack) < packs:
        count = rng.randint(*PACKS_PER_OWNER)
        if limit is not None:
            count = min(count, limit)
        count = min(count, packs - len(owner_of_pack))
        jid = _owner_jid(rng)
        while jid in jids:
            jid = _owner_jid(rng)
        jids.add(jid)
        owner_of_pack.extend([len(owners)] * count)
        owners.append(OwnerPlan(jid, _publishers(rng)))
    return owners, owner_of_pack


def _owner_jid(rng: random.Random) -> str:
    # Area code 00 does not exist in Brazil, so these can never be a real person's number.
    if rng.random() < 0.85:
        return f"5500{rng.randrange(10**8, 10**9)}@s.whatsapp.net"
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    handle = slugify(f"{first} {last}").replace("-", ".")
    return f"demo.{handle}.{rng.randrange(100, 1000)}"


def _publishers(rng: random.Random) -> tuple[str, ...]:
    def one() -> str:
        if rng.random() < 0.5:
            return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        return rng.choice(STUDIOS)

    main = one()
    if rng.random() < 0.3:
        second = one()
        if second != main:
            return (main, second)
    return (main,)


def iter_batches(outlines: Sequence[PackOutline], size: int) -> Iterator[Sequence[PackOutline]]:
    for start in range(0, len(outlines), size):
        yield outlines[start : start + size]
