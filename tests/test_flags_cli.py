"""`omnizap flags list|set|check` through the real CLI entry point, on every database engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.platform.db import Database
from omnizap.platform.db.schema import feature_flag
from omnizap.platform.flags import BUCKETS, FeatureFlags, flag_bucket
from omnizap.platform.flags.defaults import FLAG_DEFAULTS

pytestmark = pytest.mark.engines

DEDICATED = "enable_worker_dedicated_processes"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def run(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Invoke `omnizap flags …` with DATABASE_URL pointing at the engine under test."""
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(db_settings.sticker_storage_dir))
    monkeypatch.delenv("FEATURE_FLAG_CACHE_TTL_MS", raising=False)
    for name in FLAG_DEFAULTS:
        monkeypatch.delenv(f"FEATURE_{name.upper()}", raising=False)

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        reset_settings_cache()  # FEATURE_ variables are read with the settings
        return CliRunner().invoke(cli, ["flags", *args], catch_exceptions=False, env=env)

    yield invoke
    reset_settings_cache()


def table(db: Database) -> dict[str, dict[str, Any]]:
    with db.read() as connection:
        rows = connection.execute(sa.select(feature_flag)).mappings().all()
    return {
        row["flag_name"]: {
            "is_enabled": int(row["is_enabled"]),
            "rollout_percent": int(row["rollout_percent"]),
            "updated_by": row["updated_by"],
            "description": row["description"],
        }
        for row in rows
    }


def delete_row(db: Database, name: str) -> None:
    with db.transaction() as connection:
        connection.execute(feature_flag.delete().where(feature_flag.c.flag_name == name))


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def ok_json(result: Result) -> dict[str, Any]:
    return json.loads(ok(result))


# --- list -----------------------------------------------------------------------------------------


def test_list_shows_every_row_with_its_fields(run, db: Database):
    document = ok_json(run("list", "--json"))
    by_name = {flag["name"]: flag for flag in document["flags"]}
    assert set(by_name) == set(FLAG_DEFAULTS)
    assert document["cache_ttl_ms"] == 30_000
    for name, default in FLAG_DEFAULTS.items():
        flag = by_name[name]
        assert flag["row"] is True and flag["source"] == "table"
        assert flag["is_enabled"] == default.is_enabled and flag["rollout_percent"] == default.rollout_percent
        assert flag["updated_by"] == "test" and flag["updated_at"]
        assert flag["description"] == default.description
    text = ok(run("list"))
    assert text.splitlines()[0].split() == [
        "NAME",
        "STATE",
        "ENABLED",
        "ROLLOUT",
        "SOURCE",
        "UPDATED_BY",
        "UPDATED_AT",
        "DESCRIPTION",
    ]
    line = next(line for line in text.splitlines() if line.startswith(DEDICATED))
    assert line.split()[1:5] == ["off", "0", "100%", "table"]
    assert "FEATURE_FLAG_CACHE_TTL_MS=30000" in text


def test_list_shows_known_flags_without_a_row_and_environment_overrides(run, db: Database):
    delete_row(db, "enable_ranking_snapshot_read")
    delete_row(db, "enable_object_storage_delivery")
    env = {
        "FEATURE_ENABLE_OBJECT_STORAGE_DELIVERY": "1",
        "FEATURE_ENABLE_DOMAIN_EVENT_OUTBOX": "0",  # shadowed by the row
        "FEATURE_SOMETHING_ELSE": "yes",
    }
    by_name = {flag["name"]: flag for flag in ok_json(run("list", "--json", env=env))["flags"]}
    ranking = by_name["enable_ranking_snapshot_read"]
    assert ranking["row"] is False and ranking["source"] == "fallback"
    assert ranking["fallback"] is True and ranking["effective"] == "on"
    storage = by_name["enable_object_storage_delivery"]
    assert storage["source"] == "environment" and storage["environment"] is True
    assert storage["effective"] == "on" and storage["fallback"] is False
    outbox = by_name["enable_domain_event_outbox"]
    assert outbox["source"] == "table" and outbox["environment"] is False and outbox["effective"] == "on"
    assert by_name["something_else"]["known"] is False and by_name["something_else"]["effective"] == "on"
    text = ok(run("list", env=env))
    assert "env FEATURE_ENABLE_OBJECT_STORAGE_DELIVERY" in text
    assert "table (env ignored)" in text


def test_list_does_not_print_control_characters_from_rows(run, db: Database):
    with db.transaction() as connection:
        connection.execute(
            feature_flag.update()
            .where(feature_flag.c.flag_name == DEDICATED)
            .values(updated_by="ops\x1b[2J\x07", description="line\nbreak\x1b]0;title\x07")
        )
    text = ok(run("list"))
    assert "\x1b" not in text and "\x07" not in text
    assert len(text.splitlines()) == len(FLAG_DEFAULTS) + 2  # header, rows, TTL note


# --- set ------------------------------------------------------------------------------------------


def test_set_changes_the_row_and_prints_old_and_new(run, db: Database):
    text = ok(run("set", DEDICATED, "--enabled", "1", "--rollout", "25", "--by", "ops"))
    assert table(db)[DEDICATED] | {"description": None} == {
        "is_enabled": 1,
        "rollout_percent": 25,
        "updated_by": "ops",
        "description": None,
    }
    first = text.splitlines()[0]
    assert first == f"{DEDICATED}: is_enabled 0 -> 1, rollout_percent 100% -> 25% (by ops)"
    assert "buckets 0-2499 of 10000" in text
    assert "within 30 s" in text and "FEATURE_FLAG_CACHE_TTL_MS=30000" in text


def test_set_keeps_fields_not_given(run, db: Database):
    ok(run("set", DEDICATED, "--enabled", "1", "--rollout", "10", "--by", "ops"))
    ok(run("set", DEDICATED, "--rollout", "50%", "--by", "ops2"))
    assert table(db)[DEDICATED]["is_enabled"] == 1 and table(db)[DEDICATED]["rollout_percent"] == 50
    ok(run("set", DEDICATED, "--enabled", "off", "--by", "ops3", "--description", "  Why it exists  "))
    row = table(db)[DEDICATED]
    assert row == {
        "is_enabled": 0,
        "rollout_percent": 50,
        "updated_by": "ops3",
        "description": "Why it exists",
    }


def test_set_json_reports_before_and_after(run, db: Database):
    document = ok_json(run("set", DEDICATED, "--rollout", "5", "--by", "ops", "--json"))
    assert document["flag"] == DEDICATED and document["created"] is False
    assert document["before"]["rollout_percent"] == 100 and document["after"]["rollout_percent"] == 5
    assert document["after"]["effective"] == "off"  # still switched off: only the percentage moved
    assert document["cache_ttl_ms"] == 30_000


def test_creating_the_row_of_a_known_flag_keeps_what_was_in_effect(run, db: Database):
    delete_row(db, "enable_ranking_snapshot_read")  # fallback: on
    ok(run("set", "enable_ranking_snapshot_read", "--rollout", "50", "--by", "ops"))
    assert table(db)["enable_ranking_snapshot_read"]["is_enabled"] == 1
    delete_row(db, "enable_object_storage_delivery")  # fallback off, but the environment says on
    env = {"FEATURE_ENABLE_OBJECT_STORAGE_DELIVERY": "1"}
    text = ok(run("set", "enable_object_storage_delivery", "--rollout", "5", "--by", "ops", env=env))
    assert table(db)["enable_object_storage_delivery"]["is_enabled"] == 1
    assert "row created" in text and "was on by environment" in text
    assert "FEATURE_ENABLE_OBJECT_STORAGE_DELIVERY is ignored while the row exists" in text


def test_upper_case_names_are_accepted(run, db: Database):
    ok(run("set", DEDICATED.upper(), "--enabled", "1", "--by", "ops"))
    assert table(db)[DEDICATED]["is_enabled"] == 1


def test_unknown_flag_is_refused_without_create(run, db: Database):
    before = table(db)
    result = run("set", "enable_worker_dedicated_process", "--enabled", "0", "--by", "ops")
    assert result.exit_code == 1 and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: unknown flag enable_worker_dedicated_process:")
    assert "did you mean enable_worker_dedicated_processes?" in line and "--create" in line
    assert table(db) == before
    text = ok(run("set", "new_experiment", "--enabled", "1", "--rollout", "3", "--by", "ops", "--create"))
    assert "row created" in text
    assert table(db)["new_experiment"]["rollout_percent"] == 3
    # once the row exists it is a flag like any other
    ok(run("set", "new_experiment", "--rollout", "4", "--by", "ops"))
    assert table(db)["new_experiment"]["rollout_percent"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((DEDICATED, "--rollout", "150", "--by", "ops"), "--rollout takes a whole number from 0 to 100"),
        ((DEDICATED, "--rollout", "-1", "--by", "ops"), "--rollout takes a whole number from 0 to 100"),
        ((DEDICATED, "--rollout", "abc", "--by", "ops"), "--rollout takes a whole number from 0 to 100"),
        ((DEDICATED, "--rollout", "12.5", "--by", "ops"), "--rollout takes a whole number from 0 to 100"),
        ((DEDICATED, "--rollout", "", "--by", "ops"), "--rollout takes a whole number from 0 to 100"),
        ((DEDICATED, "--rollout", "1000", "--by", "ops"), "--rollout takes a whole number from 0 to 100"),
        ((DEDICATED, "--rollout", "٥", "--by", "ops"), "--rollout takes a whole number from 0 to 100"),
        ((DEDICATED, "--enabled", "2", "--by", "ops"), "--enabled takes 0 or 1"),
        ((DEDICATED, "--enabled", "maybe", "--by", "ops"), "--enabled takes 0 or 1"),
        ((DEDICATED, "--enabled", "1", "--by", ""), "say who makes the change with --by NAME"),
        ((DEDICATED, "--enabled", "1", "--by", "   "), "say who makes the change with --by NAME"),
        ((DEDICATED, "--enabled", "1"), "say who makes the change with --by NAME"),
        ((DEDICATED, "--enabled", "1", "--by", "ops\x1b[31m"), "--by takes printable text"),
        ((DEDICATED, "--enabled", "1", "--by", "x" * 121), "--by takes printable text of at most 120"),
        ((DEDICATED, "--enabled", "1", "--by", "ops", "--description", "d" * 256), "--description takes"),
        ((DEDICATED, "--enabled", "1", "--by", "ops", "--description", "a\nb"), "--description takes"),
        ((DEDICATED, "--by", "ops"), "nothing to change"),
        (("!!!", "--enabled", "0", "--by", "ops"), "has no usable characters"),
        (("   ", "--enabled", "0", "--by", "ops"), "has no usable characters"),
        (("", "--enabled", "0", "--by", "ops"), "has no usable characters"),
        (("enable worker!", "--enabled", "0", "--by", "ops"), "did you mean enableworker?"),
        (("x" * 121, "--enabled", "0", "--by", "ops"), "at most 120"),
        (
            (
                "enable_worker_dedicated_processes'; DROP TABLE feature_flag; --",
                "--enabled",
                "0",
                "--by",
                "o",
            ),
            "may only contain",
        ),
        (("flag\x00name", "--enabled", "0", "--by", "ops"), "may only contain"),
        # U+212A KELVIN SIGN lowercases to an ASCII k: refused, not taken for another name
        (("ENABLE_WOR\u212aER_DEDICATED_PROCESSES", "--enabled", "1", "--by", "ops"), "may only contain"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(run, db: Database, args, message):
    before = table(db)
    result = run("set", *args)
    assert result.exit_code == 2, result.output + result.stderr
    assert result.stdout == ""
    line = result.stderr.rstrip("\n")
    assert "\n" not in line, line
    assert line.startswith("error: ") and message in line, line
    assert "\x1b" not in line and "\x00" not in line
    assert table(db) == before


def test_a_change_reaches_another_process_within_its_cache_ttl(run, db: Database):
    clock = FakeClock()
    server = FeatureFlags(db, cache_ttl_ms=30_000, clock=clock)  # a running server's reader
    subject = "host-a:classification_cycle"
    assert server.is_enabled(DEDICATED, subject) is False
    ok(run("set", DEDICATED, "--enabled", "1", "--rollout", "100", "--by", "ops"))
    clock.now += 29.0
    assert server.is_enabled(DEDICATED, subject) is False  # still the cached table
    clock.now += 2.0
    assert server.is_enabled(DEDICATED, subject) is True


def test_runbook_emergency_disable_shows_in_list(run, db: Database):
    ok(run("set", "enable_object_storage_delivery", "--enabled", "1", "--rollout", "25", "--by", "ops"))
    with db.transaction() as connection:
        connection.exec_driver_sql(
            "UPDATE feature_flag SET is_enabled = 0, rollout_percent = 0, updated_by = 'ops' "
            "WHERE flag_name IN ('enable_worker_dedicated_processes', 'enable_object_storage_delivery', "
            "'enable_domain_event_outbox')"
        )
    by_name = {flag["name"]: flag for flag in ok_json(run("list", "--json"))["flags"]}
    for name in ("enable_worker_dedicated_processes", "enable_object_storage_delivery"):
        assert by_name[name]["effective"] == "off" and by_name[name]["rollout_percent"] == 0
    assert by_name["enable_domain_event_outbox"]["effective"] == "off"
    assert by_name["enable_ranking_snapshot_read"]["effective"] == "on"


# --- check ----------------------------------------------------------------------------------------


def _subjects_around(name: str, percent: int) -> tuple[str, str]:
    """One subject inside and one outside a rollout of `percent`."""
    threshold = percent * (BUCKETS // 100)
    candidates = [f"host-{index}:classification_cycle" for index in range(200)]
    inside = next(s for s in candidates if flag_bucket(name, s) < threshold)
    outside = next(s for s in candidates if flag_bucket(name, s) >= threshold)
    return inside, outside


def test_check_shows_decision_source_and_bucket_per_subject(run, db: Database):
    ok(run("set", DEDICATED, "--enabled", "1", "--rollout", "30", "--by", "ops"))
    inside, outside = _subjects_around(DEDICATED, 30)
    document = ok_json(run("check", DEDICATED, "--subject", inside, "--subject", outside, "--json"))
    first, second = document["decisions"]
    assert first == {
        "subject": inside,
        "enabled": True,
        "source": "table",
        "bucket": flag_bucket(DEDICATED, inside),
        "rollout_percent": 30,
        "why": "in the 30% rollout (bucket < 3000)",
    }
    assert second["enabled"] is False and second["bucket"] == flag_bucket(DEDICATED, outside)
    assert second["why"] == "outside the 30% rollout (bucket >= 3000)"
    text = ok(run("check", DEDICATED, "--subject", inside, "--subject", outside))
    lines = text.splitlines()
    assert lines[0].startswith(f"{DEDICATED}: row is_enabled=1 rollout_percent=30")
    assert lines[1].split()[:3] == ["on", "bucket", str(flag_bucket(DEDICATED, inside))]
    assert lines[2].split()[:3] == ["off", "bucket", str(flag_bucket(DEDICATED, outside))]
    # the CLI and the library agree for any subject
    reader = FeatureFlags(db, cache_ttl_ms=0)
    for decision in document["decisions"]:
        assert reader.is_enabled(DEDICATED, decision["subject"]) is decision["enabled"]


def test_check_without_subject_is_the_deployment_wide_decision(run, db: Database):
    document = ok_json(run("check", "enable_domain_event_outbox", "--json"))
    (decision,) = document["decisions"]
    assert decision["subject"] == "" and decision["enabled"] is True and decision["why"] == "rollout 100%"
    assert decision["bucket"] == flag_bucket("enable_domain_event_outbox", "")
    assert "(deployment-wide)" in ok(run("check", "enable_domain_event_outbox"))
    document = ok_json(run("check", DEDICATED, "--subject", "x", "--json"))
    assert document["decisions"][0]["why"] == "row switched off (is_enabled=0)"


def test_check_environment_fallback_and_unknown_flags(run, db: Database):
    delete_row(db, "enable_object_storage_delivery")
    env = {"FEATURE_ENABLE_OBJECT_STORAGE_DELIVERY": "on"}
    document = ok_json(run("check", "enable_object_storage_delivery", "--subject", "a", "--json", env=env))
    assert document["decisions"][0]["source"] == "environment" and document["decisions"][0]["enabled"]
    document = ok_json(run("check", "enable_object_storage_delivery", "--json"))
    assert document["decisions"][0]["source"] == "fallback" and not document["decisions"][0]["enabled"]
    result = run("check", "enable_worker_dedicated_process")
    assert result.exit_code == 0
    assert "is not a known flag and has no row" in result.stderr
    assert "code fallback (no row)" in result.stdout


def test_check_prints_hostile_subjects_escaped(run, db: Database):
    subject = "host\x1b[2J\nnext\x00"
    text = ok(run("check", DEDICATED, "--subject", subject, "--subject", "  padded "))
    assert "\x1b" not in text and "\x00" not in text
    assert len(text.splitlines()) == 3
    assert ascii(subject) in text and repr("  padded ") in text
    result = run("check", "!!!")
    assert result.exit_code == 2 and "no usable characters" in result.stderr
