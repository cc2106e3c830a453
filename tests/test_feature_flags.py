"""Feature flags: bucketing, the cached reader, env fallback, runbook SQL within the TTL; leases."""

from __future__ import annotations

import pytest

from omnizap.config import Settings, read_feature_environment
from omnizap.platform import leases
from omnizap.platform.db import Database
from omnizap.platform.flags import BUCKETS, FeatureFlags, FlagError, flag_bucket, normalize_flag_name


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucketing_is_monotone_and_close_to_the_percentage():
    subjects = [f"viewer-{index}" for index in range(10_000)]
    buckets = [flag_bucket("enable_object_storage_delivery", subject) for subject in subjects]
    assert all(0 <= bucket < BUCKETS for bucket in buckets)
    previous: set[str] = set()
    for percent in (0, 1, 5, 10, 25, 50, 75, 99, 100):
        enabled = {s for s, b in zip(subjects, buckets, strict=True) if percent >= 100 or b < percent * 100}
        assert previous <= enabled, f"raising to {percent}% dropped a subject"
        assert abs(len(enabled) / len(subjects) - percent / 100) <= 0.02
        previous = enabled


def test_buckets_differ_between_flags():
    first = {s for s in map(str, range(2000)) if flag_bucket("flag_a", s) < 1000}
    second = {s for s in map(str, range(2000)) if flag_bucket("flag_b", s) < 1000}
    assert first != second


def test_names_are_normalized_and_empty_names_refused():
    assert normalize_flag_name(" Enable_Object Storage!") == "enable_objectstorage"
    with pytest.raises(FlagError, match="no usable characters"):
        normalize_flag_name("!!!")


def test_environment_words():
    environ = {"FEATURE_NEW_THING": "yes", "FEATURE_OLD": "off", "FEATURE_BAD": "maybe", "OTHER": "1"}
    assert read_feature_environment(environ) == {"new_thing": True, "old": False}
    assert "feature_flag_cache_ttl_ms" not in read_feature_environment({"FEATURE_FLAG_CACHE_TTL_MS": "1"})


@pytest.mark.engines
def test_runbook_sql_takes_effect_within_the_ttl(db: Database):
    clock = FakeClock()
    flags = FeatureFlags(db, cache_ttl_ms=30_000, clock=clock)
    assert flags.is_enabled("enable_worker_dedicated_processes", "worker:x") is False
    with db.transaction() as connection:
        connection.exec_driver_sql(
            "UPDATE feature_flag SET is_enabled = 1, rollout_percent = 100, updated_by = 'ops' "
            "WHERE flag_name = 'enable_worker_dedicated_processes'"
        )
    clock.now += 29  # still cached
    assert flags.is_enabled("enable_worker_dedicated_processes", "worker:x") is False
    clock.now += 2  # past the TTL
    assert flags.is_enabled("enable_worker_dedicated_processes", "worker:x") is True


@pytest.mark.engines
def test_partial_rollout_from_the_table(db: Database):
    flags = FeatureFlags(db, cache_ttl_ms=0)
    flags.set_flag("enable_object_storage_delivery", enabled=True, rollout_percent=25, updated_by="test")
    subjects = [f"v{index}" for index in range(4000)]
    enabled = [s for s in subjects if flags.is_enabled("enable_object_storage_delivery", s)]
    assert 0.22 <= len(enabled) / len(subjects) <= 0.28
    decision = flags.decide("enable_object_storage_delivery", "v1")
    assert decision.source == "table" and decision.rollout_percent == 25


@pytest.mark.engines
def test_decider_and_state_agree_with_is_enabled(db: Database):
    flags = FeatureFlags(db, cache_ttl_ms=0)
    subjects = [f"pack-{index}" for index in range(300)]
    states = set()
    for enabled, percent in ((True, 100), (True, 30), (False, 30), (True, 0), (False, 100)):
        flags.set_flag(
            "enable_ranking_snapshot_read", enabled=enabled, rollout_percent=percent, updated_by="t"
        )
        decide = flags.decider("enable_ranking_snapshot_read")
        expected = [flags.is_enabled("enable_ranking_snapshot_read", subject) for subject in subjects]
        assert [decide(subject) for subject in subjects] == expected
        states.add(flags.state("enable_ranking_snapshot_read"))
    assert len(states) == 5  # the switch counts even where the percentage hides it for some subjects
    with db.transaction() as connection:
        connection.exec_driver_sql("DELETE FROM feature_flag")
    assert flags.state("enable_ranking_snapshot_read") == ("fallback", True)
    assert flags.decider("enable_ranking_snapshot_read")("any pack") is True


@pytest.mark.engines
def test_missing_row_uses_environment_then_fallback(db: Database):
    with db.transaction() as connection:
        connection.exec_driver_sql("DELETE FROM feature_flag")
    flags = FeatureFlags(db, cache_ttl_ms=0, environment={"enable_object_storage_delivery": True})
    assert flags.decide("enable_object_storage_delivery").source == "environment"
    assert flags.is_enabled("enable_object_storage_delivery") is True
    assert flags.is_enabled("enable_ranking_snapshot_read") is True  # code fallback
    assert flags.is_enabled("enable_worker_dedicated_processes") is False
    assert flags.is_enabled("unknown_flag") is False


@pytest.mark.engines
def test_set_flag_checks_input_and_keeps_other_fields(db: Database):
    flags = FeatureFlags(db, cache_ttl_ms=0)
    with pytest.raises(FlagError, match="0-100"):
        flags.set_flag("enable_domain_event_outbox", rollout_percent=101, updated_by="ops")
    with pytest.raises(FlagError, match="--by"):
        flags.set_flag("enable_domain_event_outbox", enabled=False, updated_by="  ")
    row = flags.set_flag("enable_domain_event_outbox", rollout_percent=10, updated_by="ops")
    assert row.is_enabled is True and row.rollout_percent == 10 and row.updated_by == "ops"
    created = flags.set_flag("brand_new", enabled=True, updated_by="ops")
    assert created.rollout_percent == 100 and created.is_enabled is True


def test_unreachable_database_keeps_fallbacks(tmp_path):
    broken = Database(f"sqlite:///{tmp_path / 'missing' / 'never-migrated.db'}")
    flags = FeatureFlags(broken, cache_ttl_ms=0)
    assert flags.is_enabled("enable_ranking_snapshot_read") is True
    assert flags.is_enabled("enable_object_storage_delivery") is False


def test_settings_read_feature_environment(monkeypatch):
    monkeypatch.setenv("FEATURE_ENABLE_OBJECT_STORAGE_DELIVERY", "1")
    assert Settings(_env_file=None).feature_env["enable_object_storage_delivery"] is True


@pytest.mark.engines
def test_leases_exclude_until_released_or_expired(db: Database):
    assert leases.acquire(db, "auto_packs", "curation-1", 60)
    assert not leases.acquire(db, "auto_packs", "rebuild-1", 60)
    with pytest.raises(leases.LeaseBusy, match="curation-1"), leases.held(db, "auto_packs", "rebuild-1", 60):
        pass
    assert leases.acquire(db, "auto_packs", "curation-1", 60)  # same holder extends
    assert leases.renew(db, "auto_packs", "curation-1", 60)
    leases.release(db, "auto_packs", "curation-1")
    assert leases.acquire(db, "auto_packs", "rebuild-1", -1)  # already expired on arrival
    assert leases.acquire(db, "auto_packs", "curation-1", 60)  # expired lease passes on
    assert not leases.renew(db, "auto_packs", "rebuild-1", 60)
