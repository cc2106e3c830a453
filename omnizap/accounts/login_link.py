"""WhatsApp → web login links (chat §7), one use each.

The bot answers the login trigger with `<origin><WHATSAPP_LOGIN_PATH>?wa=<owner>&wa_ts=<unix>&wa_n=<nonce>
&wa_sig=<hex>`. Unlike the original's stateless hint, the nonce is stored (`chat_login_nonce`) and the
web side consumes it, so a link signs in once: a forwarded or leaked link is worthless after use.
`wa` is the phone digits for a WhatsApp user JID and the owner handle otherwise (a LID is never
taken for a phone number). `wa_sig` = HMAC-SHA256(WHATSAPP_LOGIN_LINK_SECRET, "<wa>.<ts>.<nonce>");
without a secret the link is unsigned but the 128-bit nonce still makes it unguessable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.schema import chat_login_nonce
from omnizap.platform.db.types import utcnow

_PHONE_JID = re.compile(r"^(\d{10,15})@s\.whatsapp\.net$")
_NONCE = re.compile(r"^[a-f0-9]{32}$")
HINT_MAX = 255

REASON_MESSAGES = {
    "missing": 'Open this page through the link sent on WhatsApp: send "iniciar" to the bot in private.',
    "expired": 'Login link expired. Send "iniciar" again.',
    "used": 'This login link was already used. Send "iniciar" again for a new one.',
    "missing_signature": 'Unauthorized login attempt; get a new link by sending "iniciar" in private.',
    "invalid_signature": 'Unauthorized login attempt; get a new link by sending "iniciar" in private.',
    "invalid": "Invalid login link.",
}


class LoginLinkInvalid(Exception):
    """The link cannot sign anyone in; `reason` is one of REASON_MESSAGES' keys."""

    def __init__(self, reason: str) -> None:
        super().__init__(REASON_MESSAGES.get(reason, REASON_MESSAGES["invalid"]))
        self.reason = reason


@dataclass(frozen=True)
class LoginLink:
    url: str
    owner_jid: str
    expires_at: dt.datetime


def login_hint(owner_jid: str) -> str:
    """What `wa` carries: the digits of a phone JID, else the owner id itself."""
    match = _PHONE_JID.match(owner_jid)
    return match.group(1) if match else owner_jid


def owner_from_hint(hint: str) -> str:
    return f"{hint}@s.whatsapp.net" if hint.isdigit() else hint


def _signature(secret: str, hint: str, timestamp: int, nonce: str) -> str:
    message = f"{hint}.{timestamp}.{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _origin(settings: Settings) -> str:
    return (settings.whatsapp_login_base_url or settings.site_origin).rstrip("/")


def issue_login_link(
    database: Database, settings: Settings, owner_jid: str, *, now: dt.datetime | None = None
) -> LoginLink:
    """A fresh one-time link for `owner_jid`, valid WHATSAPP_LOGIN_LINK_TTL_SECONDS."""
    now = now or utcnow()
    nonce = secrets.token_hex(16)
    expires = now + dt.timedelta(seconds=settings.whatsapp_login_link_ttl_seconds)
    with database.transaction() as connection:
        # Expired nonces are useless; each issue sweeps a few so the table stays small.
        stale = (
            sa.select(chat_login_nonce.c.nonce)
            .where(chat_login_nonce.c.expires_at < now - dt.timedelta(days=1))
            .limit(100)
        )
        old = [row[0] for row in connection.execute(stale)]
        if old:
            connection.execute(chat_login_nonce.delete().where(chat_login_nonce.c.nonce.in_(old)))
        connection.execute(
            chat_login_nonce.insert().values(
                nonce=nonce, owner_jid=owner_jid, expires_at=expires, created_at=now
            )
        )
    hint = login_hint(owner_jid)
    timestamp = int(now.timestamp())
    query = {"wa": hint, "wa_ts": str(timestamp), "wa_n": nonce}
    if settings.whatsapp_login_link_secret:
        query["wa_sig"] = _signature(settings.whatsapp_login_link_secret, hint, timestamp, nonce)
    url = f"{_origin(settings)}{settings.whatsapp_login_path}?{urllib.parse.urlencode(query)}"
    return LoginLink(url, owner_jid, expires)


def verify_login_link(
    database: Database,
    settings: Settings,
    params: Mapping[str, str],
    *,
    consume: bool,
    now: dt.datetime | None = None,
) -> str:
    """The owner the link signs in, or LoginLinkInvalid. With `consume` the link is used up
    atomically: of two concurrent uses exactly one succeeds."""
    now = now or utcnow()
    hint = str(params.get("wa") or "").strip()
    raw_ts = str(params.get("wa_ts") or "").strip()
    nonce = str(params.get("wa_n") or "").strip().lower()
    signature = str(params.get("wa_sig") or "").strip().lower()
    if not hint or not raw_ts or not nonce:
        raise LoginLinkInvalid("missing")
    if len(hint) > HINT_MAX or not raw_ts.isdigit() or len(raw_ts) > 12 or not _NONCE.match(nonce):
        raise LoginLinkInvalid("invalid")
    timestamp = int(raw_ts)
    if abs(now.timestamp() - timestamp) > settings.whatsapp_login_link_ttl_seconds:
        raise LoginLinkInvalid("expired")
    secret = settings.whatsapp_login_link_secret
    if secret:
        if not signature:
            raise LoginLinkInvalid("missing_signature")
        if not hmac.compare_digest(signature, _signature(secret, hint, timestamp, nonce)):
            raise LoginLinkInvalid("invalid_signature")
    owner = owner_from_hint(hint)
    table = chat_login_nonce
    live = sa.and_(
        table.c.nonce == nonce,
        table.c.owner_jid == owner,
        table.c.consumed_at.is_(None),
        table.c.expires_at > now,
    )
    with database.transaction() as connection:
        if consume:
            taken = connection.execute(
                table.update().where(live).values(consumed_at=now).execution_options(preserve_rowcount=True)
            ).rowcount
            if taken:
                return owner
        elif connection.execute(sa.select(table.c.nonce).where(live)).first() is not None:
            return owner
        row = connection.execute(
            sa.select(table.c.owner_jid, table.c.consumed_at).where(table.c.nonce == nonce)
        ).first()
    if row is not None and row[0] == owner and row[1] is not None:
        raise LoginLinkInvalid("used")
    if row is not None and row[0] == owner:
        raise LoginLinkInvalid("expired")
    raise LoginLinkInvalid("invalid")
