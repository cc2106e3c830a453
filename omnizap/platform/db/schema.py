"""The whole relational schema, one definition for SQLite, PostgreSQL and MySQL/MariaDB.

Table and column names are the original OmniZap's (see `reference/`), so runbook SQL keeps working.
Migrations under `migrations/versions` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

from omnizap.platform.db import updated_at as updated_at_ddl
from omnizap.platform.db.types import BigId, UtcDateTime, created_at_column, flag_column, updated_at_column

metadata = sa.MetaData(
    naming_convention={
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

VISIBILITIES = ("private", "public", "unlisted")
PACK_STATUSES = ("draft", "uploading", "processing", "published", "failed")
PACK_CURATION_STATUSES = ("building", "ready", "archived")
QUEUE_STATUSES = ("pending", "processing", "completed", "failed")
INTERACTIONS = ("open", "like", "dislike")
REPROCESS_REASONS = ("MODEL_UPGRADE", "LOW_CONFIDENCE", "TREND_SHIFT", "NSFW_REVIEW")
NSFW_LEVELS = ("safe", "suggestive", "explicit")


def _one_of(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)


def _queue_columns(available_column: str, default_max_attempts: int) -> list[sa.Column[object]]:
    """Columns of the claim/lease/backoff protocol shared by every queue table."""
    return [
        sa.Column("priority", sa.Integer, nullable=False, default=50, server_default="50"),
        sa.Column(available_column, UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, default="pending", server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default="0"),
        sa.Column(
            "max_attempts",
            sa.Integer,
            nullable=False,
            default=default_max_attempts,
            server_default=str(default_max_attempts),
        ),
        sa.Column("worker_token", sa.String(36), nullable=True),
        sa.Column("locked_at", UtcDateTime(), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("processed_at", UtcDateTime(), nullable=True),
        created_at_column(),
        updated_at_column(),
    ]


def _dlq_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("failed_at", UtcDateTime(), nullable=False),
        sa.Column("replayed_at", UtcDateTime(), nullable=True),
        created_at_column(),
    ]


sticker_asset = sa.Table(
    "sticker_asset",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("owner_jid", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("source_sha256", sa.String(64), nullable=True),
    sa.Column("mimetype", sa.String(64), nullable=False, default="image/webp", server_default="image/webp"),
    flag_column("is_animated"),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("frame_count", sa.Integer, nullable=False, default=1, server_default="1"),
    sa.Column("duration_ms", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("storage_path", sa.String(512), nullable=False, comment="storage key, never a server path"),
    sa.Column("object_storage_key", sa.String(512), nullable=True),
    sa.Column("object_storage_synced_at", UtcDateTime(), nullable=True),
    # When the sticker first sat in a public or unlisted pack (set by PackService in that write).
    # NULL: it has only ever been private, so nothing outside its owner's packs may show it
    # (theme curation, the orphan count); docs/curation.md "Shareable stickers".
    sa.Column("shared_at", UtcDateTime(), nullable=True),
    created_at_column(),
    updated_at_column(),
    sa.Index("ix_asset_owner_created", "owner_jid", "created_at"),
    sa.Index("ix_asset_source_sha256", "source_sha256"),
)

sticker_pack = sa.Table(
    "sticker_pack",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("owner_jid", sa.String(255), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("publisher", sa.String(120), nullable=False),
    sa.Column("description", sa.String(1024), nullable=True),
    sa.Column("pack_key", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "cover_sticker_id",
        sa.String(36),
        sa.ForeignKey("sticker_asset.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("visibility", sa.String(16), nullable=False, default="private", server_default="private"),
    sa.Column("status", sa.String(16), nullable=False, default="published", server_default="published"),
    sa.Column("pack_status", sa.String(16), nullable=False, default="ready", server_default="ready"),
    sa.Column("pack_theme_key", sa.String(160), nullable=True),
    sa.Column("pack_volume", sa.Integer, nullable=True),
    sa.Column("last_rebalanced_at", UtcDateTime(), nullable=True),
    flag_column("is_auto_pack"),
    flag_column("is_sensitive"),
    sa.Column("version", sa.Integer, nullable=False, default=1, server_default="1"),
    created_at_column(),
    updated_at_column(),
    sa.Column("deleted_at", UtcDateTime(), nullable=True),
    _one_of("visibility", VISIBILITIES, "visibility"),
    _one_of("status", PACK_STATUSES, "status"),
    _one_of("pack_status", PACK_CURATION_STATUSES, "pack_status"),
    sa.Index("ix_pack_owner", "owner_jid", "deleted_at", "updated_at"),
    sa.Index("ix_pack_listing", "visibility", "status", "pack_status", "deleted_at", "updated_at"),
    sa.Index("ix_pack_theme", "pack_theme_key", "pack_volume"),
)

sticker_pack_item = sa.Table(
    "sticker_pack_item",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("pack_id", sa.String(36), sa.ForeignKey("sticker_pack.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "sticker_id", sa.String(36), sa.ForeignKey("sticker_asset.id", ondelete="RESTRICT"), nullable=False
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("emojis", sa.JSON, nullable=True),
    sa.Column("accessibility_label", sa.String(255), nullable=True),
    created_at_column(),
    updated_at_column(),
    sa.UniqueConstraint("pack_id", "sticker_id"),
    sa.UniqueConstraint("pack_id", "position"),
    sa.Index("ix_pack_item_sticker", "sticker_id"),
)

sticker_asset_classification = sa.Table(
    "sticker_asset_classification",
    metadata,
    sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("sticker_asset.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=True),
    sa.Column("classification_version", sa.String(64), nullable=False),
    sa.Column("category", sa.String(120), nullable=True),
    sa.Column("theme_key", sa.String(160), nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("entropy", sa.Float, nullable=True),
    sa.Column("confidence_margin", sa.Float, nullable=True),
    sa.Column("nsfw_score", sa.Float, nullable=True),
    flag_column("is_nsfw"),
    flag_column("ambiguous"),
    sa.Column("all_scores", sa.JSON, nullable=True),
    sa.Column("top_labels", sa.JSON, nullable=True),
    sa.Column("signals", sa.JSON, nullable=True, comment="cheap image signals: colourfulness, blur, text"),
    sa.Column("image_hash", sa.String(64), nullable=True),
    sa.Column("embedding", sa.LargeBinary, nullable=True, comment="float32 image embedding"),
    sa.Column("classified_at", UtcDateTime(), nullable=False),
    created_at_column(),
    updated_at_column(),
    sa.Index("ix_classification_version", "classification_version"),
    sa.Index("ix_classification_theme", "theme_key"),
    # The low-confidence producer scans one version's rows by confidence, lowest first.
    sa.Index("ix_classification_version_confidence", "classification_version", "confidence"),
)

sticker_pack_engagement = sa.Table(
    "sticker_pack_engagement",
    metadata,
    sa.Column(
        "pack_id", sa.String(36), sa.ForeignKey("sticker_pack.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("open_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("like_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("dislike_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("last_opened_at", UtcDateTime(), nullable=True),
    sa.Column("last_interacted_at", UtcDateTime(), nullable=True),
    created_at_column(),
    updated_at_column(),
)

sticker_pack_interaction_event = sa.Table(
    "sticker_pack_interaction_event",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("pack_id", sa.String(36), sa.ForeignKey("sticker_pack.id", ondelete="CASCADE"), nullable=False),
    sa.Column("interaction", sa.String(16), nullable=False),
    sa.Column("actor_key", sa.String(120), nullable=True),
    sa.Column("session_key", sa.String(120), nullable=True),
    sa.Column("source", sa.String(32), nullable=True),
    sa.Column("client_key", sa.String(64), nullable=True, comment="keyed hash of the client address"),
    created_at_column(),
    _one_of("interaction", INTERACTIONS, "interaction"),
    sa.Index("ix_interaction_pack_time", "pack_id", "created_at"),
    sa.Index("ix_interaction_actor", "pack_id", "interaction", "actor_key", "created_at"),
    sa.Index("ix_interaction_client_time", "client_key", "created_at"),
    # Catalog-wide windows (24 h / 7 d trends, the marketplace's daily series) scan by time.
    sa.Index("ix_interaction_time", "created_at", "interaction", "pack_id"),
)

sticker_pack_web_upload = sa.Table(
    "sticker_pack_web_upload",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("pack_id", sa.String(36), sa.ForeignKey("sticker_pack.id", ondelete="CASCADE"), nullable=False),
    sa.Column("upload_id", sa.String(120), nullable=False),
    sa.Column("sticker_hash", sa.String(64), nullable=True),
    sa.Column("source_mimetype", sa.String(64), nullable=True),
    sa.Column("upload_status", sa.String(16), nullable=False, default="pending", server_default="pending"),
    sa.Column(
        "sticker_id", sa.String(36), sa.ForeignKey("sticker_asset.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.String(255), nullable=True),
    sa.Column("attempt_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
    created_at_column(),
    updated_at_column(),
    _one_of("upload_status", ("pending", "processing", "done", "failed"), "upload_status"),
    sa.UniqueConstraint("pack_id", "upload_id"),
    sa.UniqueConstraint("pack_id", "sticker_hash"),
    sa.Index("ix_web_upload_status", "pack_id", "upload_status"),
    sa.Index("ix_web_upload_updated", "pack_id", "updated_at"),
)

sticker_asset_reprocess_queue = sa.Table(
    "sticker_asset_reprocess_queue",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("sticker_asset.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(180), nullable=True, unique=True),
    *_queue_columns("scheduled_at", default_max_attempts=5),
    _one_of("reason", REPROCESS_REASONS, "reason"),
    _one_of("status", QUEUE_STATUSES, "status"),
    sa.Index("ix_reprocess_claim", "status", "scheduled_at", "priority"),
    sa.Index("ix_reprocess_due", "status", sa.text("priority DESC"), "scheduled_at", "id"),
    sa.Index("ix_reprocess_lease", "status", "lease_expires_at"),
    sa.Index("ix_reprocess_asset", "asset_id", "reason", "status"),
)

sticker_asset_reprocess_dlq = sa.Table(
    "sticker_asset_reprocess_dlq",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("reprocess_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("asset_id", sa.String(36), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(180), nullable=True),
    *_dlq_columns(),
)

# --- reprocess marks ---------------------------------------------------------------------------------
# Which reprocess reason was already enqueued for an asset at which classification version. Producers
# skip marked (asset, reason, version) triples, so each reason fires once per version even after the
# queue's completed rows are purged (the original's backfill re-enqueued every asset forever, §1.5).
sticker_asset_reprocess_mark = sa.Table(
    "sticker_asset_reprocess_mark",
    metadata,
    sa.Column(
        "asset_id", sa.String(36), sa.ForeignKey("sticker_asset.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("reason", sa.String(32), primary_key=True),
    sa.Column("classification_version", sa.String(64), nullable=False),
    sa.Column("marked_at", UtcDateTime(), nullable=False),
    _one_of("reason", REPROCESS_REASONS, "reason"),
)

sticker_worker_task_queue = sa.Table(
    "sticker_worker_task_queue",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("task_type", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(180), nullable=True, unique=True),
    sa.Column("payload", sa.JSON, nullable=True),
    *_queue_columns("scheduled_at", default_max_attempts=5),
    _one_of("status", QUEUE_STATUSES, "status"),
    sa.Index("ix_task_claim", "status", "task_type", "scheduled_at", "priority"),
    # The claim's order (priority DESC, then oldest) walks this index instead of sorting every
    # pending row; expired leases are found through the second.
    sa.Index("ix_task_due", "status", sa.text("priority DESC"), "scheduled_at", "id"),
    sa.Index("ix_task_lease", "status", "lease_expires_at"),
)

sticker_worker_task_dlq = sa.Table(
    "sticker_worker_task_dlq",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("task_type", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("idempotency_key", sa.String(180), nullable=True),
    *_dlq_columns(),
)

domain_event_outbox = sa.Table(
    "domain_event_outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_type", sa.String(96), nullable=False),
    sa.Column("aggregate_type", sa.String(96), nullable=False),
    sa.Column("aggregate_id", sa.String(128), nullable=False),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("idempotency_key", sa.String(180), nullable=False, unique=True),
    *_queue_columns("available_at", default_max_attempts=10),
    _one_of("status", QUEUE_STATUSES, "status"),
    sa.Index("ix_outbox_claim", "status", "available_at", "priority"),
    sa.Index("ix_outbox_due", "status", sa.text("priority DESC"), "available_at", "id"),
    sa.Index("ix_outbox_lease", "status", "lease_expires_at"),
    sa.Index("ix_outbox_aggregate", "aggregate_type", "aggregate_id"),
)

domain_event_outbox_dlq = sa.Table(
    "domain_event_outbox_dlq",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("outbox_event_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("event_type", sa.String(96), nullable=False),
    sa.Column("aggregate_type", sa.String(96), nullable=False),
    sa.Column("aggregate_id", sa.String(128), nullable=False),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("idempotency_key", sa.String(180), nullable=True),
    *_dlq_columns(),
)

feature_flag = sa.Table(
    "feature_flag",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flag_name", sa.String(120), nullable=False, unique=True),
    flag_column("is_enabled"),
    sa.Column("rollout_percent", sa.SmallInteger, nullable=False, default=100, server_default="100"),
    sa.Column("description", sa.String(255), nullable=True),
    sa.Column("updated_by", sa.String(120), nullable=True),
    updated_at_column(),
    created_at_column(),
)

sticker_pack_score_snapshot = sa.Table(
    "sticker_pack_score_snapshot",
    metadata,
    sa.Column(
        "pack_id", sa.String(36), sa.ForeignKey("sticker_pack.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("ranking_score", sa.Float, nullable=False, default=0, server_default="0"),
    sa.Column("pack_score", sa.Float, nullable=False, default=0, server_default="0"),
    sa.Column("trend_score", sa.Float, nullable=False, default=0, server_default="0"),
    sa.Column("quality_score", sa.Float, nullable=False, default=0, server_default="0"),
    sa.Column("engagement_score", sa.Float, nullable=False, default=0, server_default="0"),
    sa.Column("diversity_score", sa.Float, nullable=False, default=0, server_default="0"),
    sa.Column("cohesion_score", sa.Float, nullable=False, default=0, server_default="0"),
    flag_column("sensitive_content"),
    sa.Column("nsfw_level", sa.String(16), nullable=False, default="safe", server_default="safe"),
    sa.Column("sticker_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("tags", sa.JSON, nullable=True),
    sa.Column("scores_json", sa.JSON, nullable=True),
    sa.Column("source_version", sa.String(16), nullable=False, default="v1", server_default="v1"),
    sa.Column("refreshed_at", UtcDateTime(), nullable=False),
    created_at_column(),
    updated_at_column(),
    _one_of("nsfw_level", NSFW_LEVELS, "nsfw_level"),
    sa.Index("ix_snapshot_ranking", "ranking_score"),
    sa.Index("ix_snapshot_trend", "trend_score"),
    sa.Index("ix_snapshot_refreshed", "refreshed_at"),
)


# --- catalog ranking generations -------------------------------------------------------------------
# The public list's order for score-based sorts is computed once for every API process and kept as a
# numbered generation; a pagination cursor names its generation, so paging on never skips or repeats
# a pack while scores change underneath.
sticker_catalog_generation = sa.Table(
    "sticker_catalog_generation",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("status", sa.String(16), nullable=False, default="building", server_default="building"),
    sa.Column("pack_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("built_by", sa.String(120), nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    _one_of("status", ("building", "ready", "failed"), "status"),
    sa.Index("ix_catalog_generation_status", "status", "id"),
)

sticker_catalog_ranking = sa.Table(
    "sticker_catalog_ranking",
    metadata,
    sa.Column(
        "generation_id",
        sa.BigInteger,
        sa.ForeignKey("sticker_catalog_generation.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("sort_key", sa.String(16), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pack_id", sa.String(36), sa.ForeignKey("sticker_pack.id", ondelete="CASCADE"), nullable=False),
    sa.Index("ix_catalog_ranking_pack", "generation_id", "pack_id"),
)


# --- named leases -----------------------------------------------------------------------------------
# A cross-process mutex with expiry: jobs that must not overlap (curation and rebuild both edit the
# auto packs) hold the same lease; a holder that dies loses it when `expires_at` passes.
platform_lease = sa.Table(
    "platform_lease",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("holder", sa.String(160), nullable=False),
    sa.Column("acquired_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    updated_at_column(),
)


# --- chat: Telegram sticker sets ---------------------------------------------------------------------
# One row per pack that `/pack send` turned into a Telegram sticker set (so the pack page can offer
# "Add to Telegram"). `stickers` is the set's content in order, as JSON
# [{"sha256": <of the pack's WebP>, "file_id": <Telegram's>}], so a later sync adds, deletes and
# reorders only what changed.
chat_telegram_sticker_set = sa.Table(
    "chat_telegram_sticker_set",
    metadata,
    sa.Column("pack_key", sa.String(64), primary_key=True),
    sa.Column("pack_id", sa.String(36), nullable=True),
    sa.Column("set_name", sa.String(64), nullable=False, unique=True),
    sa.Column("owner_user_id", sa.BigInteger, nullable=False),
    sa.Column("synced_version", sa.Integer, nullable=False),
    sa.Column("stickers", sa.Text, nullable=False),
    created_at_column(),
    updated_at_column(),
)


# --- chat bot (docs/chat.md) --------------------------------------------------------------------------
# Per-chat choices (prefix, reply language, group auto-sticker), the sticker each person used last
# (what `/pack add` takes when no sticker is quoted), fixed rate-limit windows shared by every worker
# process, and the one-time nonces of the WhatsApp → web login links.
chat_settings = sa.Table(
    "chat_settings",
    metadata,
    sa.Column("network", sa.String(32), primary_key=True),
    sa.Column("chat_id", sa.String(190), primary_key=True),
    sa.Column("command_prefix", sa.String(8), nullable=True),
    sa.Column("locale", sa.String(8), nullable=True),
    flag_column("autosticker"),
    updated_at_column(),
)

chat_last_sticker = sa.Table(
    "chat_last_sticker",
    metadata,
    sa.Column("owner_jid", sa.String(255), primary_key=True),
    sa.Column(
        "sticker_id", sa.String(36), sa.ForeignKey("sticker_asset.id", ondelete="CASCADE"), nullable=False
    ),
    updated_at_column(),
)

chat_rate_window = sa.Table(
    "chat_rate_window",
    metadata,
    sa.Column("bucket", sa.String(255), primary_key=True),
    sa.Column("window_started_at", UtcDateTime(), nullable=False),
    sa.Column("action_count", sa.Integer, nullable=False, default=0, server_default="0"),
)

chat_login_nonce = sa.Table(
    "chat_login_nonce",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("owner_jid", sa.String(255), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("consumed_at", UtcDateTime(), nullable=True),
    created_at_column(),
    sa.Index("ix_chat_login_nonce_expires", "expires_at"),
)


# --- lock slots -------------------------------------------------------------------------------------
# Row locks that make a count-then-insert atomic per key on PostgreSQL and MySQL (an owner's pack
# limit, a client's interaction budget): the writer upserts the row of its key's slot first, which
# holds the row's write lock until commit. Keys are hashed onto a fixed number of slots per scope,
# so the table stays small and needs no cleanup; two keys sharing a slot only wait for each other.
platform_lock_slot = sa.Table(
    "platform_lock_slot",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True, autoincrement=False),
    updated_at_column(),
)


# --- accounts and sign-in (http §7.1-7.3; docs/accounts.md) -----------------------------------------
# A person's packs belong to their account through `owner_jid`. Session, link and login-state tokens
# are stored only as SHA-256 hex digests (`*_hash`); the raw values exist only in the browser.
AUTH_METHODS = ("oidc", "google_id_token", "login_link", "whatsapp_link")

sticker_web_account = sa.Table(
    "sticker_web_account",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("owner_jid", sa.String(255), nullable=False, unique=True),
    sa.Column("email", sa.String(255), nullable=True),
    flag_column("email_verified"),
    sa.Column("oidc_issuer", sa.String(255), nullable=True),
    sa.Column("oidc_subject", sa.String(255), nullable=True),
    sa.Column("display_name", sa.String(255), nullable=True),
    sa.Column("picture_url", sa.String(1000), nullable=True),
    sa.Column("last_login_at", UtcDateTime(), nullable=True),
    created_at_column(),
    updated_at_column(),
    sa.UniqueConstraint("oidc_issuer", "oidc_subject"),
    sa.Index("ix_web_account_email", "email"),
)

sticker_web_google_session = sa.Table(
    "sticker_web_google_session",
    metadata,
    sa.Column("session_token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "account_id",
        sa.String(36),
        sa.ForeignKey("sticker_web_account.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("google_sub", sa.String(255), nullable=True, comment="OIDC subject (the original's column)"),
    sa.Column("owner_jid", sa.String(255), nullable=False),
    sa.Column("email", sa.String(255), nullable=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("picture", sa.String(1000), nullable=True),
    sa.Column("auth_method", sa.String(32), nullable=False),
    created_at_column(),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    _one_of("auth_method", AUTH_METHODS, "auth_method"),
    sa.Index("ix_web_session_account", "account_id"),
    sa.Index("ix_web_session_owner", "owner_jid"),
    sa.Index("ix_web_session_expires", "expires_at"),
)

# One-time sign-in links made by `omnizap accounts login-link`.
sticker_web_login_token = sa.Table(
    "sticker_web_login_token",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("owner_jid", sa.String(255), nullable=False),
    created_at_column(),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("used_at", UtcDateTime(), nullable=True),
    sa.Index("ix_web_login_token_expires", "expires_at"),
)

# Pending OpenID Connect authorizations: state (hashed), nonce and PKCE verifier, used once.
sticker_web_oidc_state = sa.Table(
    "sticker_web_oidc_state",
    metadata,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("nonce", sa.String(128), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("next_path", sa.String(512), nullable=True),
    created_at_column(),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_web_oidc_state_expires", "expires_at"),
)

# Sign-in attempts per client (HMAC of the address, never the address) for the sign-in rate limit.
sticker_web_auth_attempt = sa.Table(
    "sticker_web_auth_attempt",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("client_key", sa.String(64), nullable=False),
    created_at_column(),
    sa.Index("ix_web_auth_attempt_client_time", "client_key", "created_at"),
)

# Banned people: any of owner_jid, email or OIDC subject matches. Managed by the CLI (and, later, the
# moderation panel); checked at every sign-in and on every request carrying a session.
sticker_web_ban = sa.Table(
    "sticker_web_ban",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("owner_jid", sa.String(255), nullable=True),
    sa.Column("email", sa.String(255), nullable=True),
    sa.Column("oidc_subject", sa.String(255), nullable=True),
    sa.Column("reason", sa.String(500), nullable=False, default="", server_default=""),
    sa.Column("created_by", sa.String(120), nullable=True),
    created_at_column(),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.Index("ix_web_ban_owner", "owner_jid"),
    sa.Index("ix_web_ban_email", "email"),
    sa.Index("ix_web_ban_subject", "oidc_subject"),
)


# The media of recent incoming messages and of stickers the bot sent, per (network, message id):
# the WhatsApp Cloud API's webhook names a quoted message only by its id, so `/toimg` replying to a
# sticker looks its media up here. `media` is a MediaRef as JSON; rows older than a week are pruned.
chat_message_media = sa.Table(
    "chat_message_media",
    metadata,
    sa.Column("network", sa.String(32), primary_key=True),
    sa.Column("message_id", sa.String(190), primary_key=True),
    sa.Column("chat_id", sa.String(190), nullable=False),
    sa.Column("media", sa.Text, nullable=False),
    created_at_column(),
    sa.Index("ix_chat_message_media_created", "created_at"),
)
# --- updated_at kept by the database (migration 0012) ----------------------------------------------
# Tables made from this metadata (create_all) get the same triggers the migration installs.
sa.event.listen(
    metadata,
    "before_create",
    sa.DDL(updated_at_ddl.pg_function_statements()[0]).execute_if(dialect="postgresql"),
)
for _table in metadata.tables.values():
    if "updated_at" in _table.c:
        for _dialect in ("postgresql", "sqlite"):
            for _statement in updated_at_ddl.create_statements(_dialect, _table.name, list(_table.c.keys())):
                sa.event.listen(
                    _table, "after_create", sa.DDL(_statement.replace("%", "%%")).execute_if(dialect=_dialect)
                )
