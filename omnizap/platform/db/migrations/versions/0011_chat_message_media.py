"""chat: the media of recent messages, so a WhatsApp Cloud API quote (which names only the quoted
message's id) can be resolved to the sticker or image it carried

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 03:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime, utc_now

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_message_media",
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=190), nullable=False),
        sa.Column("chat_id", sa.String(length=190), nullable=False),
        sa.Column("media", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("network", "message_id", name=op.f("pk_chat_message_media")),
    )
    with op.batch_alter_table("chat_message_media", schema=None) as batch_op:
        batch_op.create_index("ix_chat_message_media_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_message_media", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_message_media_created")
    op.drop_table("chat_message_media")
