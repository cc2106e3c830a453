"""The OpenFeature provider, used through the real OpenFeature API, over the table on every engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from omnizap.platform.db import Database
from omnizap.platform.db.schema import feature_flag
from omnizap.platform.flags import FeatureFlags, flag_bucket
from omnizap.platform.flags.openfeature import PROVIDER_NAME, OmniZapFlagProvider

DEDICATED = "enable_worker_dedicated_processes"
STORAGE = "enable_object_storage_delivery"


def context(subject: str) -> EvaluationContext:
    return EvaluationContext(targeting_key=subject)


@pytest.fixture
def flags(db: Database) -> FeatureFlags:
    return FeatureFlags(db, cache_ttl_ms=0, environment={"env_only_flag": True})


@pytest.fixture
def client(flags: FeatureFlags) -> Iterator[OpenFeatureClient]:
    api.set_provider(OmniZapFlagProvider(flags))
    yield api.get_client()
    api.clear_providers()


def test_provider_is_registered_under_its_name(client: OpenFeatureClient):
    assert api.get_provider_metadata().name == PROVIDER_NAME
    assert client.provider.get_metadata().name == PROVIDER_NAME


@pytest.mark.engines
def test_partial_rollout_follows_the_subjects_bucket(client: OpenFeatureClient, flags: FeatureFlags):
    flags.set_flag(DEDICATED, enabled=True, rollout_percent=40, updated_by="test")
    subjects = [f"host-{index}:curation_cycle" for index in range(300)]
    answers = {s: client.get_boolean_value(DEDICATED, False, context(s)) for s in subjects}
    assert answers == {s: flags.is_enabled(DEDICATED, s) for s in subjects}
    assert 0 < sum(answers.values()) < len(subjects)
    inside = next(s for s in subjects if answers[s])
    outside = next(s for s in subjects if not answers[s])
    details = client.get_boolean_details(DEDICATED, False, context(inside))
    assert details.value is True and details.variant == "on" and details.reason == Reason.TARGETING_MATCH
    assert details.error_code is None
    assert details.flag_metadata == {
        "source": "table",
        "bucket": flag_bucket(DEDICATED, inside),
        "rollout_percent": 40,
    }
    details = client.get_boolean_details(DEDICATED, True, context(outside))
    assert details.value is False and details.variant == "off" and details.reason == Reason.TARGETING_MATCH


@pytest.mark.engines
def test_reasons_for_switched_off_full_environment_and_default(
    client: OpenFeatureClient, flags: FeatureFlags, db: Database
):
    details = client.get_boolean_details(DEDICATED, True, context("host-a:rebuild_cycle"))
    assert (details.value, details.variant, details.reason) == (False, "off", Reason.DISABLED)
    flags.set_flag(DEDICATED, enabled=True, rollout_percent=0, updated_by="test")
    assert client.get_boolean_details(DEDICATED, True, context("x")).reason == Reason.DISABLED
    flags.set_flag(DEDICATED, rollout_percent=100, updated_by="test")
    details = client.get_boolean_details(DEDICATED, False, context("x"))
    assert (details.value, details.variant, details.reason) == (True, "on", Reason.STATIC)

    details = client.get_boolean_details("env_only_flag", False)
    assert (details.value, details.reason, details.flag_metadata["source"]) == (
        True,
        Reason.STATIC,
        "environment",
    )

    with db.transaction() as connection:
        connection.execute(
            feature_flag.delete().where(feature_flag.c.flag_name == "enable_ranking_snapshot_read")
        )
    # a known flag without a row answers with its code fallback, not with the caller's default
    details = client.get_boolean_details("enable_ranking_snapshot_read", False)
    assert (details.value, details.reason, details.error_code) == (True, Reason.DEFAULT, None)


@pytest.mark.engines
def test_unknown_flags_are_not_found_and_take_the_callers_default(client: OpenFeatureClient):
    for default in (True, False):
        details = client.get_boolean_details("no_such_flag", default, context("x"))
        assert details.value is default
        assert details.error_code == ErrorCode.FLAG_NOT_FOUND and details.reason == Reason.ERROR
        assert "no_such_flag" in (details.error_message or "")


@pytest.mark.engines
@pytest.mark.parametrize("key", ["", "!!!", "   ", "\x00\x1b[2J", "💥" * 50])
def test_hostile_keys_give_an_error_result_not_an_exception(client: OpenFeatureClient, key: str):
    details = client.get_boolean_details(key, True, context("x"))
    assert details.value is True and details.error_code == ErrorCode.FLAG_NOT_FOUND


@pytest.mark.engines
def test_hostile_targeting_keys_are_just_subjects(client: OpenFeatureClient, flags: FeatureFlags):
    flags.set_flag(STORAGE, enabled=True, rollout_percent=50, updated_by="test")
    for subject in ["\x00", "a" * 10_000, "'; DROP TABLE feature_flag; --", "ümlaut:😀"]:
        details = client.get_boolean_details(STORAGE, False, context(subject))
        assert details.error_code is None
        assert details.value is flags.is_enabled(STORAGE, subject)
        assert details.flag_metadata["bucket"] == flag_bucket(STORAGE, subject)


@pytest.mark.engines
def test_other_types_are_a_type_mismatch_for_existing_flags(client: OpenFeatureClient):
    cases = [
        (client.get_string_details, "fallback"),
        (client.get_integer_details, 7),
        (client.get_float_details, 0.5),
        (client.get_object_details, {"a": 1}),
    ]
    for method, default in cases:
        details = method(DEDICATED, default, context("x"))
        assert details.value == default
        assert details.error_code == ErrorCode.TYPE_MISMATCH and details.reason == Reason.ERROR
        assert "boolean flag" in (details.error_message or "")
        details = method("no_such_flag", default, context("x"))
        assert details.value == default and details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert client.get_integer_value("enable_domain_event_outbox", 3) == 3


@pytest.mark.engines
def test_async_evaluation_gives_the_same_answer(client: OpenFeatureClient, flags: FeatureFlags):
    flags.set_flag(DEDICATED, enabled=True, rollout_percent=50, updated_by="test")
    subject = "host-b:classification_cycle"
    details = asyncio.run(client.get_boolean_details_async(DEDICATED, False, context(subject)))
    assert details.value is flags.is_enabled(DEDICATED, subject)
    assert details.reason == Reason.TARGETING_MATCH


@pytest.mark.engines
def test_without_targeting_key_the_decision_is_deployment_wide(
    client: OpenFeatureClient, flags: FeatureFlags
):
    flags.set_flag(STORAGE, enabled=True, rollout_percent=50, updated_by="test")
    assert client.get_boolean_value(STORAGE, False) is flags.is_enabled(STORAGE, "")
    assert client.get_boolean_details(STORAGE, False).flag_metadata["bucket"] == flag_bucket(STORAGE, "")
