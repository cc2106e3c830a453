"""Signals, classification facts and tags of many packs at once, from the database (pipeline §4.1).

The ranking build runs this over every reachable pack; reads run it for the few packs whose score
snapshot is missing or stale. Per-pack classification facts are reused when the pack's version and
its items' classifications are unchanged (`stamp`), so a rebuild does not parse every item's scores
again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from omnizap.catalog import repository as repo
from omnizap.catalog.classification import (
    ClassificationFacts,
    TagRules,
    classification_facts,
    empty_facts,
    merge_tags,
)
from omnizap.catalog.signals import (
    SignalInputs,
    SignalSettings,
    compute_signals,
    drift_weights,
    effective_nsfw_level,
    rescore,
)
from omnizap.catalog.text import manual_tags
from omnizap.config import Settings

SNAPSHOT_SOURCE_VERSION = "omz1"  # bump when a formula changes: older snapshot rows become stale
# Flag of the snapshot read path (pipeline §4.3). Its subject is the pack id, so at a partial rollout
# a pack reads its snapshot everywhere (lists, intents, details, ranking orders) or nowhere.
SNAPSHOT_READ_FLAG = "enable_ranking_snapshot_read"
SNAPSHOT_TAGS_MAX = 30
SIGNAL_KEYS = (
    "classification_confidence",
    "quality_score",
    "engagement_score",
    "diversity_score",
    "cohesion_score",
    "duplicate_penalty",
    "trend_score",
    "pack_score",
    "ranking_score",
    "age_decay_factor",
    "age_decay_days",
    "trending_now",
    "nsfw_level",
    "sensitive_content",
    "scoring_weights",
)


@dataclass(frozen=True)
class DeriveSettings:
    signals: SignalSettings
    tags: TagRules
    drift_sensitivity: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DeriveSettings:
        return cls(
            signals=SignalSettings(
                age_decay_days=settings.sticker_pack_age_decay_days,
                explicit_threshold=settings.sticker_nsfw_explicit_threshold,
                suggestive_threshold=settings.sticker_nsfw_suggestive_threshold,
            ),
            tags=TagRules(
                sticker_min_score=settings.sticker_classification_tag_min_score,
                pack_min_score=settings.pack_classification_tag_min_score,
                max_tags=settings.classification_max_tags,
            ),
            drift_sensitivity=settings.sticker_drift_sensitivity,
        )


@dataclass(frozen=True)
class PackDerivation:
    """Everything computed about one pack: its signals, classification facts and merged tags."""

    pack_id: str
    signals: dict[str, Any]
    facts: ClassificationFacts
    stamp: str  # "<version>|<classified items>:<newest classification change>"
    tags: tuple[str, ...]  # classification tags ∪ manual tags
    nsfw_level: str  # the level the NSFW ceiling compares (is_sensitive makes it explicit)
    open_count: int
    like_count: int
    dislike_count: int
    changed_at: dt.datetime  # the pack's last edit or interaction seen by this derivation
    rescored_from: dt.datetime | None = None  # refreshed_at of the snapshot a rescore started from

    def scores_json(self) -> dict[str, Any]:
        """What the snapshot row keeps beside its columns: the full signals and the facts."""
        return {
            **self.signals,
            "classification_facts": self.facts.to_json(),
            "classification_stamp": self.stamp,
        }


def last_change(updated_at: dt.datetime, counters: Mapping[str, Any] | None) -> dt.datetime:
    """The pack's last change that moves its signals: an edit (updated_at) or an interaction."""
    engaged = counters.get("updated_at") if counters else None
    return engaged if engaged is not None and engaged > updated_at else updated_at


def snapshot_is_fresh(
    snapshot: Mapping[str, Any] | None, changed_at: dt.datetime, now: dt.datetime, max_age: dt.timedelta
) -> bool:
    """A snapshot may stand in for live signals: same formula version, computed after the pack's
    last change (`last_change`) and less than `max_age` ago."""
    if snapshot is None or snapshot.get("source_version") != SNAPSHOT_SOURCE_VERSION:
        return False
    refreshed = snapshot.get("refreshed_at")
    return refreshed is not None and refreshed >= changed_at and refreshed > now - max_age


def signals_from_scores(scores: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(scores, Mapping):
        return None
    return {key: scores[key] for key in SIGNAL_KEYS if key in scores}


def facts_from_scores(scores: Mapping[str, Any] | None) -> ClassificationFacts | None:
    if not isinstance(scores, Mapping) or not isinstance(scores.get("classification_facts"), Mapping):
        return None
    return ClassificationFacts.from_json(scores["classification_facts"])


def derive(
    connection: Connection,
    packs: Sequence[Mapping[str, Any]],
    settings: DeriveSettings,
    now: dt.datetime,
    *,
    everything: bool,
    previous: Callable[[list[str]], Mapping[str, tuple[str, ClassificationFacts]]] | None = None,
    quality_memo: dict[str, tuple[int, float | None]] | None = None,
) -> dict[str, PackDerivation]:
    """Derivations of `packs` (rows of `repository.catalog_pack_rows`).

    `everything=True` reads whole tables instead of id lists (the full build). `previous` gives the
    (stamp, facts) already known for some pack ids; an equal stamp skips re-reading that pack's
    item classifications. `quality_memo` (pack id → (version, quality base)) is read and updated:
    a pack whose version is unchanged keeps its quality (stickers never change size).
    """
    if not packs:
        return {}
    ids = None if everything else [row["id"] for row in packs]
    engagements = repo.engagement_rows(connection, ids)
    windows = repo.interaction_windows(connection, ids, now)
    qualities = _qualities(connection, packs, ids, quality_memo)
    classified = repo.classification_stamps(connection, ids)
    recent, baseline = repo.category_counts(connection, now)
    weights = drift_weights(recent, baseline, settings.drift_sensitivity)

    stamps: dict[str, str] = {}
    facts: dict[str, ClassificationFacts] = {}
    to_load: list[str] = []
    with_classifications = [row["id"] for row in packs if row["id"] in classified]
    known_facts = previous(with_classifications) if previous and with_classifications else {}
    for row in packs:
        pack_id = row["id"]
        stamp = f"{row['version']}|{classified.get(pack_id, '0:')}"
        stamps[pack_id] = stamp
        known = known_facts.get(pack_id)
        if pack_id not in classified:
            facts[pack_id] = empty_facts(int(row["sticker_count"]))
        elif known is not None and known[0] == stamp:
            facts[pack_id] = known[1]
        else:
            to_load.append(pack_id)
    if to_load:
        rows_by_pack = repo.item_classifications(connection, to_load)
        counts = {row["id"]: int(row["sticker_count"]) for row in packs}
        for pack_id in to_load:
            facts[pack_id] = classification_facts(
                counts[pack_id], rows_by_pack.get(pack_id, []), settings.tags
            )

    derived: dict[str, PackDerivation] = {}
    for row in packs:
        pack_id = row["id"]
        counters = engagements.get(pack_id) or {}
        opens_24h, opens_7d = windows.get(pack_id, (0, 0))
        pack_facts = facts[pack_id]
        tags = tuple(merge_tags(pack_facts.tags, manual_tags(row["description"])))
        inputs = SignalInputs(
            sticker_count=int(row["sticker_count"]),
            quality_base=qualities.get(pack_id),
            open_count=int(counters.get("open_count") or 0),
            like_count=int(counters.get("like_count") or 0),
            dislike_count=int(counters.get("dislike_count") or 0),
            opens_24h=opens_24h,
            opens_7d=opens_7d,
            facts=pack_facts,
            tag_count=len(tags),
            reference_time=row["updated_at"] or row["created_at"],
            is_sensitive=bool(row["is_sensitive"]),
        )
        signals = compute_signals(inputs, weights, settings.signals, now)
        derived[pack_id] = PackDerivation(
            pack_id=pack_id,
            signals=signals,
            facts=pack_facts,
            stamp=stamps[pack_id],
            tags=tags,
            nsfw_level=effective_nsfw_level(signals["nsfw_level"], inputs.is_sensitive),
            open_count=inputs.open_count,
            like_count=inputs.like_count,
            dislike_count=inputs.dislike_count,
            changed_at=last_change(row["updated_at"], counters),
        )
    return derived


def rescore_from_snapshots(
    connection: Connection,
    packs: Sequence[Mapping[str, Any]],
    snapshots: Mapping[str, Mapping[str, Any]],
    counters: Mapping[str, Mapping[str, Any]],
    settings: DeriveSettings,
    now: dt.datetime,
) -> dict[str, PackDerivation]:
    """Derivations of packs whose snapshot is fresh but older than an interaction: the snapshot's
    interaction-free parts and facts with the live counters and 24 h / 7 d windows (one query for
    all of them, where `derive` needs seven). Packs whose snapshot lacks a part are left out."""
    if not packs:
        return {}
    windows = repo.interaction_windows(connection, [row["id"] for row in packs], now)
    derived: dict[str, PackDerivation] = {}
    for row in packs:
        pack_id = row["id"]
        scores = (snapshots.get(pack_id) or {}).get("scores_json")
        facts = facts_from_scores(scores)
        base = signals_from_scores(scores)
        if facts is None or base is None or not isinstance(scores, Mapping):
            continue
        counts = counters.get(pack_id) or {}
        opens_24h, opens_7d = windows.get(pack_id, (0, 0))
        likes = int(counts.get("like_count") or 0)
        opens = int(counts.get("open_count") or 0)
        dislikes = int(counts.get("dislike_count") or 0)
        signals = rescore(
            base,
            like_count=likes,
            open_count=opens,
            dislike_count=dislikes,
            opens_24h=opens_24h,
            opens_7d=opens_7d,
            reference_time=row["updated_at"] or row["created_at"],
            settings=settings.signals,
            now=now,
        )
        if signals is None:
            continue
        derived[pack_id] = PackDerivation(
            pack_id=pack_id,
            signals=signals,
            facts=facts,
            stamp=str(scores.get("classification_stamp")),
            tags=tuple(merge_tags(facts.tags, manual_tags(row["description"]))),
            nsfw_level=effective_nsfw_level(signals["nsfw_level"], bool(row["is_sensitive"])),
            open_count=opens,
            like_count=likes,
            dislike_count=dislikes,
            changed_at=last_change(row["updated_at"], counts),
            rescored_from=(snapshots.get(pack_id) or {}).get("refreshed_at"),
        )
    return derived


def current_derivations(
    connection: Connection,
    packs: Sequence[Mapping[str, Any]],
    *,
    counters: Mapping[str, Mapping[str, Any]],
    snapshots: Mapping[str, Mapping[str, Any]],
    settings: DeriveSettings,
    now: dt.datetime,
    max_age: dt.timedelta,
    snapshot_read: Callable[[str], bool],
) -> dict[str, PackDerivation]:
    """Signals of the packs that may not simply read their snapshot (the read path, pipeline §4.3,
    with a freshness bound). Packs left out of the result read theirs as it is:

    - snapshot readable (`snapshot_read`), fresh and newer than the last change: left out;
    - readable and fresh, but older than an interaction (a like, an open): rescored — the
      interaction-free parts from the snapshot, engagement and trend live (`rescore_from_snapshots`);
    - otherwise (flag off for the pack, no snapshot, another formula version, an edit after it, past
      the bound): computed from the database (`derive`).

    `snapshots` may hold rows without `scores_json`; those needed for rescoring are read here.
    """
    rescored: list[Mapping[str, Any]] = []
    computed: list[Mapping[str, Any]] = []
    for row in packs:
        pack_id = row["id"]
        snapshot = snapshots.get(pack_id)
        if not snapshot_read(pack_id) or not snapshot_is_fresh(snapshot, row["updated_at"], now, max_age):
            computed.append(row)
        elif not snapshot_is_fresh(
            snapshot, last_change(row["updated_at"], counters.get(pack_id)), now, max_age
        ):
            rescored.append(row)
    result: dict[str, PackDerivation] = {}
    if rescored:
        with_scores = snapshots
        missing = [row["id"] for row in rescored if "scores_json" not in (snapshots.get(row["id"]) or {})]
        if missing:
            with_scores = {**snapshots, **repo.snapshot_rows(connection, missing, with_scores=True)}
        result = rescore_from_snapshots(connection, rescored, with_scores, counters, settings, now)
        computed.extend(row for row in rescored if row["id"] not in result)
    if computed:
        result.update(derive(connection, computed, settings, now, everything=False))
    return result


def _qualities(
    connection: Connection,
    packs: Sequence[Mapping[str, Any]],
    ids: list[str] | None,
    memo: dict[str, tuple[int, float | None]] | None,
) -> dict[str, float | None]:
    if memo is None:
        return dict(repo.quality_bases(connection, ids))
    stale = [row["id"] for row in packs if memo.get(row["id"], (None, None))[0] != int(row["version"])]
    if stale:
        # Most packs stale (a first build): one pass over every item beats long id lists.
        fresh = repo.quality_bases(connection, None if 2 * len(stale) > len(packs) else stale)
        versions = {row["id"]: int(row["version"]) for row in packs}
        for pack_id in stale:
            memo[pack_id] = (versions[pack_id], fresh.get(pack_id))
    return {row["id"]: memo[row["id"]][1] for row in packs}


def snapshot_row(derivation: PackDerivation, sticker_count: int, refreshed_at: dt.datetime) -> dict[str, Any]:
    signals = derivation.signals
    return {
        "pack_id": derivation.pack_id,
        "ranking_score": signals["ranking_score"],
        "pack_score": signals["pack_score"],
        "trend_score": signals["trend_score"],
        "quality_score": signals["quality_score"],
        "engagement_score": signals["engagement_score"],
        "diversity_score": signals["diversity_score"],
        "cohesion_score": signals["cohesion_score"],
        "sensitive_content": 1 if signals["sensitive_content"] else 0,
        "nsfw_level": signals["nsfw_level"],
        "sticker_count": sticker_count,
        "tags": list(derivation.tags[:SNAPSHOT_TAGS_MAX]),
        "scores_json": derivation.scores_json(),
        "source_version": SNAPSHOT_SOURCE_VERSION,
        "refreshed_at": refreshed_at,
        "created_at": refreshed_at,
        "updated_at": refreshed_at,
    }
