"""privacy: sticker_asset.shared_at (shareable stickers only reach theme curation), lock slots

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 02:00:00

"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime, utc_now

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Backfill: a sticker is shareable when it is an item of a live public or unlisted pack today,
# except theme curation's own packs (auto packs with a theme key, marker or "[AUTO]" name): those
# may already hold private stickers, which must not become shareable by having been published.
BACKFILL = """
UPDATE sticker_asset SET shared_at = :now
WHERE shared_at IS NULL AND id IN (
    SELECT i.sticker_id FROM sticker_pack_item i JOIN sticker_pack p ON p.id = i.pack_id
    WHERE p.visibility IN ('public', 'unlisted') AND p.deleted_at IS NULL
      AND NOT (p.is_auto_pack = 1 AND (
          COALESCE(p.pack_theme_key, '') <> ''
          OR LOWER(COALESCE(p.description, '')) LIKE '%[auto-theme:%'
          OR LOWER(COALESCE(p.description, '')) LIKE '%[auto-tag:%'
          OR LOWER(p.name) LIKE '[auto]%'
      ))
)
"""


def upgrade() -> None:
    with op.batch_alter_table("sticker_asset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shared_at", UtcDateTime(), nullable=True))
    op.create_table(
        "platform_lock_slot",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "slot", name=op.f("pk_platform_lock_slot")),
    )
    backfill = sa.text(BACKFILL).bindparams(sa.bindparam("now", type_=UtcDateTime()))
    op.get_bind().execute(backfill, {"now": dt.datetime.now(dt.UTC)})


def downgrade() -> None:
    op.drop_table("platform_lock_slot")
    with op.batch_alter_table("sticker_asset", schema=None) as batch_op:
        batch_op.drop_column("shared_at")
