"""SQL of accounts, sessions, sign-in links, OIDC login state, sign-in attempts and bans."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.platform.db.schema import (
    sticker_pack,
    sticker_pack_item,
    sticker_web_account,
    sticker_web_auth_attempt,
    sticker_web_ban,
    sticker_web_google_session,
    sticker_web_login_token,
    sticker_web_oidc_state,
)

accounts = sticker_web_account
sessions = sticker_web_google_session
login_tokens = sticker_web_login_token
oidc_states = sticker_web_oidc_state
attempts = sticker_web_auth_attempt
bans = sticker_web_ban


def _one(connection: Connection, query: sa.Select[Any]) -> dict[str, Any] | None:
    row = connection.execute(query).mappings().first()
    return dict(row) if row is not None else None


# --- accounts -----------------------------------------------------------------------------------------


def account_by_id(connection: Connection, account_id: str) -> dict[str, Any] | None:
    return _one(connection, sa.select(accounts).where(accounts.c.id == account_id))


def account_by_owner(connection: Connection, owner_jid: str) -> dict[str, Any] | None:
    return _one(connection, sa.select(accounts).where(accounts.c.owner_jid == owner_jid))


def account_by_subject(connection: Connection, issuer: str, subject: str) -> dict[str, Any] | None:
    query = sa.select(accounts).where(accounts.c.oidc_issuer == issuer, accounts.c.oidc_subject == subject)
    return _one(connection, query)


def insert_account(connection: Connection, values: dict[str, Any]) -> str:
    account_id = str(uuid.uuid4())
    connection.execute(accounts.insert().values(id=account_id, **values))
    return account_id


def update_account(connection: Connection, account_id: str, values: dict[str, Any]) -> None:
    connection.execute(accounts.update().where(accounts.c.id == account_id).values(**values))


def detach_subject(connection: Connection, issuer: str, subject: str, keep_account_id: str) -> None:
    """Unlink the subject from any other account (one subject ↔ one account, as the original)."""
    connection.execute(
        accounts.update()
        .where(
            accounts.c.oidc_issuer == issuer,
            accounts.c.oidc_subject == subject,
            accounts.c.id != keep_account_id,
        )
        .values(oidc_issuer=None, oidc_subject=None)
    )


# --- sessions -----------------------------------------------------------------------------------------


def insert_session(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(sessions.insert().values(**values))


def session_by_hash(connection: Connection, digest: str) -> dict[str, Any] | None:
    query = (
        sa.select(
            sessions,
            accounts.c.oidc_issuer,
            accounts.c.oidc_subject,
            accounts.c.email.label("account_email"),
        )
        .join(accounts, accounts.c.id == sessions.c.account_id)
        .where(sessions.c.session_token_hash == digest)
    )
    return _one(connection, query)


def delete_sessions_by_hash(connection: Connection, digests: Sequence[str]) -> int:
    if not digests:
        return 0
    return connection.execute(sessions.delete().where(sessions.c.session_token_hash.in_(digests))).rowcount


def delete_sessions_of(connection: Connection, *, account_id: str, owner_jid: str) -> int:
    """Every session of the account or its owner (single active session, http §7.2)."""
    condition = sa.or_(sessions.c.account_id == account_id, sessions.c.owner_jid == owner_jid)
    return connection.execute(sessions.delete().where(condition)).rowcount


def touch_session(connection: Connection, digest: str, now: dt.datetime) -> None:
    connection.execute(
        sessions.update().where(sessions.c.session_token_hash == digest).values(last_seen_at=now)
    )


# --- sign-in links and OIDC state ------------------------------------------------------------------------


def insert_login_token(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(login_tokens.insert().values(**values))


def login_token_by_hash(connection: Connection, digest: str) -> dict[str, Any] | None:
    return _one(connection, sa.select(login_tokens).where(login_tokens.c.token_hash == digest))


def mark_login_token_used(connection: Connection, digest: str, now: dt.datetime) -> bool:
    """True when this call used the link (a concurrent second use finds `used_at` set and gets False)."""
    result = connection.execute(
        login_tokens.update()
        .where(login_tokens.c.token_hash == digest, login_tokens.c.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def insert_oidc_state(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(oidc_states.insert().values(**values))


def take_oidc_state(connection: Connection, digest: str) -> dict[str, Any] | None:
    """The pending login for this state, deleted in the same step so it can be used only once."""
    row = _one(connection, sa.select(oidc_states).where(oidc_states.c.state_hash == digest))
    if row is None:
        return None
    deleted = connection.execute(oidc_states.delete().where(oidc_states.c.state_hash == digest)).rowcount
    return row if deleted == 1 else None


def prune_expired(connection: Connection, now: dt.datetime, attempts_before: dt.datetime) -> None:
    """Drop what can no longer be used: expired sessions, links, login state and old attempts."""
    connection.execute(sessions.delete().where(sessions.c.expires_at <= now))
    connection.execute(login_tokens.delete().where(login_tokens.c.expires_at <= now))
    connection.execute(oidc_states.delete().where(oidc_states.c.expires_at <= now))
    connection.execute(attempts.delete().where(attempts.c.created_at <= attempts_before))


# --- sign-in rate limit ---------------------------------------------------------------------------------


def attempts_since(connection: Connection, client_key: str, since: dt.datetime) -> list[dt.datetime]:
    query = (
        sa.select(attempts.c.created_at)
        .where(attempts.c.client_key == client_key, attempts.c.created_at > since)
        .order_by(attempts.c.created_at.asc())
    )
    return list(connection.execute(query).scalars())


def insert_attempt(connection: Connection, client_key: str, now: dt.datetime) -> None:
    connection.execute(attempts.insert().values(client_key=client_key, created_at=now))


# --- bans -----------------------------------------------------------------------------------------------


def _active_ban(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(bans.c.revoked_at.is_(None), sa.or_(bans.c.expires_at.is_(None), bans.c.expires_at > now))


def active_ban_for(
    connection: Connection,
    *,
    owner_jid: str | None,
    email: str | None,
    subject: str | None,
    now: dt.datetime,
) -> dict[str, Any] | None:
    matches = []
    if owner_jid:
        matches.append(bans.c.owner_jid == owner_jid)
    if email:
        matches.append(bans.c.email == email.lower())
    if subject:
        matches.append(bans.c.oidc_subject == subject)
    if not matches:
        return None
    return _one(connection, sa.select(bans).where(_active_ban(now), sa.or_(*matches)).limit(1))


def insert_ban(connection: Connection, values: dict[str, Any]) -> int:
    return int(connection.execute(bans.insert().values(**values)).inserted_primary_key[0])


def revoke_ban(connection: Connection, ban_id: int, now: dt.datetime) -> bool:
    result = connection.execute(
        bans.update().where(bans.c.id == ban_id, bans.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount == 1


def list_bans(connection: Connection, *, now: dt.datetime, include_inactive: bool) -> list[dict[str, Any]]:
    query = sa.select(bans).order_by(bans.c.created_at.desc(), bans.c.id.desc())
    if not include_inactive:
        query = query.where(_active_ban(now))
    return [dict(row) for row in connection.execute(query).mappings()]


# --- the owner's packs (for `/me`) -------------------------------------------------------------------------

MAX_OWNER_PACKS = 300


def owner_packs(connection: Connection, owner_jids: Sequence[str]) -> list[dict[str, Any]]:
    """Every non-deleted pack of these owners, any status or visibility, newest first (http §7.3)."""
    item_count = (
        sa.select(sa.func.count())
        .select_from(sticker_pack_item)
        .where(sticker_pack_item.c.pack_id == sticker_pack.c.id)
        .scalar_subquery()
        .label("sticker_count")
    )
    query = (
        sa.select(sticker_pack, item_count)
        .where(sticker_pack.c.owner_jid.in_(list(owner_jids)), sticker_pack.c.deleted_at.is_(None))
        .order_by(sticker_pack.c.updated_at.desc(), sticker_pack.c.id)
        .limit(MAX_OWNER_PACKS)
    )
    return [dict(row) for row in connection.execute(query).mappings()]
