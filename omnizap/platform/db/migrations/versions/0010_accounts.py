"""accounts: web accounts, database sessions (hashed tokens), one-time sign-in links, OIDC login
state, sign-in attempts and bans

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 02:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from omnizap.platform.db.types import UtcDateTime, utc_now

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AUTH_METHODS = "'oidc', 'google_id_token', 'login_link', 'whatsapp_link'"


def _created_at() -> sa.Column:
    return sa.Column("created_at", UtcDateTime(), server_default=utc_now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "sticker_web_account",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_jid", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("email_verified", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("oidc_issuer", sa.String(length=255), nullable=True),
        sa.Column("oidc_subject", sa.String(length=255), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("picture_url", sa.String(length=1000), nullable=True),
        sa.Column("last_login_at", UtcDateTime(), nullable=True),
        _created_at(),
        sa.Column("updated_at", UtcDateTime(), server_default=utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_web_account")),
        sa.UniqueConstraint("owner_jid", name=op.f("uq_sticker_web_account_owner_jid")),
        sa.UniqueConstraint(
            "oidc_issuer", "oidc_subject", name=op.f("uq_sticker_web_account_oidc_issuer_oidc_subject")
        ),
    )
    op.create_index("ix_web_account_email", "sticker_web_account", ["email"], unique=False)

    op.create_table(
        "sticker_web_google_session",
        sa.Column("session_token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column(
            "google_sub", sa.String(length=255), nullable=True, comment="OIDC subject (the original's column)"
        ),
        sa.Column("owner_jid", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("picture", sa.String(length=1000), nullable=True),
        sa.Column("auth_method", sa.String(length=32), nullable=False),
        _created_at(),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            f"auth_method IN ({AUTH_METHODS})", name=op.f("ck_sticker_web_google_session_auth_method")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["sticker_web_account.id"],
            name=op.f("fk_sticker_web_google_session_account_id_sticker_web_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_token_hash", name=op.f("pk_sticker_web_google_session")),
    )
    op.create_index("ix_web_session_account", "sticker_web_google_session", ["account_id"], unique=False)
    op.create_index("ix_web_session_owner", "sticker_web_google_session", ["owner_jid"], unique=False)
    op.create_index("ix_web_session_expires", "sticker_web_google_session", ["expires_at"], unique=False)

    op.create_table(
        "sticker_web_login_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("owner_jid", sa.String(length=255), nullable=False),
        _created_at(),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sticker_web_login_token")),
    )
    op.create_index("ix_web_login_token_expires", "sticker_web_login_token", ["expires_at"], unique=False)

    op.create_table(
        "sticker_web_oidc_state",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_path", sa.String(length=512), nullable=True),
        _created_at(),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_sticker_web_oidc_state")),
    )
    op.create_index("ix_web_oidc_state_expires", "sticker_web_oidc_state", ["expires_at"], unique=False)

    op.create_table(
        "sticker_web_auth_attempt",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_web_auth_attempt")),
    )
    op.create_index(
        "ix_web_auth_attempt_client_time",
        "sticker_web_auth_attempt",
        ["client_key", "created_at"],
        unique=False,
    )

    op.create_table(
        "sticker_web_ban",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("owner_jid", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("oidc_subject", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=True),
        _created_at(),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_web_ban")),
    )
    op.create_index("ix_web_ban_owner", "sticker_web_ban", ["owner_jid"], unique=False)
    op.create_index("ix_web_ban_email", "sticker_web_ban", ["email"], unique=False)
    op.create_index("ix_web_ban_subject", "sticker_web_ban", ["oidc_subject"], unique=False)


def downgrade() -> None:
    op.drop_table("sticker_web_ban")
    op.drop_table("sticker_web_auth_attempt")
    op.drop_table("sticker_web_oidc_state")
    op.drop_table("sticker_web_login_token")
    op.drop_table("sticker_web_google_session")
    op.drop_table("sticker_web_account")
