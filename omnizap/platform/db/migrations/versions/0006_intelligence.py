"""classification: reprocess marks (once per reason and version), confidence scan index

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS = "'MODEL_UPGRADE', 'LOW_CONFIDENCE', 'TREND_SHIFT', 'NSFW_REVIEW'"


def upgrade() -> None:
    op.create_table(
        "sticker_asset_reprocess_mark",
        sa.Column("asset_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("classification_version", sa.String(length=64), nullable=False),
        sa.Column("marked_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(f"reason IN ({REASONS})", name=op.f("ck_sticker_asset_reprocess_mark_reason")),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["sticker_asset.id"],
            name=op.f("fk_sticker_asset_reprocess_mark_asset_id_sticker_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "reason", name=op.f("pk_sticker_asset_reprocess_mark")),
    )
    with op.batch_alter_table("sticker_asset_classification", schema=None) as batch_op:
        batch_op.create_index(
            "ix_classification_version_confidence", ["classification_version", "confidence"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sticker_asset_classification", schema=None) as batch_op:
        batch_op.drop_index("ix_classification_version_confidence")
    op.drop_table("sticker_asset_reprocess_mark")
