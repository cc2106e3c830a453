"""Log configuration: one JSON line per record, with the request id, and no noise from probes."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.logging import configure_logging
from omnizap.web.operations import readiness


def test_readiness_probes_do_not_log_alembic_chatter(tmp_path: Path):
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    alembic = logging.getLogger("alembic.runtime.migration")
    alembic_level = alembic.level
    try:
        configure_logging(Settings(_env_file=None, log_level="INFO", log_format="json"), stream)
        database = Database(f"sqlite:///{tmp_path / 'omnizap.db'}")
        upgrade(database)
        stream.truncate(0)
        assert readiness(database) == (True, "ok")
        logging.getLogger("omnizap.test").info("probe answered")
        database.dispose()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        alembic.setLevel(alembic_level)
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert [record["logger"] for record in records] == ["omnizap.test"]
    assert records[0]["message"] == "probe answered" and "request_id" in records[0]
