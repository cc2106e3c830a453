"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 13:45:48.638198

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime, utc_now, utcnow

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "domain_event_outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_type", sa.String(length=96), nullable=False),
        sa.Column("aggregate_type", sa.String(length=96), nullable=False),
        sa.Column("aggregate_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=180), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="50", nullable=False),
        sa.Column("available_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="10", nullable=False),
        sa.Column("worker_token", sa.String(length=36), nullable=True),
        sa.Column("locked_at", UtcDateTime(), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("processed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_domain_event_outbox_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_event_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_domain_event_outbox_idempotency_key")),
    )
    with op.batch_alter_table("domain_event_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_aggregate", ["aggregate_type", "aggregate_id"], unique=False)
        batch_op.create_index("ix_outbox_claim", ["status", "available_at", "priority"], unique=False)

    op.create_table(
        "domain_event_outbox_dlq",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("outbox_event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=96), nullable=False),
        sa.Column("aggregate_type", sa.String(length=96), nullable=False),
        sa.Column("aggregate_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=180), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failed_at", UtcDateTime(), nullable=False),
        sa.Column("replayed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_event_outbox_dlq")),
        sa.UniqueConstraint("outbox_event_id", name=op.f("uq_domain_event_outbox_dlq_outbox_event_id")),
    )
    op.create_table(
        "feature_flag",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flag_name", sa.String(length=120), nullable=False),
        sa.Column("is_enabled", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("rollout_percent", sa.SmallInteger(), server_default="100", nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=120), nullable=True),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_flag")),
        sa.UniqueConstraint("flag_name", name=op.f("uq_feature_flag_flag_name")),
    )
    op.create_table(
        "sticker_asset",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_jid", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=True),
        sa.Column("mimetype", sa.String(length=64), server_default="image/webp", nullable=False),
        sa.Column("is_animated", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("frame_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("duration_ms", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "storage_path", sa.String(length=512), nullable=False, comment="storage key, never a server path"
        ),
        sa.Column("object_storage_key", sa.String(length=512), nullable=True),
        sa.Column("object_storage_synced_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_asset")),
        sa.UniqueConstraint("sha256", name=op.f("uq_sticker_asset_sha256")),
    )
    with op.batch_alter_table("sticker_asset", schema=None) as batch_op:
        batch_op.create_index("ix_asset_owner_created", ["owner_jid", "created_at"], unique=False)
        batch_op.create_index("ix_asset_source_sha256", ["source_sha256"], unique=False)

    op.create_table(
        "sticker_asset_reprocess_dlq",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("reprocess_id", sa.BigInteger(), nullable=False),
        sa.Column("asset_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=180), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failed_at", UtcDateTime(), nullable=False),
        sa.Column("replayed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_asset_reprocess_dlq")),
        sa.UniqueConstraint("reprocess_id", name=op.f("uq_sticker_asset_reprocess_dlq_reprocess_id")),
    )
    op.create_table(
        "sticker_worker_task_dlq",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("task_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=180), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failed_at", UtcDateTime(), nullable=False),
        sa.Column("replayed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_worker_task_dlq")),
        sa.UniqueConstraint("task_id", name=op.f("uq_sticker_worker_task_dlq_task_id")),
    )
    op.create_table(
        "sticker_worker_task_queue",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("task_type", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=180), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="50", nullable=False),
        sa.Column("scheduled_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="5", nullable=False),
        sa.Column("worker_token", sa.String(length=36), nullable=True),
        sa.Column("locked_at", UtcDateTime(), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("processed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_sticker_worker_task_queue_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_worker_task_queue")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sticker_worker_task_queue_idempotency_key")),
    )
    with op.batch_alter_table("sticker_worker_task_queue", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_claim", ["status", "task_type", "scheduled_at", "priority"], unique=False
        )

    op.create_table(
        "sticker_asset_classification",
        sa.Column("asset_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        sa.Column("classification_version", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=120), nullable=True),
        sa.Column("theme_key", sa.String(length=160), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("entropy", sa.Float(), nullable=True),
        sa.Column("confidence_margin", sa.Float(), nullable=True),
        sa.Column("nsfw_score", sa.Float(), nullable=True),
        sa.Column("is_nsfw", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("ambiguous", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("all_scores", sa.JSON(), nullable=True),
        sa.Column("top_labels", sa.JSON(), nullable=True),
        sa.Column(
            "signals", sa.JSON(), nullable=True, comment="cheap image signals: colourfulness, blur, text"
        ),
        sa.Column("image_hash", sa.String(length=64), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True, comment="float32 image embedding"),
        sa.Column("classified_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["sticker_asset.id"],
            name=op.f("fk_sticker_asset_classification_asset_id_sticker_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_sticker_asset_classification")),
    )
    with op.batch_alter_table("sticker_asset_classification", schema=None) as batch_op:
        batch_op.create_index("ix_classification_theme", ["theme_key"], unique=False)
        batch_op.create_index("ix_classification_version", ["classification_version"], unique=False)

    op.create_table(
        "sticker_asset_reprocess_queue",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("asset_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=180), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="50", nullable=False),
        sa.Column("scheduled_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="5", nullable=False),
        sa.Column("worker_token", sa.String(length=36), nullable=True),
        sa.Column("locked_at", UtcDateTime(), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("processed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.CheckConstraint(
            "reason IN ('MODEL_UPGRADE', 'LOW_CONFIDENCE', 'TREND_SHIFT', 'NSFW_REVIEW')",
            name=op.f("ck_sticker_asset_reprocess_queue_reason"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_sticker_asset_reprocess_queue_status"),
        ),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["sticker_asset.id"],
            name=op.f("fk_sticker_asset_reprocess_queue_asset_id_sticker_asset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_asset_reprocess_queue")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sticker_asset_reprocess_queue_idempotency_key")),
    )
    with op.batch_alter_table("sticker_asset_reprocess_queue", schema=None) as batch_op:
        batch_op.create_index("ix_reprocess_asset", ["asset_id", "reason", "status"], unique=False)
        batch_op.create_index("ix_reprocess_claim", ["status", "scheduled_at", "priority"], unique=False)

    op.create_table(
        "sticker_pack",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_jid", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("publisher", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("pack_key", sa.String(length=64), nullable=False),
        sa.Column("cover_sticker_id", sa.String(length=36), nullable=True),
        sa.Column("visibility", sa.String(length=16), server_default="private", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="published", nullable=False),
        sa.Column("pack_status", sa.String(length=16), server_default="ready", nullable=False),
        sa.Column("pack_theme_key", sa.String(length=160), nullable=True),
        sa.Column("pack_volume", sa.Integer(), nullable=True),
        sa.Column("last_rebalanced_at", UtcDateTime(), nullable=True),
        sa.Column("is_auto_pack", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("is_sensitive", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "pack_status IN ('building', 'ready', 'archived')", name=op.f("ck_sticker_pack_pack_status")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'uploading', 'processing', 'published', 'failed')",
            name=op.f("ck_sticker_pack_status"),
        ),
        sa.CheckConstraint(
            "visibility IN ('private', 'public', 'unlisted')", name=op.f("ck_sticker_pack_visibility")
        ),
        sa.ForeignKeyConstraint(
            ["cover_sticker_id"],
            ["sticker_asset.id"],
            name=op.f("fk_sticker_pack_cover_sticker_id_sticker_asset"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_pack")),
        sa.UniqueConstraint("pack_key", name=op.f("uq_sticker_pack_pack_key")),
    )
    with op.batch_alter_table("sticker_pack", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pack_listing",
            ["visibility", "status", "pack_status", "deleted_at", "updated_at"],
            unique=False,
        )
        batch_op.create_index("ix_pack_owner", ["owner_jid", "deleted_at", "updated_at"], unique=False)
        batch_op.create_index("ix_pack_theme", ["pack_theme_key", "pack_volume"], unique=False)

    op.create_table(
        "sticker_pack_engagement",
        sa.Column("pack_id", sa.String(length=36), nullable=False),
        sa.Column("open_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("like_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dislike_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_opened_at", UtcDateTime(), nullable=True),
        sa.Column("last_interacted_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["sticker_pack.id"],
            name=op.f("fk_sticker_pack_engagement_pack_id_sticker_pack"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pack_id", name=op.f("pk_sticker_pack_engagement")),
    )
    op.create_table(
        "sticker_pack_interaction_event",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pack_id", sa.String(length=36), nullable=False),
        sa.Column("interaction", sa.String(length=16), nullable=False),
        sa.Column("actor_key", sa.String(length=120), nullable=True),
        sa.Column("session_key", sa.String(length=120), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.CheckConstraint(
            "interaction IN ('open', 'like', 'dislike')",
            name=op.f("ck_sticker_pack_interaction_event_interaction"),
        ),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["sticker_pack.id"],
            name=op.f("fk_sticker_pack_interaction_event_pack_id_sticker_pack"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_pack_interaction_event")),
    )
    with op.batch_alter_table("sticker_pack_interaction_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interaction_actor", ["pack_id", "interaction", "actor_key", "created_at"], unique=False
        )
        batch_op.create_index("ix_interaction_pack_time", ["pack_id", "created_at"], unique=False)

    op.create_table(
        "sticker_pack_item",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pack_id", sa.String(length=36), nullable=False),
        sa.Column("sticker_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("emojis", sa.JSON(), nullable=True),
        sa.Column("accessibility_label", sa.String(length=255), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["sticker_pack.id"],
            name=op.f("fk_sticker_pack_item_pack_id_sticker_pack"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sticker_id"],
            ["sticker_asset.id"],
            name=op.f("fk_sticker_pack_item_sticker_id_sticker_asset"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_pack_item")),
        sa.UniqueConstraint("pack_id", "position", name=op.f("uq_sticker_pack_item_pack_id_position")),
        sa.UniqueConstraint("pack_id", "sticker_id", name=op.f("uq_sticker_pack_item_pack_id_sticker_id")),
    )
    with op.batch_alter_table("sticker_pack_item", schema=None) as batch_op:
        batch_op.create_index("ix_pack_item_sticker", ["sticker_id"], unique=False)

    op.create_table(
        "sticker_pack_score_snapshot",
        sa.Column("pack_id", sa.String(length=36), nullable=False),
        sa.Column("ranking_score", sa.Float(), server_default="0", nullable=False),
        sa.Column("pack_score", sa.Float(), server_default="0", nullable=False),
        sa.Column("trend_score", sa.Float(), server_default="0", nullable=False),
        sa.Column("quality_score", sa.Float(), server_default="0", nullable=False),
        sa.Column("engagement_score", sa.Float(), server_default="0", nullable=False),
        sa.Column("diversity_score", sa.Float(), server_default="0", nullable=False),
        sa.Column("cohesion_score", sa.Float(), server_default="0", nullable=False),
        sa.Column("sensitive_content", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("nsfw_level", sa.String(length=16), server_default="safe", nullable=False),
        sa.Column("sticker_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("scores_json", sa.JSON(), nullable=True),
        sa.Column("source_version", sa.String(length=16), server_default="v1", nullable=False),
        sa.Column("refreshed_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.CheckConstraint(
            "nsfw_level IN ('safe', 'suggestive', 'explicit')",
            name=op.f("ck_sticker_pack_score_snapshot_nsfw_level"),
        ),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["sticker_pack.id"],
            name=op.f("fk_sticker_pack_score_snapshot_pack_id_sticker_pack"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pack_id", name=op.f("pk_sticker_pack_score_snapshot")),
    )
    with op.batch_alter_table("sticker_pack_score_snapshot", schema=None) as batch_op:
        batch_op.create_index("ix_snapshot_ranking", ["ranking_score"], unique=False)
        batch_op.create_index("ix_snapshot_refreshed", ["refreshed_at"], unique=False)
        batch_op.create_index("ix_snapshot_trend", ["trend_score"], unique=False)

    op.create_table(
        "sticker_pack_web_upload",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pack_id", sa.String(length=36), nullable=False),
        sa.Column("upload_id", sa.String(length=120), nullable=False),
        sa.Column("sticker_hash", sa.String(length=64), nullable=True),
        sa.Column("source_mimetype", sa.String(length=64), nullable=True),
        sa.Column("upload_status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("sticker_id", sa.String(length=36), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=255), nullable=True),
        sa.Column("attempt_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.CheckConstraint(
            "upload_status IN ('pending', 'processing', 'done', 'failed')",
            name=op.f("ck_sticker_pack_web_upload_upload_status"),
        ),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["sticker_pack.id"],
            name=op.f("fk_sticker_pack_web_upload_pack_id_sticker_pack"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sticker_id"],
            ["sticker_asset.id"],
            name=op.f("fk_sticker_pack_web_upload_sticker_id_sticker_asset"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_pack_web_upload")),
        sa.UniqueConstraint(
            "pack_id", "sticker_hash", name=op.f("uq_sticker_pack_web_upload_pack_id_sticker_hash")
        ),
        sa.UniqueConstraint(
            "pack_id", "upload_id", name=op.f("uq_sticker_pack_web_upload_pack_id_upload_id")
        ),
    )
    with op.batch_alter_table("sticker_pack_web_upload", schema=None) as batch_op:
        batch_op.create_index("ix_web_upload_status", ["pack_id", "upload_status"], unique=False)
        batch_op.create_index("ix_web_upload_updated", ["pack_id", "updated_at"], unique=False)

    flags = sa.table(
        "feature_flag",
        sa.column("flag_name", sa.String),
        sa.column("is_enabled", sa.SmallInteger),
        sa.column("rollout_percent", sa.SmallInteger),
        sa.column("description", sa.String),
        sa.column("updated_by", sa.String),
        sa.column("created_at", UtcDateTime()),
        sa.column("updated_at", UtcDateTime()),
    )
    now = utcnow()
    # The four rollout flags and their defaults, as the original's migration 0026 seeds them.
    op.bulk_insert(
        flags,
        [
            {
                "flag_name": name,
                "is_enabled": enabled,
                "rollout_percent": 100,
                "description": text,
                "updated_by": "migration",
                "created_at": now,
                "updated_at": now,
            }
            for name, enabled, text in (
                ("enable_ranking_snapshot_read", 1, "Catalog reads ranking signals from score snapshots"),
                ("enable_domain_event_outbox", 1, "Outbox consumer dispatches domain events"),
                (
                    "enable_worker_dedicated_processes",
                    0,
                    "Dedicated workers consume tasks, not the inline poller",
                ),
                (
                    "enable_object_storage_delivery",
                    0,
                    "Sticker files delivered from object storage by signed URL",
                ),
            )
        ],
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("sticker_pack_web_upload", schema=None) as batch_op:
        batch_op.drop_index("ix_web_upload_updated")
        batch_op.drop_index("ix_web_upload_status")

    op.drop_table("sticker_pack_web_upload")
    with op.batch_alter_table("sticker_pack_score_snapshot", schema=None) as batch_op:
        batch_op.drop_index("ix_snapshot_trend")
        batch_op.drop_index("ix_snapshot_refreshed")
        batch_op.drop_index("ix_snapshot_ranking")

    op.drop_table("sticker_pack_score_snapshot")
    with op.batch_alter_table("sticker_pack_item", schema=None) as batch_op:
        batch_op.drop_index("ix_pack_item_sticker")

    op.drop_table("sticker_pack_item")
    with op.batch_alter_table("sticker_pack_interaction_event", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_pack_time")
        batch_op.drop_index("ix_interaction_actor")

    op.drop_table("sticker_pack_interaction_event")
    op.drop_table("sticker_pack_engagement")
    with op.batch_alter_table("sticker_pack", schema=None) as batch_op:
        batch_op.drop_index("ix_pack_theme")
        batch_op.drop_index("ix_pack_owner")
        batch_op.drop_index("ix_pack_listing")

    op.drop_table("sticker_pack")
    with op.batch_alter_table("sticker_asset_reprocess_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_reprocess_claim")
        batch_op.drop_index("ix_reprocess_asset")

    op.drop_table("sticker_asset_reprocess_queue")
    with op.batch_alter_table("sticker_asset_classification", schema=None) as batch_op:
        batch_op.drop_index("ix_classification_version")
        batch_op.drop_index("ix_classification_theme")

    op.drop_table("sticker_asset_classification")
    with op.batch_alter_table("sticker_worker_task_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_task_claim")

    op.drop_table("sticker_worker_task_queue")
    op.drop_table("sticker_worker_task_dlq")
    op.drop_table("sticker_asset_reprocess_dlq")
    with op.batch_alter_table("sticker_asset", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_source_sha256")
        batch_op.drop_index("ix_asset_owner_created")

    op.drop_table("sticker_asset")
    op.drop_table("feature_flag")
    op.drop_table("domain_event_outbox_dlq")
    with op.batch_alter_table("domain_event_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_claim")
        batch_op.drop_index("ix_outbox_aggregate")

    op.drop_table("domain_event_outbox")
