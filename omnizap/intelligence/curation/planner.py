"""Pure planning: classification rows plus the current auto packs in, a plan of changes out.

Nothing here reads the database or the clock, so the same snapshot always gives the same plan —
which is what makes a second cycle on unchanged data a no-op. Steps (docs/curation.md):

1. `evaluate`: quality gate (§2.2), theme centroids from the embeddings, the §2.4 score with the
   embedding's similarity to its theme centroid as the alignment term, and the verdict.
2. `plan_curation`: near-duplicates (cosine ≥ 0.985) kept out against the theme's packs and each
   other, then existing volumes completed before new ones start (≥ 12 to start, 30 per volume),
   within the additions budget and the pack limits.
3. `plan_rebuild`: misfits (NSFW mismatch, theme changed, near-duplicate, failed gate) removed
   from auto packs worst first within the removals budget; volumes left under the minimum retire.

Both take every member that is not shareable (never in a public or unlisted pack) out of the auto
packs first, outside the removals budget: a private sticker must not stay published.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from omnizap.intelligence.curation.policy import CurationPolicy
from omnizap.intelligence.curation.rows import StickerRow
from omnizap.intelligence.taxonomy import theme_titles

# Verdict reasons (a row that fits has none).
MIN_EDGE = "min_edge"
MIN_AREA = "min_area"
MIN_SIZE_BYTES = "min_size_bytes"
BLURRY = "blurry"
LOW_QUALITY = "low_quality"
CENTROID_DISAGREEMENT = "centroid_disagreement"
LOW_SCORE = "low_score"
# Planning reasons.
NEAR_DUPLICATE = "near_duplicate"
GROUP_TOO_SMALL = "group_too_small"
ADDITIONS_BUDGET = "additions_budget"
THEME_PACK_LIMIT = "theme_pack_limit"
GLOBAL_PACK_LIMIT = "global_pack_limit"
# Rebuild reasons, most urgent first (the order removals take the budget in).
NSFW_MISMATCH = "nsfw_mismatch"
THEME_CHANGED = "theme_changed"
REMOVAL_BUDGET = "removal_budget"
UNCLASSIFIED = "unclassified"
UNDERSIZED = "undersized"
# Privacy: a member that was never in a public or unlisted pack (removed by every cycle, unbudgeted).
NOT_SHAREABLE = "not_shareable"
_SEVERITY = {NSFW_MISMATCH: 0, THEME_CHANGED: 1, NEAR_DUPLICATE: 2}

MARKER = "[auto-theme:{key}]"
NAME_PREFIX = "[AUTO]"
SEPARATOR = " • "
SENSITIVE_TITLE_SUFFIX = " (NSFW)"
# The alignment term never dominates: an embedding's cosine to its centroid is read in [0, 1].
_DEDUPE_BLOCK = 1024

GroupKey = tuple[str, bool]  # (theme key, sensitive)


# --- inputs and outputs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoPack:
    """A live theme pack of the system owner as the planner sees it (items in pack order)."""

    id: str
    theme_key: str
    volume: int
    sensitive: bool
    name: str
    description: str | None
    pack_status: str
    status: str
    items: tuple[str, ...]

    @property
    def group(self) -> GroupKey:
        return (self.theme_key, self.sensitive)


@dataclass(frozen=True)
class Snapshot:
    """What one cycle reads: usable rows (unpacked candidates and auto-pack members), which of them
    are candidates, the auto packs, and the rows skipped as unreadable with their reasons."""

    rows: Mapping[str, StickerRow]
    candidates: frozenset[str]
    packs: tuple[AutoPack, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)  # asset id -> reason
    scanned: int = 0
    unshareable: frozenset[str] = frozenset()  # pack members never in a public or unlisted pack


@dataclass(frozen=True)
class Verdict:
    asset_id: str
    group: GroupKey
    score: float
    centroid_similarity: float
    reason: str | None


@dataclass(frozen=True)
class NewVolume:
    theme_key: str
    sensitive: bool
    volume: int
    name: str
    description: str
    stickers: tuple[str, ...]


@dataclass(frozen=True)
class PackEdit:
    pack_id: str
    theme_key: str
    volume: int
    add: tuple[str, ...] = ()
    remove: tuple[tuple[str, str], ...] = ()  # (sticker id, reason)
    name: str | None = None
    description: str | None = None
    pack_status: str | None = None  # the state the pack should end in (derived from the count)


@dataclass(frozen=True)
class Retirement:
    pack_id: str
    theme_key: str
    volume: int
    reason: str
    released: tuple[str, ...]  # fitting stickers let go (they become candidates again)
    removed: tuple[tuple[str, str], ...] = ()  # misfits taken out with it (these use the budget)


@dataclass
class Plan:
    kind: str
    edits: list[PackEdit] = field(default_factory=list)
    creations: list[NewVolume] = field(default_factory=list)
    retirements: list[Retirement] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why rows or stickers were left out
    candidates: int = 0
    accepted: int = 0
    scanned: int = 0

    @property
    def additions(self) -> int:
        return sum(len(edit.add) for edit in self.edits) + sum(len(new.stickers) for new in self.creations)

    @property
    def removals(self) -> int:
        return sum(len(edit.remove) for edit in self.edits) + sum(len(r.removed) for r in self.retirements)

    @property
    def is_empty(self) -> bool:
        return not (self.edits or self.creations or self.retirements)


# --- names ------------------------------------------------------------------------------------------
def pack_name(theme_key: str, volume: int, sensitive: bool) -> str:
    theme, sub = theme_titles(theme_key)
    suffix = SENSITIVE_TITLE_SUFFIX if sensitive else ""
    return f"{NAME_PREFIX} {theme}{SEPARATOR}{sub}{suffix}{SEPARATOR}Vol. {volume}"


def pack_description(theme_key: str, sensitive: bool) -> str:
    # No score in the text (the original wrote one): a description that changes every cycle would
    # make every cycle a change.
    theme, sub = theme_titles(theme_key)
    note = " Sensitive content (NSFW)." if sensitive else ""
    return f"{MARKER.format(key=theme_key)} Automatic theme curation. Theme: {theme} / {sub}.{note}"


def pack_state(count: int, policy: CurationPolicy) -> str:
    return "ready" if count >= policy.ready_min_items else "building"


# --- evaluation -------------------------------------------------------------------------------------
def is_sensitive(row: StickerRow, policy: CurationPolicy) -> bool:
    return row.is_nsfw or row.nsfw_score >= policy.sensitive_threshold


def quality_gate(row: StickerRow, policy: CurationPolicy) -> str | None:
    """§2.2: the first failed check, or None. Unknown dimensions pass, as in the original."""
    if row.width is not None and row.height is not None:
        if min(row.width, row.height) < policy.min_asset_edge:
            return MIN_EDGE
        if row.width * row.height < policy.min_asset_area:
            return MIN_AREA
    if row.size_bytes is not None and row.size_bytes < policy.min_asset_bytes:
        return MIN_SIZE_BYTES
    if row.blur is not None and row.blur > policy.max_blurry_score:
        return BLURRY
    if row.low_quality is not None and row.low_quality > policy.max_low_quality_score:
        return LOW_QUALITY
    return None


def candidate_score(row: StickerRow, alignment: float, policy: CurationPolicy) -> float:
    """§2.4 per-asset score. Affinity is 0 (no feedback table, as the original in practice, §13.9);
    alignment is the embedding's cosine to its theme centroid instead of a tag score."""
    w1, w2, w3, w4 = policy.quality_weights
    entropy_n = 0.5 if row.entropy is None else min(1.0, max(0.0, row.entropy / policy.entropy_threshold))
    affinity_n = 0.0
    alignment = min(1.0, max(0.0, alignment))
    asset_quality = w1 * row.confidence + w2 * (1 - entropy_n) + w3 * affinity_n + w4 * alignment
    image_quality = max(0.2, 1 - min(0.6, 0.35 * (row.blur or 0.0) + 0.35 * (row.low_quality or 0.0)))
    score = (
        0.65 * asset_quality
        + 0.20 * image_quality
        + 0.18 * affinity_n
        + policy.margin_bonus_weight * row.margin
        - (policy.ambiguous_penalty * float(row.ambiguous) + policy.entropy_weight * entropy_n)
    )
    return round(min(1.2, max(0.0, score)), 6)


def _centroids(matrix: np.ndarray, bounds: Sequence[tuple[int, int]], weights: np.ndarray) -> np.ndarray:
    """Per-theme weighted mean direction, L2-normalised (a theme without weight stays zero).

    Rows are sorted by theme, so each theme is a contiguous slice and its sum one matrix-vector
    product over a view: no copy of the matrix and no work on other themes' rows."""
    sums = np.zeros((len(bounds), matrix.shape[1]), dtype=np.float32)
    for theme, (start, end) in enumerate(bounds):
        if end > start:
            sums[theme] = weights[start:end] @ matrix[start:end]
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)


def _centroid_similarities(rows: Sequence[StickerRow]) -> dict[str, tuple[float, float]]:
    """asset id -> (cosine to its own theme's centroid, that minus the best other theme's).

    Computed per embedding dimension (vectors of different lengths are never compared) over rows in
    (theme, asset id) order, so equal inputs give bit-equal centroids. One refinement pass
    recomputes each centroid from the rows that agree with it, so mislabelled rows do not pull it
    their way.
    """
    by_dimension: dict[int, list[StickerRow]] = defaultdict(list)
    for row in sorted(rows, key=lambda item: (item.theme_key, item.asset_id)):
        by_dimension[row.dimension].append(row)
    result: dict[str, tuple[float, float]] = {}
    for group in by_dimension.values():
        themes = sorted({row.theme_key for row in group})
        index = {theme: position for position, theme in enumerate(themes)}
        labels = np.fromiter((index[row.theme_key] for row in group), dtype=np.int64, count=len(group))
        starts = np.searchsorted(labels, np.arange(len(themes)), side="left")
        ends = np.searchsorted(labels, np.arange(len(themes)), side="right")
        bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))
        weights = np.fromiter((max(row.confidence, 1e-3) for row in group), dtype=np.float32)
        matrix = np.stack([row.embedding for row in group])
        centroids = _centroids(matrix, bounds, weights)
        similarity = matrix @ centroids.T
        agree = similarity.argmax(axis=1) == labels
        if agree.any():
            refined = _centroids(matrix, bounds, weights * agree)
            # A theme none of whose rows agree keeps its first centroid rather than vanishing.
            empty = ~np.any(refined, axis=1)
            refined[empty] = centroids[empty]
            similarity = matrix @ refined.T
        positions = np.arange(len(group))
        own = similarity[positions, labels]
        if len(themes) > 1:
            similarity[positions, labels] = -np.inf
            gap = own - similarity.max(axis=1)
        else:
            gap = np.full(len(group), np.inf)
        for asset_id, own_value, gap_value in zip(
            (row.asset_id for row in group), own.tolist(), gap.tolist(), strict=True
        ):
            result[asset_id] = (own_value, gap_value)
    return result


def evaluate(rows: Mapping[str, StickerRow], policy: CurationPolicy) -> dict[str, Verdict]:
    """A verdict for every usable row: its group, score and the reason it does not fit (or None)."""
    gates = {asset_id: quality_gate(row, policy) for asset_id, row in rows.items()}
    similarities = _centroid_similarities([row for asset_id, row in rows.items() if gates[asset_id] is None])
    verdicts: dict[str, Verdict] = {}
    for asset_id, row in rows.items():
        group = (row.theme_key, is_sensitive(row, policy))
        own, gap = similarities.get(asset_id, (0.0, 0.0))
        score = candidate_score(row, own, policy)
        reason = gates[asset_id]
        if reason is None and gap < -policy.centroid_margin:
            reason = CENTROID_DISAGREEMENT
        if reason is None and score < policy.min_candidate_score:
            reason = LOW_SCORE
        verdicts[asset_id] = Verdict(asset_id, group, score, own, reason)
    return verdicts


# --- near-duplicates ----------------------------------------------------------------------------------
def near_duplicates(
    ordered: Sequence[StickerRow],
    references: Iterable[StickerRow],
    threshold: float,
    *,
    keep_at_most: int | None = None,
) -> tuple[set[str], set[str]]:
    """(ids in `ordered` to drop, ids examined at all).

    `ordered` is best first. A row is dropped when its cosine to any reference, or — greedily — to
    any better row kept, is ≥ `threshold`. Work is per embedding dimension (vectors of different
    lengths are never compared) in blocks of rows, each compared by one matrix product, so a theme
    of n stickers costs about n²·d/BLOCK multiply-adds in BLAS and no Python loop over pairs.

    With `keep_at_most`, examination stops once that many rows are kept: a cycle can place no more
    than its additions budget, and the rows after that are decided by a later cycle (the same way,
    since the order and the references are the same then).
    """
    dropped: set[str] = set()
    examined: set[str] = set()
    references_by_dim: dict[int, list[np.ndarray]] = defaultdict(list)
    for row in references:
        references_by_dim[row.dimension].append(row.embedding)
    reference_matrix = {dim: np.stack(vectors) for dim, vectors in references_by_dim.items()}
    by_dim: dict[int, list[StickerRow]] = defaultdict(list)
    for row in ordered:
        by_dim[row.dimension].append(row)
    for dimension, group in by_dim.items():
        kept: list[np.ndarray] = []
        kept_count = 0
        reference = reference_matrix.get(dimension)
        for start in range(0, len(group), _DEDUPE_BLOCK):
            if keep_at_most is not None and kept_count >= keep_at_most:
                break
            chunk_rows = group[start : start + _DEDUPE_BLOCK]
            chunk = np.stack([row.embedding for row in chunk_rows])
            suppressed = np.zeros(len(chunk_rows), dtype=bool)
            if reference is not None:
                suppressed |= (chunk @ reference.T).max(axis=1) >= threshold
            if kept:
                suppressed |= (chunk @ np.concatenate(kept).T).max(axis=1) >= threshold
            inner = chunk @ chunk.T
            later: dict[int, list[int]] = defaultdict(list)
            for first, second in zip(*np.nonzero(inner >= threshold), strict=True):
                if second > first:
                    later[int(first)].append(int(second))
            keep_mask = np.zeros(len(chunk_rows), dtype=bool)
            for position in range(len(chunk_rows)):
                if keep_at_most is not None and kept_count >= keep_at_most:
                    break
                examined.add(chunk_rows[position].asset_id)
                if suppressed[position]:
                    dropped.add(chunk_rows[position].asset_id)
                    continue
                keep_mask[position] = True
                kept_count += 1
                for column in later.get(position, ()):
                    suppressed[column] = True
            if keep_mask.any():
                kept.append(chunk[keep_mask])
    return dropped, examined


# --- curation -----------------------------------------------------------------------------------------
def _lowest_free_volume(used: set[int]) -> int:
    volume = 1
    while volume in used:
        volume += 1
    return volume


def _state_fix(pack: AutoPack, count: int, policy: CurationPolicy) -> dict[str, str]:
    """Fields of an existing pack that differ from what its theme, volume and count imply."""
    fixes: dict[str, str] = {}
    name = pack_name(pack.theme_key, pack.volume, pack.sensitive)
    description = pack_description(pack.theme_key, pack.sensitive)
    if pack.name != name:
        fixes["name"] = name
    if pack.description != description:
        fixes["description"] = description
    state = pack_state(count, policy)
    expected_status = "published" if state == "ready" else "draft"
    if pack.pack_status != state or pack.status != expected_status:
        fixes["pack_status"] = state
    return fixes


def _withdraw_unshareable(
    snapshot: Snapshot,
) -> tuple[tuple[AutoPack, ...], dict[str, tuple[tuple[str, str], ...]]]:
    """The auto packs without their unshareable members, and those members per pack id."""
    if not snapshot.unshareable:
        return snapshot.packs, {}
    packs: list[AutoPack] = []
    withdrawn: dict[str, tuple[tuple[str, str], ...]] = {}
    for pack in snapshot.packs:
        private = tuple((item, NOT_SHAREABLE) for item in pack.items if item in snapshot.unshareable)
        if private:
            withdrawn[pack.id] = private
            pack = replace(pack, items=tuple(i for i in pack.items if i not in snapshot.unshareable))
        packs.append(pack)
    return tuple(packs), withdrawn


def plan_curation(snapshot: Snapshot, policy: CurationPolicy) -> Plan:
    """Fill auto packs from unpacked candidates: complete existing volumes, then start new ones."""
    plan = Plan(kind="curation")
    members_all = {asset_id for pack in snapshot.packs for asset_id in pack.items}
    auto_packs, withdrawn = _withdraw_unshareable(snapshot)
    snapshot = replace(snapshot, packs=auto_packs)
    plan.skipped.update(
        Counter(reason for asset_id, reason in snapshot.skipped.items() if asset_id not in members_all)
    )
    verdicts = evaluate(snapshot.rows, policy)
    candidates = [verdicts[asset_id] for asset_id in sorted(snapshot.candidates) if asset_id in verdicts]
    plan.candidates = len(candidates)
    accepted: list[Verdict] = []
    for verdict in candidates:
        if verdict.reason is None:
            accepted.append(verdict)
        else:
            plan.skipped[verdict.reason] += 1

    packs_by_theme: dict[str, list[AutoPack]] = defaultdict(list)
    for pack in snapshot.packs:
        packs_by_theme[pack.theme_key].append(pack)
    by_theme: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in accepted:
        by_theme[verdict.group[0]].append(verdict)
    queues: dict[GroupKey, list[str]] = defaultdict(list)
    for theme, verdicts_of_theme in sorted(by_theme.items()):
        ordered = sorted(verdicts_of_theme, key=lambda item: (-item.score, item.asset_id))
        members = [
            snapshot.rows[item]
            for pack in packs_by_theme.get(theme, ())
            for item in pack.items
            if item in snapshot.rows
        ]
        dropped, examined = near_duplicates(
            [snapshot.rows[item.asset_id] for item in ordered],
            members,
            policy.dedupe_similarity,
            keep_at_most=policy.max_additions,
        )
        for verdict in ordered:
            if verdict.asset_id not in examined:
                # Beyond what one cycle could place anyway: a later cycle decides them.
                plan.skipped[ADDITIONS_BUDGET] += 1
            elif verdict.asset_id in dropped:
                plan.skipped[NEAR_DUPLICATE] += 1
            else:
                queues[verdict.group].append(verdict.asset_id)
    plan.accepted = sum(len(queue) for queue in queues.values())

    budget = policy.max_additions
    packs_by_group: dict[GroupKey, list[AutoPack]] = defaultdict(list)
    for pack in snapshot.packs:
        packs_by_group[pack.group].append(pack)
    # 1. Complete existing volumes, fullest first (the original's "prioritise completion"), and bring
    #    every pack's name, marker and ready state in line with its count.
    for pack in sorted(snapshot.packs, key=lambda p: (-len(p.items), p.theme_key, p.sensitive, p.volume)):
        queue = queues.get(pack.group, [])
        room = max(0, policy.target_size - len(pack.items))
        take = min(room, budget, len(queue))
        add = tuple(queue[:take])
        del queue[:take]
        budget -= take
        fixes = _state_fix(pack, len(pack.items) + take, policy)
        if add or fixes or pack.id in withdrawn:
            plan.edits.append(
                PackEdit(
                    pack.id,
                    pack.theme_key,
                    pack.volume,
                    add=add,
                    remove=withdrawn.get(pack.id, ()),
                    name=fixes.get("name"),
                    description=fixes.get("description"),
                    pack_status=pack_state(len(pack.items) + take, policy),
                )
            )
    # 2. Start new volumes, one per theme group per round so one big theme cannot take the whole
    #    budget; a volume starts only with at least the minimum and never below it for lack of budget.
    live_packs = len(snapshot.packs)
    used_volumes = {group: {pack.volume for pack in packs} for group, packs in packs_by_group.items()}
    order = sorted(queues, key=lambda group: (-len(queues[group]), group))
    progressed = True
    while progressed:
        progressed = False
        for group in order:
            queue = queues[group]
            volumes = used_volumes.setdefault(group, set())
            if len(queue) < policy.min_group_size or budget < policy.min_group_size:
                continue
            if len(volumes) >= policy.max_packs_per_theme or live_packs >= policy.global_pack_limit:
                continue
            size = min(policy.target_size, len(queue), budget)
            volume = _lowest_free_volume(volumes)
            theme, sensitive = group
            plan.creations.append(
                NewVolume(
                    theme,
                    sensitive,
                    volume,
                    pack_name(theme, volume, sensitive),
                    pack_description(theme, sensitive),
                    tuple(queue[:size]),
                )
            )
            del queue[:size]
            volumes.add(volume)
            budget -= size
            live_packs += 1
            progressed = True
    # 3. Say why every accepted candidate that found no place is still waiting.
    for group, queue in queues.items():
        if not queue:
            continue
        if len(used_volumes.get(group, ())) >= policy.max_packs_per_theme:
            reason = THEME_PACK_LIMIT
        elif live_packs >= policy.global_pack_limit:
            reason = GLOBAL_PACK_LIMIT
        elif len(queue) < policy.min_group_size:
            reason = GROUP_TOO_SMALL
        else:
            reason = ADDITIONS_BUDGET
        plan.skipped[reason] += len(queue)
    return plan


# --- rebuild ------------------------------------------------------------------------------------------
def plan_rebuild(snapshot: Snapshot, policy: CurationPolicy) -> Plan:
    """Take misfits out of auto packs, worst first, within the removals budget; retire volumes that
    end (or already are) under the minimum. Only packs in the snapshot (auto theme packs) appear."""
    plan = Plan(kind="rebuild")
    auto_packs, withdrawn = _withdraw_unshareable(snapshot)
    snapshot = replace(snapshot, packs=auto_packs)
    verdicts = evaluate(snapshot.rows, policy)
    proposals: list[tuple[int, float, str, int, str, str, str]] = []  # sort key + (pack, asset, reason)
    by_theme: dict[str, list[tuple[AutoPack, str]]] = defaultdict(list)
    for pack in snapshot.packs:
        for asset_id in pack.items:
            verdict = verdicts.get(asset_id)
            if verdict is None:
                # No usable row: nothing says the sticker is wrong here, so it stays (counted).
                plan.skipped[snapshot.skipped.get(asset_id, UNCLASSIFIED)] += 1
                continue
            row = snapshot.rows[asset_id]
            reason: str | None
            if verdict.group[1] != pack.sensitive:
                reason = NSFW_MISMATCH
            elif row.theme_key != pack.theme_key:
                reason = THEME_CHANGED
            else:
                reason = verdict.reason
            if reason is None:
                by_theme[pack.theme_key].append((pack, asset_id))
            else:
                severity = _SEVERITY.get(reason, 3)
                proposals.append(
                    (severity, verdict.score, pack.theme_key, pack.volume, pack.id, asset_id, reason)
                )
    for theme, members in sorted(by_theme.items()):
        ordered = sorted(members, key=lambda pair: (-verdicts[pair[1]].score, pair[1]))
        dropped, _ = near_duplicates(
            [snapshot.rows[asset_id] for _, asset_id in ordered], (), policy.dedupe_similarity
        )
        for pack, asset_id in ordered:
            if asset_id in dropped:
                score = verdicts[asset_id].score
                proposals.append(
                    (_SEVERITY[NEAR_DUPLICATE], score, theme, pack.volume, pack.id, asset_id, NEAR_DUPLICATE)
                )
    proposals.sort()
    removals: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for proposal in proposals[: policy.max_removals]:
        _, _, _, _, pack_id, asset_id, reason = proposal
        removals[pack_id].append((asset_id, reason))
    if len(proposals) > policy.max_removals:
        plan.skipped[REMOVAL_BUDGET] += len(proposals) - policy.max_removals
    for pack in snapshot.packs:
        removed = [*withdrawn.get(pack.id, ()), *removals.get(pack.id, [])]
        gone = {asset_id for asset_id, _ in removed}
        remaining = tuple(asset_id for asset_id in pack.items if asset_id not in gone)
        if len(remaining) < policy.min_pack_items:
            plan.retirements.append(
                Retirement(pack.id, pack.theme_key, pack.volume, UNDERSIZED, remaining, tuple(removed))
            )
            continue
        fixes = _state_fix(pack, len(remaining), policy)
        if removed or fixes:
            plan.edits.append(
                PackEdit(
                    pack.id,
                    pack.theme_key,
                    pack.volume,
                    remove=tuple(removed),
                    name=fixes.get("name"),
                    description=fixes.get("description"),
                    pack_status=pack_state(len(remaining), policy),
                )
            )
    return plan
