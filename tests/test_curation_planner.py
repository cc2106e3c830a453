"""Curation's pure parts: reading hostile rows, the quality gate, near-duplicates and volume planning."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from omnizap.intelligence.curation import planner, rows
from omnizap.intelligence.curation.planner import AutoPack, Snapshot, plan_curation, plan_rebuild
from omnizap.intelligence.curation.policy import CurationPolicy
from omnizap.intelligence.curation.rows import StickerRow, parse_embedding, parse_embeddings, parse_row
from omnizap.intelligence.taxonomy import SUBTHEME_BY_KEY

DIM = 16


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def raw_row(**overrides: Any) -> dict[str, Any]:
    base = {
        "asset_id": "a1",
        "theme_key": "animals/cats",
        "confidence": 0.8,
        "confidence_margin": 0.4,
        "entropy": 0.6,
        "ambiguous": 0,
        "nsfw_score": 0.01,
        "is_nsfw": 0,
        "signals": {"blur": 0.1},
        "embedding": unit(np.arange(1, DIM + 1, dtype=np.float32)).tobytes(),
        "width": 512,
        "height": 512,
        "size_bytes": 20_000,
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"theme_key": None}, rows.MISSING_THEME),
        ({"theme_key": "   "}, rows.MISSING_THEME),
        ({"theme_key": 42}, rows.MISSING_THEME),
        ({"theme_key": "animals/unicorns"}, rows.UNKNOWN_THEME),
        ({"theme_key": "x" * 500}, rows.UNKNOWN_THEME),
        ({"confidence": float("nan")}, rows.INVALID_CONFIDENCE),
        ({"confidence": float("inf")}, rows.INVALID_CONFIDENCE),
        ({"confidence": None}, rows.INVALID_CONFIDENCE),
        ({"confidence": True}, rows.INVALID_CONFIDENCE),
        ({"confidence": "high"}, rows.INVALID_CONFIDENCE),
        ({"confidence": 1.5}, rows.INVALID_CONFIDENCE),
        ({"confidence": -0.1}, rows.INVALID_CONFIDENCE),
        ({"entropy": float("nan")}, rows.INVALID_SCORES),
        ({"entropy": -1.0}, rows.INVALID_SCORES),
        ({"confidence_margin": float("-inf")}, rows.INVALID_SCORES),
        ({"nsfw_score": "lots"}, rows.INVALID_SCORES),
        ({"embedding": None}, rows.MISSING_EMBEDDING),
        ({"embedding": b""}, rows.INVALID_EMBEDDING),
        ({"embedding": b"\x00\x01\x02"}, rows.INVALID_EMBEDDING),
        ({"embedding": "not bytes"}, rows.INVALID_EMBEDDING),
        ({"embedding": np.zeros(DIM, dtype=np.float32).tobytes()}, rows.INVALID_EMBEDDING),
        ({"embedding": np.full(DIM, np.nan, dtype=np.float32).tobytes()}, rows.INVALID_EMBEDDING),
        ({"embedding": np.full(DIM, 3e38, dtype=np.float32).tobytes()}, rows.INVALID_EMBEDDING),
        ({"embedding": (np.ones(DIM, dtype=np.float32) * 2).tobytes()}, rows.INVALID_EMBEDDING),
        ({"asset_id": None}, rows.INVALID_ROW),
    ],
)
def test_hostile_rows_become_a_reason(overrides: dict[str, Any], reason: str) -> None:
    raw = raw_row(**overrides)
    assert parse_row(raw, SUBTHEME_BY_KEY) == reason
    # The batch reader agrees with the one-row reader on every embedding.
    single = parse_embedding(raw["embedding"])
    batch = parse_embeddings([raw["embedding"]])[0]
    assert (isinstance(single, str) and single == batch) or np.array_equal(single, batch)


def test_a_good_row_is_read_with_defaults_for_missing_optional_values() -> None:
    parsed = parse_row(
        raw_row(
            entropy=None,
            confidence_margin=None,
            nsfw_score=None,
            signals="garbage",
            width=None,
            embedding=memoryview(unit(np.ones(DIM, dtype=np.float32)).tobytes()),
        ),
        SUBTHEME_BY_KEY,
    )
    assert isinstance(parsed, StickerRow)
    assert parsed.entropy is None and parsed.margin == 0.0 and parsed.nsfw_score == 0.0
    assert parsed.blur is None and parsed.width is None and parsed.dimension == DIM
    assert math.isclose(float(np.linalg.norm(parsed.embedding)), 1.0, rel_tol=1e-6)
    # Anything truthy in is_nsfw counts (fails safe).
    assert parse_row(raw_row(is_nsfw="yes"), SUBTHEME_BY_KEY).is_nsfw  # type: ignore[union-attr]


def sticker(asset_id: str, theme: str, vector: np.ndarray, **values: Any) -> StickerRow:
    fields: dict[str, Any] = {
        "confidence": 0.85,
        "margin": 0.5,
        "entropy": 0.5,
        "ambiguous": False,
        "nsfw_score": 0.0,
        "is_nsfw": False,
        "blur": None,
        "low_quality": None,
        "width": 512,
        "height": 512,
        "size_bytes": 20_000,
    }
    fields.update(values)
    return StickerRow(asset_id=asset_id, theme_key=theme, embedding=unit(vector), **fields)


def cluster(
    theme: str, count: int, centre: np.ndarray, rng: np.random.Generator, prefix: str
) -> list[StickerRow]:
    return [
        sticker(f"{prefix}{index:03d}", theme, centre + rng.normal(scale=0.5, size=centre.shape))
        for index in range(count)
    ]


def snapshot(stickers: list[StickerRow], packs: tuple[AutoPack, ...] = ()) -> Snapshot:
    members = {item for pack in packs for item in pack.items}
    return Snapshot(
        rows={row.asset_id: row for row in stickers},
        candidates=frozenset(row.asset_id for row in stickers if row.asset_id not in members),
        packs=packs,
    )


def test_near_duplicates_are_greedy_best_first_and_never_compare_different_dimensions() -> None:
    base = unit(np.arange(1, DIM + 1, dtype=np.float32))
    close = unit(base + 0.001)
    other = unit(np.arange(DIM, 0, -1, dtype=np.float32))
    rows_ = [
        sticker("best", "animals/cats", base),
        sticker("copy", "animals/cats", close),
        sticker("other", "animals/cats", other),
        sticker("short", "animals/cats", np.ones(8, dtype=np.float32)),
    ]
    dropped, examined = planner.near_duplicates(rows_, (), 0.985)
    assert dropped == {"copy"} and examined == {"best", "copy", "other", "short"}
    dropped, _ = planner.near_duplicates(rows_[1:], [rows_[0]], 0.985)  # against a pack member
    assert dropped == {"copy"}
    dropped, examined = planner.near_duplicates(rows_, (), 0.985, keep_at_most=1)
    assert dropped == set() and examined == {"best", "short"}  # the best of each length


def test_near_duplicates_across_blocks_match_a_pairwise_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "_DEDUPE_BLOCK", 7)
    rng = np.random.default_rng(3)
    base = [unit(rng.normal(size=DIM)) for _ in range(20)]
    vectors = base + [unit(vector + rng.normal(scale=0.01, size=DIM)) for vector in base[:10]]
    rows_ = [sticker(f"s{index:02d}", "animals/cats", vector) for index, vector in enumerate(vectors)]
    dropped, _ = planner.near_duplicates(rows_, (), 0.985)
    kept: list[np.ndarray] = []
    expected = set()
    for row in rows_:
        if any(float(row.embedding @ other) >= 0.985 for other in kept):
            expected.add(row.asset_id)
        else:
            kept.append(row.embedding)
    assert dropped == expected and len(expected) >= 10


def test_a_mislabelled_sticker_sits_nearer_another_theme_and_is_kept_out() -> None:
    rng = np.random.default_rng(1)
    cats, dogs = rng.normal(size=DIM), rng.normal(size=DIM)
    stickers = cluster("animals/cats", 20, cats, rng, "c") + cluster("animals/dogs", 20, dogs, rng, "d")
    stickers.append(sticker("liar", "animals/cats", dogs + rng.normal(scale=0.1, size=DIM)))
    verdicts = planner.evaluate({row.asset_id: row for row in stickers}, CurationPolicy())
    assert verdicts["liar"].reason == planner.CENTROID_DISAGREEMENT
    assert all(verdicts[row.asset_id].reason is None for row in stickers[:40])


def test_quality_gate_reasons() -> None:
    policy = CurationPolicy()
    vector = np.ones(DIM, dtype=np.float32)
    assert planner.quality_gate(sticker("a", "animals/cats", vector, width=100), policy) == planner.MIN_EDGE
    assert (
        planner.quality_gate(sticker("a", "animals/cats", vector, size_bytes=10), policy) == "min_size_bytes"
    )
    assert planner.quality_gate(sticker("a", "animals/cats", vector, blur=0.9), policy) == planner.BLURRY
    assert (
        planner.quality_gate(sticker("a", "animals/cats", vector, low_quality=0.9), policy) == "low_quality"
    )
    assert planner.quality_gate(sticker("a", "animals/cats", vector, width=None, height=None), policy) is None


@pytest.mark.parametrize(("count", "packs", "state"), [(11, 0, None), (12, 1, "building"), (20, 1, "ready")])
def test_a_volume_starts_at_twelve_and_is_ready_at_twenty(count: int, packs: int, state: str | None) -> None:
    rng = np.random.default_rng(2)
    plan = plan_curation(
        snapshot(cluster("animals/cats", count, rng.normal(size=DIM), rng, "c")), CurationPolicy()
    )
    assert len(plan.creations) == packs
    if packs:
        new = plan.creations[0]
        assert new.name == "[AUTO] Animals • Cats • Vol. 1"
        assert new.description.startswith("[auto-theme:animals/cats]")
        assert planner.pack_state(len(new.stickers), CurationPolicy()) == state
    else:
        assert plan.skipped[planner.GROUP_TOO_SMALL] == count


def test_volumes_fill_before_new_ones_and_the_budget_never_starts_an_undersized_one() -> None:
    rng = np.random.default_rng(4)
    stickers = cluster("animals/cats", 80, rng.normal(size=DIM), rng, "c")
    existing = AutoPack(
        id="p1",
        theme_key="animals/cats",
        volume=2,  # volume 1 was retired: the next new one takes the free number 1
        sensitive=False,
        name="[AUTO] Animals • Cats • Vol. 2",
        description=planner.pack_description("animals/cats", False),
        pack_status="building",
        status="draft",
        items=tuple(row.asset_id for row in stickers[:15]),
    )
    plan = plan_curation(snapshot(stickers, (existing,)), CurationPolicy(max_additions=26))
    assert [len(edit.add) for edit in plan.edits] == [15] and plan.edits[0].pack_status == "ready"
    assert plan.creations == []  # 11 left in the budget: not enough to start a volume of 12
    assert plan.skipped[planner.ADDITIONS_BUDGET] > 0
    plan = plan_curation(snapshot(stickers, (existing,)), CurationPolicy(max_additions=1000))
    assert [new.volume for new in plan.creations] == [1, 3]  # the lowest free numbers
    assert plan.creations[0].name.endswith("Vol. 1") and len(plan.creations[0].stickers) == 30


def test_nsfw_stickers_form_their_own_sensitive_volumes() -> None:
    rng = np.random.default_rng(5)
    centre = rng.normal(size=DIM)
    safe = cluster("animals/cats", 14, centre, rng, "s")
    nsfw = [
        sticker(
            f"n{index:02d}",
            "animals/cats",
            centre + rng.normal(scale=0.5, size=DIM),
            is_nsfw=index % 2 == 0,
            nsfw_score=0.5,
        )
        for index in range(13)
    ]
    plan = plan_curation(snapshot(safe + nsfw), CurationPolicy())
    by_flag = {new.sensitive: set(new.stickers) for new in plan.creations}
    assert by_flag[False] == {row.asset_id for row in safe}
    assert by_flag[True] == {row.asset_id for row in nsfw}  # suggestive scores count as sensitive
    assert "(NSFW)" in next(new.name for new in plan.creations if new.sensitive)


def test_rebuild_orders_removals_by_severity_and_retires_what_falls_under_the_minimum() -> None:
    rng = np.random.default_rng(6)
    cats, dogs = rng.normal(size=DIM), rng.normal(size=DIM)
    stickers = cluster("animals/cats", 14, cats, rng, "c") + cluster("animals/dogs", 14, dogs, rng, "d")
    stickers[0] = sticker("c000", "animals/cats", stickers[0].embedding, is_nsfw=True)
    stickers[1] = sticker("c001", "animals/dogs", stickers[1].embedding)  # relabelled
    stickers[2] = sticker("c002", "animals/cats", stickers[2].embedding, blur=0.99)
    cats_pack = AutoPack(
        "p-cats",
        "animals/cats",
        1,
        False,
        "[AUTO] Animals • Cats • Vol. 1",
        planner.pack_description("animals/cats", False),
        "building",
        "draft",
        tuple(row.asset_id for row in stickers[:14]),
    )
    plan = plan_rebuild(snapshot(stickers, (cats_pack,)), CurationPolicy(max_removals=2))
    assert plan.retirements == []
    assert [reason for _, reason in plan.edits[0].remove] == [planner.NSFW_MISMATCH, planner.THEME_CHANGED]
    assert plan.skipped[planner.REMOVAL_BUDGET] == 1
    plan = plan_rebuild(snapshot(stickers, (cats_pack,)), CurationPolicy(max_removals=10))
    assert len(plan.retirements) == 1 and len(plan.retirements[0].released) == 11
    assert {reason for _, reason in plan.retirements[0].removed} == {
        "nsfw_mismatch",
        "theme_changed",
        "blurry",
    }
