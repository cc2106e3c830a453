"""catalog ranking generations; client key on interaction events

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sticker_pack_interaction_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "client_key", sa.String(length=64), nullable=True, comment="keyed hash of the client address"
            )
        )
        batch_op.create_index("ix_interaction_client_time", ["client_key", "created_at"], unique=False)

    op.create_table(
        "sticker_catalog_generation",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("status", sa.String(length=16), server_default="building", nullable=False),
        sa.Column("pack_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("built_by", sa.String(length=120), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('building', 'ready', 'failed')", name=op.f("ck_sticker_catalog_generation_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_catalog_generation")),
    )
    with op.batch_alter_table("sticker_catalog_generation", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_generation_status", ["status", "id"], unique=False)

    op.create_table(
        "sticker_catalog_ranking",
        sa.Column("generation_id", sa.BigInteger(), nullable=False),
        sa.Column("sort_key", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pack_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["sticker_catalog_generation.id"],
            name=op.f("fk_sticker_catalog_ranking_generation_id_sticker_catalog_generation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["sticker_pack.id"],
            name=op.f("fk_sticker_catalog_ranking_pack_id_sticker_pack"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "generation_id", "sort_key", "position", name=op.f("pk_sticker_catalog_ranking")
        ),
    )
    with op.batch_alter_table("sticker_catalog_ranking", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_ranking_pack", ["generation_id", "pack_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sticker_catalog_ranking", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_ranking_pack")
    op.drop_table("sticker_catalog_ranking")
    with op.batch_alter_table("sticker_catalog_generation", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_generation_status")
    op.drop_table("sticker_catalog_generation")
    with op.batch_alter_table("sticker_pack_interaction_event", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_client_time")
        batch_op.drop_column("client_key")
