"""Test fixtures: a migrated database per engine (SQLite, PostgreSQL, MySQL/MariaDB), real files.

Engines: every test that takes the `db` fixture runs once per engine that is reachable.
`OMNIZAP_TEST_REQUIRE_ENGINES=sqlite,postgresql,mysql` (set by `.ci/run`) turns an unreachable
engine into a failure instead of a skip. `OMNIZAP_TEST_ENGINES` limits which engines run.
"""

from __future__ import annotations

import collections
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.db.schema import feature_flag, metadata
from omnizap.platform.flags.defaults import FLAG_DEFAULTS

# Shared fixtures of the classification tests (models loaded once per process, a CLIP server).
pytest_plugins = ["classification_support"]

ALL_ENGINES = ("sqlite", "postgresql", "mysql")
ADMIN_URLS = {
    "postgresql": os.environ.get(
        "OMNIZAP_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ),
    "mysql": os.environ.get("OMNIZAP_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/"),
}


def _csv_env(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


SELECTED_ENGINES = _csv_env("OMNIZAP_TEST_ENGINES", ",".join(ALL_ENGINES))
REQUIRED_ENGINES = set(_csv_env("OMNIZAP_TEST_REQUIRE_ENGINES"))
_engine_results: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
_skipped_engines: dict[str, str] = {}


def _server_url(engine: str, database: str) -> str:
    base = sa.make_url(ADMIN_URLS[engine])
    return base.set(database=database).render_as_string(hide_password=False)


def _create_server_database(engine: str, worker: str) -> str:
    name = f"omz_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = Database(ADMIN_URLS[engine], pool_size=1)
    try:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if engine == "mysql":
                connection.exec_driver_sql(
                    f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )
            else:
                connection.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        admin.dispose()
    return name


def _drop_server_database(engine: str, name: str) -> None:
    admin = Database(ADMIN_URLS[engine], pool_size=1)
    try:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if engine == "postgresql":
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def engine_urls(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[dict[str, str]]:
    """A freshly migrated database per reachable engine, dropped at the end of the session."""
    urls: dict[str, str] = {}
    created: list[tuple[str, str]] = []
    for engine in SELECTED_ENGINES:
        if engine == "sqlite":
            urls[engine] = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'omnizap.db'}"
        else:
            try:
                name = _create_server_database(engine, worker_id)
            except Exception as exc:  # unreachable server: skip, or fail if CI requires it
                _skipped_engines[engine] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                continue
            created.append((engine, name))
            urls[engine] = _server_url(engine, name)
        database = Database(urls[engine], pool_size=2)
        upgrade(database)
        database.dispose()
    yield urls
    for engine, name in created:
        _drop_server_database(engine, name)


_TABLES_CHILD_FIRST = [table for table in reversed(metadata.sorted_tables)]


def reset_database(database: Database) -> None:
    """Empty every table and restore the default flags, so each test starts from a migrated schema."""
    with database.transaction() as connection:
        for table in _TABLES_CHILD_FIRST:
            connection.execute(table.delete())
        connection.execute(
            feature_flag.insert(),
            [
                {
                    "flag_name": flag.name,
                    "is_enabled": flag.is_enabled,
                    "rollout_percent": flag.rollout_percent,
                    "description": flag.description,
                    "updated_by": "test",
                }
                for flag in FLAG_DEFAULTS.values()
            ],
        )


@pytest.fixture(params=ALL_ENGINES)
def engine_name(request: pytest.FixtureRequest, engine_urls: dict[str, str]) -> str:
    engine = request.param
    if engine not in engine_urls:
        reason = _skipped_engines.get(engine, "not selected by OMNIZAP_TEST_ENGINES")
        if engine in REQUIRED_ENGINES:
            pytest.fail(f"required database engine {engine} is unavailable: {reason}")
        pytest.skip(f"{engine} unavailable: {reason}")
    request.node.user_properties.append(("engine", engine))
    return engine


@pytest.fixture
def db(engine_name: str, engine_urls: dict[str, str]) -> Iterator[Database]:
    """A migrated, empty database on each engine in turn."""
    database = Database(engine_urls[engine_name], pool_size=5)
    reset_database(database)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, engine_urls: dict[str, str]) -> Settings:
    """Settings pointing at a private storage folder (tests that take `db` get its URL via `db_settings`)."""
    return Settings(
        _env_file=None,
        database_url=engine_urls.get("sqlite", "sqlite:///" + str(tmp_path / "omnizap.db")),
        sticker_storage_dir=tmp_path / "stickers",
    )


@pytest.fixture
def db_settings(db: Database, tmp_path: Path) -> Settings:
    """Settings whose DATABASE_URL is the engine under test."""
    return Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    engine = dict(report.user_properties).get("engine")
    if engine is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _engine_results[engine][report.outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("database engines")
    for engine in ALL_ENGINES:
        counts = _engine_results.get(engine)
        if counts:
            detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            terminalreporter.write_line(f"{engine}: {detail}")
        else:
            terminalreporter.write_line(f"{engine}: no tests ran ({_skipped_engines.get(engine, 'skipped')})")
