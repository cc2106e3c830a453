"""Pure parts of the catalog: text rules, parameters, cursors, the read cache, signals, facts."""

from __future__ import annotations

import datetime as dt
import math
import threading

import pytest

from omnizap.catalog.cache import ReadCache
from omnizap.catalog.classification import TagRules, classification_facts, sticker_tags
from omnizap.catalog.cursor import Cursor, CursorCodec, cursor_key
from omnizap.catalog.params import parse_categories, parse_int, parse_intent, parse_sort
from omnizap.catalog.signals import (
    SignalInputs,
    SignalSettings,
    classify_intent,
    compute_signals,
    drift_weights,
    engagement_score,
    trend_score,
)
from omnizap.catalog.text import fold, manual_tags, normalize_tag, public_description, sanitize_query
from omnizap.core.errors import InvalidInput

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


# --- text -----------------------------------------------------------------------------------------
def test_tags_and_description_markers():
    assert normalize_tag("Gatos Fofos!") == "gatos-fofos"
    assert normalize_tag("Ação & Reação") == "acao-reacao"
    assert normalize_tag("x" * 80) == "x" * 40
    assert normalize_tag("🔥") == ""
    description = "Lindo [auto-theme:gatos] pack. score=0.8123. [pack-tags:Gatos, fofos,gatos,,!!]"
    assert manual_tags(description) == ["gatos", "fofos"]
    assert public_description(description) == "Lindo pack."
    assert public_description("[pack-tags:a]") is None
    assert public_description("Curadoria automática por tema. Tema: cats. [auto-tag:cats]") == "Tema: cats."
    assert manual_tags("[pack-tags:" + ",".join(f"t{n}" for n in range(20)) + "]") == [
        f"t{n}" for n in range(8)
    ]
    assert manual_tags(None) == [] and public_description(None) is None


def test_search_folding_and_query_cleaning():
    assert fold("Café ÇA") == "cafe ca"
    assert fold("STRASSE") == fold("straße")
    assert sanitize_query(" a\tb\n\x00c  ") == "a b c"
    assert sanitize_query("👨\u200d👩\u200d👧") == "👨\u200d👩\u200d👧"  # the joiner stays
    assert len(sanitize_query("x" * 500)) == 120


# --- parameters -----------------------------------------------------------------------------------
def test_parameter_parsing():
    assert parse_int("limit", None, default=24, low=1, high=60) == 24
    assert parse_int("limit", " 7 ", default=24, low=1, high=60) == 7
    for bad in ("", "-", "0x10", "٣", True, "1 2"):
        if bad == "":
            assert parse_int("limit", bad, default=24, low=1, high=60) == 24
            continue
        with pytest.raises(InvalidInput, match="limit"):
            parse_int("limit", bad, default=24, low=1, high=60)
    assert (
        parse_sort(" Recent ") == "new"
        and parse_sort(None) == "popular"
        and parse_sort("popular") == "popular"
    )
    assert parse_intent("Em Alta") == "em_alta" and parse_intent("crescendo-agora") == "crescendo_agora"
    assert parse_intent("") == ""
    assert parse_categories("a, B ,a") == ("a", "b")
    assert parse_categories(["x,y", "z"]) == ("x", "y", "z")
    with pytest.raises(InvalidInput) as raised:
        parse_categories([str(n) for n in range(21)])
    assert raised.value.details == {"parameter": "categories"}


# --- cursors --------------------------------------------------------------------------------------
def test_cursor_round_trip_and_tampering():
    clock = [1_000_000.0]
    codec = CursorCodec(cursor_key("", "sqlite:///x.db"), max_age_seconds=600, clock=lambda: clock[0])
    token = codec.encode(Cursor("popular", "f1", codec.now(), generation=7, position=48))
    assert all(char.isalnum() or char in "-_." for char in token)
    decoded = codec.decode(token, sort="popular", filters="f1")
    assert (decoded.generation, decoded.position) == (7, 48)
    keyset = codec.encode(Cursor("new", "f1", codec.now(), created_us=123, pack_id="abc"))
    assert codec.decode(keyset, sort="new", filters="f1").pack_id == "abc"

    other_key = CursorCodec(
        cursor_key("secret", "sqlite:///x.db"), max_age_seconds=600, clock=lambda: clock[0]
    )
    for bad, sort, filters in [
        (token, "new", "f1"),
        (token, "popular", "f2"),
        (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "popular", "f1"),
        ("x" * 600, "popular", "f1"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            codec.decode(bad, sort=sort, filters=filters)
        assert raised.value.code == "INVALID_CURSOR"
    with pytest.raises(InvalidInput):
        other_key.decode(token, sort="popular", filters="f1")
    clock[0] += 601
    with pytest.raises(InvalidInput, match="expired"):
        codec.decode(token, sort="popular", filters="f1")


# --- the read cache -------------------------------------------------------------------------------
def test_an_invalidation_during_a_computation_is_not_lost():
    cache = ReadCache(max_entries=10)
    calls = []

    def compute():
        calls.append(1)
        if len(calls) == 1:
            cache.invalidate_lists()  # a change lands while the first body is being computed
        return len(calls), None

    assert cache.get_or_compute("k", 60, compute) == 1  # the caller gets what it computed …
    assert cache.get_or_compute("k", 60, compute) == 2  # … but it is not served afterwards
    assert cache.get_or_compute("k", 60, compute) == 2


def test_cache_scopes_ttl_and_lru():
    clock = [0.0]
    cache = ReadCache(max_entries=3, clock=lambda: clock[0])
    counter = iter(range(100))
    assert cache.get_or_compute("detail-a", 10, lambda: (next(counter), "a")) == 0
    assert cache.get_or_compute("list", 10, lambda: (next(counter), None)) == 1
    cache.invalidate_packs(["b"])
    assert cache.get_or_compute("detail-a", 10, lambda: (next(counter), "a")) == 0  # other pack: kept
    assert cache.get_or_compute("list", 10, lambda: (next(counter), None)) == 2  # lists: recomputed
    cache.invalidate_packs(["a"])
    assert cache.get_or_compute("detail-a", 10, lambda: (next(counter), "a")) == 3
    clock[0] = 11
    assert cache.get_or_compute("detail-a", 10, lambda: (next(counter), "a")) == 4  # TTL
    for key in ("x", "y", "z"):
        cache.get_or_compute(key, 10, lambda: (next(counter), None))
    assert len(cache) == 3
    before = cache.sequence
    cache.invalidate_all()
    assert cache.sequence > before


def test_independent_scopes_survive_global_invalidations():
    cache = ReadCache(max_entries=10, independent_scopes=["agg"])
    counter = iter(range(100))
    assert cache.get_or_compute("aggregates", 60, lambda: (next(counter), "agg")) == 0
    assert cache.get_or_compute("list", 60, lambda: (next(counter), None)) == 1
    cache.invalidate_all()
    cache.invalidate_packs(["some-pack"])
    assert cache.get_or_compute("aggregates", 60, lambda: (next(counter), "agg")) == 0
    assert cache.get_or_compute("list", 60, lambda: (next(counter), None)) == 2
    cache.invalidate_packs(["agg"])
    assert cache.get_or_compute("aggregates", 60, lambda: (next(counter), "agg")) == 3


def test_concurrent_misses_compute_once():
    cache = ReadCache(max_entries=10)
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow():
        calls.append(1)
        started.set()
        release.wait(10)
        return "body", None

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", 60, slow)))]
    threads[0].start()
    started.wait(10)
    threads += [
        threading.Thread(target=lambda: results.append(cache.get_or_compute("k", 60, slow))) for _ in range(5)
    ]
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == ["body"] * 6 and len(calls) == 1


# --- signals and facts ----------------------------------------------------------------------------
def test_signal_formulas():
    assert engagement_score(0, 0, 0) == 0
    assert engagement_score(100, 0, 0) == 1.2
    assert engagement_score(0, 0, 50) == 0
    assert trend_score(0, 0) == 0
    assert trend_score(10, 0) == 20  # capped
    assert trend_score(3, 14) == pytest.approx(1.5)
    assert classify_intent(True, 0.9, 50) == "crescendo_agora"
    assert classify_intent(False, 0.65, 0) == "em_alta"
    assert classify_intent(False, 0.1, 12) == "mais_curtidos"
    assert classify_intent(False, 0.1, 11) == "novos"
    weights = drift_weights({}, {}, 1.0)
    assert weights == {"classification": 0.4, "engagement": 0.3, "quality": 0.2, "diversity": 0.1}
    drifted = drift_weights({"a": 10}, {"b": 10}, 1.0)
    assert drifted["classification"] < 0.4 < 0.3 + drifted["engagement"]
    assert sum(drifted.values()) == pytest.approx(1.0, abs=1e-5)


def test_signals_of_an_old_pack_decay():
    facts = classification_facts(3, [], TagRules())
    inputs = SignalInputs(
        sticker_count=3,
        quality_base=1.0,
        open_count=0,
        like_count=0,
        dislike_count=0,
        opens_24h=0,
        opens_7d=0,
        facts=facts,
        tag_count=0,
        reference_time=NOW - dt.timedelta(days=45),
    )
    signals = compute_signals(inputs, drift_weights({}, {}, 1.0), SignalSettings(), NOW)
    assert signals["age_decay_factor"] == pytest.approx(math.exp(-1), abs=1e-6)
    assert signals["ranking_score"] == pytest.approx(signals["pack_score"] * math.exp(-1) + 0.025, abs=1e-5)
    assert signals["nsfw_level"] == "safe" and signals["trending_now"] is False


def test_classification_facts():
    rules = TagRules()
    rows = [
        {"category": "cartoon", "all_scores": {"cartoon": 0.8, "anime illustration": 0.2}, "nsfw_score": 0.1},
        {"category": "cartoon", "all_scores": {"cartoon": 0.8, "anime illustration": 0.2}, "nsfw_score": 0.0},
        {
            "category": "real life photo",
            "all_scores": {"real life photo": 0.9, "blurry image": 0.1},
            "is_nsfw": 1,
        },
    ]
    facts = classification_facts(4, rows, rules)
    assert facts.classified_items == 3 and facts.total_items == 4
    assert facts.majority_category == "cartoon" and facts.majority_ratio == pytest.approx(2 / 3)
    assert facts.category == "cartoon"
    assert facts.nsfw_flagged == 1 and facts.nsfw_max == pytest.approx(0.1)
    assert facts.tags[:2] == ["nsfw", "cartoon"]
    assert facts.duplicate_share == pytest.approx(1 / 3)  # the two identical cartoons: 1 pair of 3
    pairwise = [1.0, 0.0, 0.0]  # cos(cartoon, cartoon) = 1; the photo shares no label with them
    assert facts.mean_similarity == pytest.approx(sum(pairwise) / 3)
    assert facts.quality_penalty == pytest.approx(0.30 * 0.1 / 3)
    summary = facts.summary(["mine"])
    assert summary["tags"][-1] == "mine" and summary["nsfw"]["flagged_items"] == 1
    assert sticker_tags(rows[0], rules) == ["cartoon", "anime"]
