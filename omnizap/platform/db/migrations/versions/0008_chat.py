"""chat bot: per-chat settings, last sticker per person, shared rate-limit windows, login nonces

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 02:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime, utc_now

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_settings",
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=190), nullable=False),
        sa.Column("command_prefix", sa.String(length=8), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=True),
        sa.Column("autosticker", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("network", "chat_id", name=op.f("pk_chat_settings")),
    )
    op.create_table(
        "chat_last_sticker",
        sa.Column("owner_jid", sa.String(length=255), nullable=False),
        sa.Column("sticker_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sticker_id"],
            ["sticker_asset.id"],
            name=op.f("fk_chat_last_sticker_sticker_id_sticker_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner_jid", name=op.f("pk_chat_last_sticker")),
    )
    op.create_table(
        "chat_rate_window",
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("window_started_at", UtcDateTime(), nullable=False),
        sa.Column("action_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_chat_rate_window")),
    )
    op.create_table(
        "chat_login_nonce",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("owner_jid", sa.String(length=255), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("consumed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_chat_login_nonce")),
    )
    with op.batch_alter_table("chat_login_nonce", schema=None) as batch_op:
        batch_op.create_index("ix_chat_login_nonce_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_login_nonce", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_login_nonce_expires")
    op.drop_table("chat_login_nonce")
    op.drop_table("chat_rate_window")
    op.drop_table("chat_last_sticker")
    op.drop_table("chat_settings")
