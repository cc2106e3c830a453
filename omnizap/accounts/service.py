"""`AccountService`: sign-in (OpenID Connect, Google ID token, one-time links), database sessions,
sign-out, the `/me` profile, the sign-in rate limit and bans (http §7.1-7.3; docs/accounts.md).

Rules kept from the original: one active session per account (signing in drops the others), expiry
fixed at creation, `last_seen_at` written at most every `TOUCH_INTERVAL`, bans re-checked on every
request that carries a session (a banned session is deleted). New here: tokens are stored only as
digests, the OIDC login state lives in the database (any process can finish a sign-in another one
started), and sign-ins are rate-limited per client in the shared database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from omnizap.accounts import repository as repo
from omnizap.accounts.errors import AccountBanned, SignInDisabled, SignInInvalid
from omnizap.accounts.oidc import OidcProvider, ProviderConfig, VerifiedIdentity
from omnizap.accounts.shapes import anonymous_session_data, me_data, session_data
from omnizap.accounts.tokens import clean_token, new_token, same_secret, token_hash
from omnizap.catalog.interactions import RateLimited, client_key, client_key_secret
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput
from omnizap.core.owners import normalize_owner_jid
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow

LOGIN_LINK_PATH = "/login/link"
OIDC_START_PATH = "/login/oidc/start"
OIDC_CALLBACK_PATH = "/login/oidc/callback"
TOUCH_INTERVAL = dt.timedelta(seconds=60)
RATE_WINDOW = dt.timedelta(seconds=60)
OIDC_STATE_TTL = dt.timedelta(minutes=10)
MAX_NEXT_PATH = 512
_SAFE_NEXT = re.compile(r"^/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")


@dataclass(frozen=True)
class Session:
    """An active session. Holds the token's digest, never the token."""

    token_hash: str
    account_id: str
    owner_jid: str
    issuer: str | None
    subject: str | None
    email: str | None
    name: str | None
    picture: str | None
    auth_method: str
    created_at: dt.datetime
    expires_at: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Session:
        return cls(
            token_hash=row["session_token_hash"],
            account_id=row["account_id"],
            owner_jid=row["owner_jid"],
            issuer=row.get("oidc_issuer"),
            subject=row.get("google_sub"),
            email=row.get("email"),
            name=row.get("name"),
            picture=row.get("picture"),
            auth_method=row["auth_method"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )


@dataclass(frozen=True)
class IssuedSession:
    """A new session and its raw token: the token goes into the cookie once and is not kept."""

    token: str
    session: Session
    max_age_seconds: int


@dataclass(frozen=True)
class LoginLink:
    url: str
    owner_jid: str
    expires_at: dt.datetime


def safe_next_path(value: str | None) -> str | None:
    """A same-site path to return to after sign-in, or None: never another origin (`//host`, `\\`)."""
    if not value or len(value) > MAX_NEXT_PATH or not _SAFE_NEXT.match(value):
        return None
    return value


def owner_for_identity(identity: VerifiedIdentity, *, google: bool) -> str:
    """The owner a new OIDC account gets: the original's legacy alias `g<sub>@google.oauth` for
    Google, else a stable opaque handle derived from (issuer, subject)."""
    if google:
        try:
            return normalize_owner_jid(f"g{identity.subject}@google.oauth")
        except InvalidInput:
            pass
    digest = hashlib.sha256(f"{identity.issuer}\n{identity.subject}".encode()).hexdigest()[:24]
    return f"o{digest}@oidc.oauth"


class AccountService:
    """Everything the web routes and the CLI do with accounts. `clock` is injectable for tests."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        provider: OidcProvider | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.database = database
        self.settings = settings
        self.config = provider.config if provider is not None else ProviderConfig.from_settings(settings)
        self._provider = provider
        self.clock = clock
        self.session_ttl = dt.timedelta(milliseconds=settings.sticker_web_google_session_ttl_ms)
        self.rate_limit = settings.sticker_web_sign_in_rate_limit_per_minute
        self._client_secret = client_key_secret(settings)
        self.site_origin = settings.site_origin.rstrip("/")

    @property
    def provider(self) -> OidcProvider:
        if not self.config.enabled:
            raise SignInDisabled(
                "Sign-in with a provider is off: set STICKER_WEB_GOOGLE_CLIENT_ID (or OIDC_ISSUER_URL and "
                "OIDC_CLIENT_ID)."
            )
        if self._provider is None:
            self._provider = OidcProvider(self.config)
        return self._provider

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()

    # --- rate limit ---------------------------------------------------------------------------
    def note_sign_in_attempt(self, client_address: str) -> None:
        """Count one sign-in attempt for this client; RateLimited (429) once over the budget."""
        now = self.clock()
        key = client_key(client_address, self._client_secret, now.astimezone(dt.UTC).date())
        with self.database.transaction() as connection:
            recent = repo.attempts_since(connection, key, now - RATE_WINDOW)
            if len(recent) >= self.rate_limit:
                blocking = recent[len(recent) - self.rate_limit]
                retry_after = max(1, math.ceil((blocking + RATE_WINDOW - now).total_seconds()))
                raise RateLimited(
                    f"Too many sign-in attempts from this client: at most {self.rate_limit} per minute. "
                    f"Try again in {retry_after} s.",
                    retry_after_seconds=retry_after,
                )
            repo.insert_attempt(connection, key, now)

    # --- sign-in: Google ID token (POST {api}/auth/google/session) -----------------------------
    def sign_in_with_id_token(
        self, id_token: object, *, nonce: object = None, client_address: str
    ) -> IssuedSession:
        provider = self.provider
        if not isinstance(id_token, str) or not id_token.strip():
            raise SignInInvalid("Send the provider's credential as `google_id_token` in the JSON body.")
        if nonce is not None and not isinstance(nonce, str):
            raise SignInInvalid("`nonce` must be a string.")
        self.note_sign_in_attempt(client_address)
        identity = provider.verify_id_token(id_token.strip(), expected_nonce=nonce or None)
        return self.sign_in_identity(identity, auth_method="google_id_token")

    # --- sign-in: authorization-code flow --------------------------------------------------------
    def begin_oidc(self, *, next_path: str | None, client_address: str) -> str:
        """The provider's authorization URL for a new login; its state, nonce and PKCE verifier are
        kept (state as a digest) until the callback or OIDC_STATE_TTL."""
        provider = self.provider
        self.note_sign_in_attempt(client_address)
        state, nonce, verifier = new_token(), new_token(), new_token()
        url = provider.authorization_url(
            redirect_uri=self.redirect_uri, state=state, nonce=nonce, code_verifier=verifier
        )
        now = self.clock()
        with self.database.transaction() as connection:
            repo.insert_oidc_state(
                connection,
                {
                    "state_hash": token_hash(state),
                    "nonce": nonce,
                    "code_verifier": verifier,
                    "next_path": safe_next_path(next_path),
                    "created_at": now,
                    "expires_at": now + OIDC_STATE_TTL,
                },
            )
        return url

    def complete_oidc(
        self, *, state: str | None, code: str | None, client_address: str
    ) -> tuple[IssuedSession, str | None]:
        """Finish a login at the callback: the state must be one this server issued and unused."""
        provider = self.provider
        self.note_sign_in_attempt(client_address)
        state_value = clean_token(state)
        if state_value is None:
            raise SignInInvalid("The sign-in answer has no valid `state`; start the sign-in again.")
        if not code or len(code) > 2048:
            raise SignInInvalid("The sign-in answer has no authorization `code`; start the sign-in again.")
        now = self.clock()
        with self.database.transaction() as connection:
            pending = repo.take_oidc_state(connection, token_hash(state_value))
        if pending is None or pending["expires_at"] <= now:
            raise SignInInvalid(
                "This sign-in was not started here, was already used or has expired; start it again."
            )
        id_token = provider.exchange_code(
            code=code, redirect_uri=self.redirect_uri, code_verifier=pending["code_verifier"]
        )
        identity = provider.verify_id_token(id_token, expected_nonce=pending["nonce"])
        return self.sign_in_identity(identity, auth_method="oidc"), pending["next_path"]

    @property
    def redirect_uri(self) -> str:
        return self.site_origin + OIDC_CALLBACK_PATH

    # --- sign-in: one-time links (`omnizap accounts login-link`) -------------------------------
    def create_login_link(self, owner: str, *, ttl_seconds: int | None = None) -> LoginLink:
        owner_jid = normalize_owner_jid(owner)
        ttl = dt.timedelta(seconds=ttl_seconds or self.settings.sticker_web_login_link_ttl_seconds)
        if ttl <= dt.timedelta(0) or ttl > dt.timedelta(days=7):
            raise InvalidInput("The link's lifetime must be between 1 second and 7 days.")
        token, now = new_token(), self.clock()
        with self.database.transaction() as connection:
            repo.insert_login_token(
                connection,
                {
                    "token_hash": token_hash(token),
                    "owner_jid": owner_jid,
                    "created_at": now,
                    "expires_at": now + ttl,
                },
            )
        url = f"{self.site_origin}{LOGIN_LINK_PATH}?{urllib.parse.urlencode({'token': token})}"
        return LoginLink(url=url, owner_jid=owner_jid, expires_at=now + ttl)

    def redeem_login_link(self, token: str | None, *, client_address: str) -> IssuedSession:
        self.note_sign_in_attempt(client_address)
        value = clean_token(token)
        unusable = SignInInvalid(
            "This sign-in link is not valid, was already used or has expired; ask for a new one."
        )
        if value is None:
            raise unusable
        digest, now = token_hash(value), self.clock()
        with self.database.transaction() as connection:
            row = repo.login_token_by_hash(connection, digest)
            if row is None or not same_secret(row["token_hash"], digest):
                raise unusable
            if row["used_at"] is not None or row["expires_at"] <= now:
                raise unusable
            if not repo.mark_login_token_used(connection, digest, now):
                raise unusable
            return self._sign_in_owner(connection, row["owner_jid"], now)

    def _sign_in_owner(self, connection: Connection, owner_jid: str, now: dt.datetime) -> IssuedSession:
        account = repo.account_by_owner(connection, owner_jid)
        if account is None:
            account_id = repo.insert_account(connection, {"owner_jid": owner_jid, "last_login_at": now})
            account = repo.account_by_id(connection, account_id)
            assert account is not None
        return self._open_session(connection, account, subject=None, auth_method="login_link", now=now)

    # --- the common end of every sign-in --------------------------------------------------------
    def sign_in_identity(
        self, identity: VerifiedIdentity, *, auth_method: str, owner_jid: str | None = None
    ) -> IssuedSession:
        """Find or make the account for `identity` and open its only session.

        `owner_jid` links the identity to that owner's account (the WhatsApp link proof, checked by
        the caller); without it the account found by (issuer, subject) is used, or a new one."""
        now = self.clock()
        with self.database.transaction() as connection:
            if owner_jid is not None:
                owner_jid = normalize_owner_jid(owner_jid)
                account = repo.account_by_owner(connection, owner_jid)
            else:
                account = repo.account_by_subject(connection, identity.issuer, identity.subject)
                if account is None:
                    owner_jid = owner_for_identity(identity, google=self.config.is_google)
                    account = repo.account_by_owner(connection, owner_jid)
            profile = {
                "oidc_issuer": identity.issuer,
                "oidc_subject": identity.subject,
                "email": identity.email,
                "email_verified": 1 if identity.email_verified else 0,
                "display_name": identity.name,
                "picture_url": identity.picture,
                "last_login_at": now,
            }
            if account is None:
                assert owner_jid is not None
                account_id = repo.insert_account(connection, {"owner_jid": owner_jid, **profile})
            else:
                account_id = account["id"]
                repo.detach_subject(connection, identity.issuer, identity.subject, account_id)
                repo.update_account(connection, account_id, profile)
            account = repo.account_by_id(connection, account_id)
            assert account is not None
            return self._open_session(
                connection, account, subject=identity.subject, auth_method=auth_method, now=now
            )

    def _open_session(
        self,
        connection: Connection,
        account: Mapping[str, Any],
        *,
        subject: str | None,
        auth_method: str,
        now: dt.datetime,
    ) -> IssuedSession:
        """Ban check, then drop the account's other sessions and insert the new one. Raising here
        rolls the whole sign-in back: a banned person gets no account changes and no session."""
        ban = repo.active_ban_for(
            connection,
            owner_jid=account["owner_jid"],
            email=account.get("email"),
            subject=subject or account.get("oidc_subject"),
            now=now,
        )
        if ban is not None:
            raise AccountBanned()
        repo.delete_sessions_of(connection, account_id=account["id"], owner_jid=account["owner_jid"])
        token = new_token()
        values = {
            "session_token_hash": token_hash(token),
            "account_id": account["id"],
            "google_sub": subject or account.get("oidc_subject"),
            "owner_jid": account["owner_jid"],
            "email": account.get("email"),
            "name": account.get("display_name"),
            "picture": account.get("picture_url"),
            "auth_method": auth_method,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + self.session_ttl,
        }
        repo.insert_session(connection, values)
        repo.prune_expired(connection, now, now - RATE_WINDOW * 10)
        session = Session.from_row({**values, "oidc_issuer": account.get("oidc_issuer")})
        return IssuedSession(
            token=token, session=session, max_age_seconds=int(self.session_ttl.total_seconds())
        )

    # --- sessions ---------------------------------------------------------------------------------
    def session_for(self, tokens: Iterable[str]) -> Session | None:
        """The active session among the cookie values (the original tried each one), else None.

        Unknown, malformed, expired and banned tokens are all just "anonymous"; expired and banned
        sessions are deleted on the way."""
        now = self.clock()
        for candidate in tokens:
            value = clean_token(candidate)
            if value is None:
                continue
            digest = token_hash(value)
            with self.database.read() as connection:
                row = repo.session_by_hash(connection, digest)
            if row is None or not same_secret(row["session_token_hash"], digest):
                continue
            if row["expires_at"] <= now or self._banned(row, now):
                with self.database.transaction() as connection:
                    repo.delete_sessions_by_hash(connection, [digest])
                continue
            if now - row["last_seen_at"] >= TOUCH_INTERVAL:
                with self.database.transaction() as connection:
                    repo.touch_session(connection, digest, now)
            return Session.from_row(row)
        return None

    def _banned(self, row: Mapping[str, Any], now: dt.datetime) -> bool:
        with self.database.read() as connection:
            ban = repo.active_ban_for(
                connection,
                owner_jid=row["owner_jid"],
                email=row.get("email") or row.get("account_email"),
                subject=row.get("google_sub") or row.get("oidc_subject"),
                now=now,
            )
        return ban is not None

    def sign_out(self, tokens: Iterable[str]) -> int:
        """Delete every session named by the cookie values (http §7.2 DELETE)."""
        digests = [token_hash(value) for value in (clean_token(token) for token in tokens) if value]
        with self.database.transaction() as connection:
            return repo.delete_sessions_by_hash(connection, digests)

    # --- shapes -----------------------------------------------------------------------------------
    def session_data(self, session: Session | None) -> dict[str, Any]:
        if session is None:
            return anonymous_session_data(self.config.provider_name)
        return session_data(session, self._provider_name(session))

    def _provider_name(self, session: Session) -> str:
        if session.subject is None:
            return "link"
        return "google" if self.config.is_google else "oidc"

    def me(self, session: Session | None, *, include_auto: bool = False) -> dict[str, Any]:
        auth = {
            "google": {
                "enabled": self.config.enabled,
                "required": self.config.enabled,
                "client_id": self.config.client_id or None,
            }
        }
        if session is None:
            return me_data(auth, self.session_data(None), None, [], [], self.settings, engagement={})
        owner_jids = [session.owner_jid]
        if session.subject and self.config.is_google:
            legacy = owner_for_identity(
                VerifiedIdentity(self.config.issuer, session.subject, None, False, None, None), google=True
            )
            if legacy not in owner_jids:
                owner_jids.append(legacy)
        from omnizap.catalog.repository import engagement_rows

        with self.database.read() as connection:
            packs = repo.owner_packs(connection, owner_jids)
            if not include_auto:
                packs = [pack for pack in packs if not pack.get("is_auto_pack")]
            engagement = engagement_rows(connection, [pack["id"] for pack in packs]) if packs else {}
        return me_data(
            auth, self.session_data(session), session.owner_jid, owner_jids, packs, self.settings, engagement
        )

    # --- bans (CLI now, the moderation panel later) -----------------------------------------------
    def ban(
        self,
        *,
        owner: str | None = None,
        email: str | None = None,
        subject: str | None = None,
        reason: str = "",
        expires_in: dt.timedelta | None = None,
        created_by: str | None = None,
    ) -> int:
        """Ban by any of owner, e-mail or OIDC subject; their sessions end at their next request
        (and are deleted now when the owner is given)."""
        owner_jid = normalize_owner_jid(owner) if owner else None
        email_value = email.strip().lower() if email else None
        subject_value = subject.strip() if subject else None
        if not (owner_jid or email_value or subject_value):
            raise InvalidInput("Name who to ban: --owner, --email or --subject.")
        if email_value is not None and ("@" not in email_value or len(email_value) > 255):
            raise InvalidInput(f"invalid e-mail address {email!r}")
        if subject_value is not None and not 0 < len(subject_value) <= 255:
            raise InvalidInput("The subject must be 1 to 255 characters.")
        now = self.clock()
        with self.database.transaction() as connection:
            ban_id = repo.insert_ban(
                connection,
                {
                    "owner_jid": owner_jid,
                    "email": email_value,
                    "oidc_subject": subject_value,
                    "reason": (reason or "")[:500],
                    "created_by": (created_by or None) and created_by[:120],
                    "created_at": now,
                    "expires_at": now + expires_in if expires_in else None,
                },
            )
            if owner_jid is not None:
                connection.execute(repo.sessions.delete().where(repo.sessions.c.owner_jid == owner_jid))
        return ban_id

    def unban(self, ban_id: int) -> bool:
        with self.database.transaction() as connection:
            return repo.revoke_ban(connection, ban_id, self.clock())

    def list_bans(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        with self.database.read() as connection:
            return repo.list_bans(connection, now=self.clock(), include_inactive=include_inactive)
