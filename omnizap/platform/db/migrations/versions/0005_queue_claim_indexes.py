"""claim-order and lease indexes on the three queue tables

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (
    ("sticker_worker_task_queue", "ix_task", "scheduled_at"),
    ("domain_event_outbox", "ix_outbox", "available_at"),
    ("sticker_asset_reprocess_queue", "ix_reprocess", "scheduled_at"),
)


def upgrade() -> None:
    for table, prefix, available in _TABLES:
        op.create_index(f"{prefix}_due", table, ["status", sa.text("priority DESC"), available, "id"])
        op.create_index(f"{prefix}_lease", table, ["status", "lease_expires_at"])


def downgrade() -> None:
    for table, prefix, _available in _TABLES:
        op.drop_index(f"{prefix}_lease", table_name=table)
        op.drop_index(f"{prefix}_due", table_name=table)
