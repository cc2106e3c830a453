"""updated_at kept by the database on every UPDATE (plain SQL too), for every table that has it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:30:00

MySQL/MariaDB: `ON UPDATE CURRENT_TIMESTAMP(6)` on the column; PostgreSQL: one trigger function
and a BEFORE UPDATE trigger per table; SQLite: an AFTER UPDATE trigger per table
(omnizap/platform/db/updated_at.py says how each behaves).
"""

from collections.abc import Sequence

from alembic import op

from omnizap.platform.db import updated_at

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table with an updated_at column at this revision.
TABLES = (
    "sticker_asset",
    "sticker_pack",
    "sticker_pack_item",
    "sticker_asset_classification",
    "sticker_pack_engagement",
    "sticker_pack_web_upload",
    "sticker_asset_reprocess_queue",
    "sticker_worker_task_queue",
    "domain_event_outbox",
    "feature_flag",
    "sticker_pack_score_snapshot",
    "platform_lease",
    "platform_lock_slot",
    "chat_settings",
    "chat_last_sticker",
    "chat_telegram_sticker_set",
    "sticker_web_account",
)


def upgrade() -> None:
    updated_at.install(op.get_bind(), TABLES)


def downgrade() -> None:
    updated_at.uninstall(op.get_bind(), TABLES)
