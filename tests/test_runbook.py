"""docs/runbook.md: the seed runbook's SQL verbatim and working on every engine, every `omnizap`
command in it accepted by the CLI, every setting it names real (with the default it states)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from test_deploy_files import check_command

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.flags.defaults import FLAG_DEFAULTS

RUNBOOK = Path(__file__).resolve().parent.parent / "docs" / "runbook.md"

# The three statements of the seed runbook (seeds/000_556f5d7dc2153c4b.txt), character for character.
SEED_STATUS_QUERY = """SELECT flag_name, is_enabled, rollout_percent, updated_at
FROM feature_flag
WHERE flag_name IN (
  'enable_ranking_snapshot_read',
  'enable_domain_event_outbox',
  'enable_worker_dedicated_processes',
  'enable_object_storage_delivery'
)
ORDER BY flag_name;"""
SEED_ROLLOUT_UPDATE = """UPDATE feature_flag
SET is_enabled = 1, rollout_percent = 25, updated_by = 'ops'
WHERE flag_name = 'enable_worker_dedicated_processes';"""
SEED_EMERGENCY_DISABLE = """UPDATE feature_flag
SET is_enabled = 0, rollout_percent = 0, updated_by = 'ops'
WHERE flag_name IN (
  'enable_worker_dedicated_processes',
  'enable_object_storage_delivery',
  'enable_domain_event_outbox'
);"""
SEED_HEADINGS = (
    "## Scope",
    "## Feature Flags",
    "### Query Current Status",
    "### Update Rollout Percent",
    "### Emergency Disable",
    "## Canary Sequence",
    "## Dedicated Workers",
    "## 10x Validation",
    "### HTTP Stress",
    "### Queue/Worker Validation",
    "## Rollback Plan",
    "## Post-Rollout Tuning",
)
SEED_TUNING = (
    "STICKER_WORKER_CLASSIFICATION_CADENCE_MS",
    "STICKER_WORKER_CURATION_CADENCE_MS",
    "STICKER_WORKER_REBUILD_CADENCE_MS",
    "STICKER_DEDICATED_WORKER_POLL_INTERVAL_MS",
    "STICKER_SCORE_SNAPSHOT_REFRESH_INTERVAL_MS",
    "STICKER_OBJECT_STORAGE_SIGNED_URL_TTL_SECONDS",
)
SYSTEM_TUNING = (
    "STICKER_WORKER_TASK_LOCK_TIMEOUT_SECONDS",
    "STICKER_WORKER_RETRY_BASE_SECONDS",
    "STICKER_WORKER_RETRY_MAX_SECONDS",
    "DOMAIN_EVENT_OUTBOX_LOCK_TIMEOUT_SECONDS",
    "FEATURE_FLAG_CACHE_TTL_MS",
)


def text() -> str:
    return RUNBOOK.read_text()


def blocks(language: str) -> list[str]:
    return [match.strip("\n") for match in re.findall(rf"```{language}\n(.*?)```", text(), flags=re.S)]


def section(heading: str) -> str:
    start = text().index(heading + "\n")
    following = re.search(r"^## ", text()[start + len(heading) :], flags=re.M)
    end = start + len(heading) + following.start() if following else len(text())
    return text()[start:end]


def test_the_seed_sql_is_there_verbatim():
    sql = blocks("sql")
    for statement in (SEED_STATUS_QUERY, SEED_ROLLOUT_UPDATE, SEED_EMERGENCY_DISABLE):
        assert statement in sql


def test_the_seed_structure_and_flags_are_kept():
    for heading in SEED_HEADINGS:
        assert re.search(rf"^{re.escape(heading)}$", text(), flags=re.M), heading
    for flag in FLAG_DEFAULTS:
        assert f"`{flag}`" in section("## Feature Flags")
    canary = section("## Canary Sequence")
    for step in (
        "`enable_ranking_snapshot_read`: 10% -> 50% -> 100%",
        "`enable_domain_event_outbox`: 10% -> 50% -> 100%",
        "`enable_worker_dedicated_processes`: 10% -> 50% -> 100%",
        "`enable_object_storage_delivery`: 5% -> 25% -> 100%",
    ):
        assert step in canary


def omnizap_commands() -> list[list[str]]:
    commands = []
    for block in blocks("bash"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("omnizap "):
                commands.append(shlex.split(line, comments=True))
    return commands


def test_every_omnizap_command_of_the_runbook_is_accepted_by_the_cli():
    commands = omnizap_commands()
    assert len(commands) > 20
    used = {argv[1] for argv in commands}
    assert {"flags", "loadtest", "rollout", "queue", "worker"} <= used
    for argv in commands:
        check_command(argv)


def test_every_setting_named_is_a_setting_with_the_stated_default():
    fields = Settings.model_fields
    named = set(re.findall(r"`((?:STICKER|DOMAIN|FEATURE_FLAG|DATABASE|HTTP)_[A-Z0-9_]*[A-Z0-9])`", text()))
    assert set(SEED_TUNING) | set(SYSTEM_TUNING) <= named
    for name in named:
        assert name.lower() in fields, f"{name} is not a setting of omnizap/config.py"
    defaults = Settings(_env_file=None)
    tuning = section("## Post-Rollout Tuning")
    stated = dict(re.findall(r"`([A-Z0-9_]+)`\s+\[(\d+)", tuning))
    assert set(SEED_TUNING) | set(SYSTEM_TUNING) <= set(stated)
    assert len(stated) >= 15
    for name, default in stated.items():
        assert getattr(defaults, name.lower()) == int(default), f"{name}: the runbook says {default}"


def test_the_partial_rollout_example_shows_real_buckets():
    from omnizap.platform.flags import flag_bucket

    rows = re.findall(r"^\| `([a-z0-9-]+:[a-z_]+)` \| (\d+) \| (\w+) \| (\w+) \|$", text(), flags=re.M)
    assert len(rows) >= 4
    for subject, bucket, at_10, at_50 in rows:
        assert flag_bucket("enable_worker_dedicated_processes", subject) == int(bucket), subject
        assert at_10 == ("dedicated" if int(bucket) < 1000 else "inline")
        assert at_50 == ("dedicated" if int(bucket) < 5000 else "inline")


@pytest.mark.engines
def test_the_seed_sql_runs_on_every_engine(db: Database):
    flags = FeatureFlags(db, cache_ttl_ms=0)
    with db.transaction() as connection:
        rows = connection.exec_driver_sql(SEED_STATUS_QUERY.rstrip(";")).all()
    assert [row[0] for row in rows] == sorted(FLAG_DEFAULTS)
    assert all(row[3] is not None for row in rows)

    with db.transaction() as connection:
        assert connection.exec_driver_sql(SEED_ROLLOUT_UPDATE.rstrip(";")).rowcount == 1
    decision = flags.decide("enable_worker_dedicated_processes", "host-a:rebuild_cycle")
    assert decision.source == "table" and decision.rollout_percent == 25 and decision.row_enabled

    flags.set_flag("enable_object_storage_delivery", enabled=True, rollout_percent=100, updated_by="test")
    with db.transaction() as connection:
        assert connection.exec_driver_sql(SEED_EMERGENCY_DISABLE.rstrip(";")).rowcount == 3
    for name in (
        "enable_worker_dedicated_processes",
        "enable_object_storage_delivery",
        "enable_domain_event_outbox",
    ):
        assert not any(flags.is_enabled(name, f"s{index}") for index in range(50)), name
    assert flags.is_enabled("enable_ranking_snapshot_read")
    rows = {row.flag_name: row for row in flags.list_flags()}
    assert rows["enable_domain_event_outbox"].updated_by == "ops"
