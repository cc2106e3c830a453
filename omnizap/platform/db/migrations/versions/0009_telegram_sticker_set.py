"""chat: the Telegram sticker set made for each pack by `/pack send`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 02:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime, utc_now

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_telegram_sticker_set",
        sa.Column("pack_key", sa.String(length=64), nullable=False),
        sa.Column("pack_id", sa.String(length=36), nullable=True),
        sa.Column("set_name", sa.String(length=64), nullable=False),
        sa.Column("owner_user_id", sa.BigInteger(), nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=False),
        sa.Column("stickers", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("pack_key", name=op.f("pk_chat_telegram_sticker_set")),
        sa.UniqueConstraint("set_name", name=op.f("uq_chat_telegram_sticker_set_set_name")),
    )


def downgrade() -> None:
    op.drop_table("chat_telegram_sticker_set")
