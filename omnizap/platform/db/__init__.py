"""Database access: schema, connector over three engines, migrations."""

from omnizap.platform.db.engine import (
    Database,
    DatabaseConfigError,
    excluded,
    for_update_skip_locked,
    insert_ignore,
    upsert,
)
from omnizap.platform.db.types import utcnow

__all__ = [
    "Database",
    "DatabaseConfigError",
    "excluded",
    "for_update_skip_locked",
    "insert_ignore",
    "upsert",
    "utcnow",
]
