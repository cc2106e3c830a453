"""index interaction events by time for catalog-wide windows

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:40:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sticker_pack_interaction_event", schema=None) as batch_op:
        batch_op.create_index("ix_interaction_time", ["created_at", "interaction", "pack_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sticker_pack_interaction_event", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_time")
