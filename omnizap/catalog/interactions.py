"""Opens, likes and dislikes of packs (http §4, pipeline §5), deduplicated and rate-limited.

- **Viewer**: an `X-Viewer-Key`/`viewer_key` the client chose, else the anonymous first-party cookie
  the server issued. Keys outside `[a-zA-Z0-9._:@-]{1,120}` are ignored (never cut or stripped into
  some other viewer's key); the request then falls back to the cookie.
- **Dedupe**: one open per (pack, viewer) per STICKER_INTERACTION_DEDUPE_WINDOW_SECONDS. Likes and
  dislikes are one vote per (pack, viewer) per window: repeating it is not counted; switching moves
  the vote (the old counter −1, the new +1). After the window a new vote counts again.
- **Rate limit**: at most STICKER_INTERACTION_RATE_LIMIT_PER_MINUTE counted interactions per client
  (HMAC of the client address, never the address) in any 60 s, counted in the shared database so
  every process enforces the same budget.
- **One transaction**: counters, the `sticker_pack_interaction_event` row and the ENGAGEMENT_RECORDED
  outbox event commit together. The transaction first takes the client's lock (its slot in
  `platform_lock_slot`), then the pack's engagement row lock (an upsert): interactions of one client
  (with any pack) and interactions with one pack are serialised, so the rate check sees every
  earlier counted interaction of the client and the dedupe check every earlier one with the pack,
  on all three engines. Every writer takes the two locks in that order, so they cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from omnizap.catalog.visibility import reachable_condition
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput, PackNotFound, StickerPackError
from omnizap.core.packs.rules import public_pack_key
from omnizap.platform.db import Database
from omnizap.platform.db.engine import upsert
from omnizap.platform.db.locks import INTERACTION_CLIENT, lock_key
from omnizap.platform.db.schema import sticker_pack, sticker_pack_engagement, sticker_pack_interaction_event
from omnizap.platform.db.types import utcnow
from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED, publish_event

INTERACTIONS = ("open", "like", "dislike")
VOTES = ("like", "dislike")
DEFAULT_SOURCE = "web"
VIEWER_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:@-]{1,120}$")
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9._:@-]{1,32}$")
VIEWER_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
COOKIE_ACTOR_PREFIX = "cookie:"
RATE_LIMIT_WINDOW = dt.timedelta(seconds=60)
_COUNTER_COLUMN = {"open": "open_count", "like": "like_count", "dislike": "dislike_count"}
_CLIENT_KEY_LABEL = b"omnizap interaction client key\x00"

events = sticker_pack_interaction_event
engagement_table = sticker_pack_engagement


class RateLimited(StickerPackError):
    """The client used its interaction budget; `retry_after_seconds` says when one slot frees up."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after_seconds})
        self.retry_after_seconds = retry_after_seconds


# --- identity ---------------------------------------------------------------------------------------


def clean_viewer_key(value: str | None) -> str | None:
    """The key when it is made only of `[a-zA-Z0-9._:@-]` and at most 120 long, else None (ignored)."""
    if value is None or not VIEWER_KEY_PATTERN.match(value):
        return None
    return value


def clean_source(value: str | None) -> str:
    if value is None or not SOURCE_PATTERN.match(value):
        return DEFAULT_SOURCE
    return value


def clean_viewer_token(value: str | None) -> str | None:
    """A viewer cookie value this server could have issued, else None (the caller issues a new one)."""
    if value is None or not VIEWER_TOKEN_PATTERN.match(value):
        return None
    return value


def new_viewer_token() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 random bits


def client_key_secret(settings: Settings) -> bytes:
    """The HMAC key for client addresses. Every process must use the same one so they share one budget;
    without STICKER_INTERACTION_CLIENT_KEY_SECRET it is derived from DATABASE_URL, which they share."""
    material = settings.sticker_interaction_client_key_secret or settings.database_url
    return hashlib.sha256(_CLIENT_KEY_LABEL + material.encode("utf-8")).digest()


def client_key(address: str, secret: bytes, day: dt.date) -> str:
    """Keyed hash of the client address. The UTC day is part of the message, so stored keys cannot
    link one client's interactions across days."""
    message = f"{day.isoformat()}|{address}".encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Viewer:
    """Who interacts: `actor_key` identifies the viewer for dedupe, `client_key` the client for limits."""

    actor_key: str
    client_key: str
    session_key: str | None = None
    source: str = DEFAULT_SOURCE


@dataclass(frozen=True)
class Identification:
    viewer: Viewer
    issue_cookie: str | None  # a new viewer token to hand the client, when it needs one


def identify_viewer(
    *,
    viewer_key: str | None,
    cookie_token: str | None,
    session_key: str | None,
    source: str | None,
    client_address: str,
    secret: bytes,
    now: dt.datetime,
) -> Identification:
    """The viewer of one request: its own key if valid, else its cookie if valid, else a new cookie."""
    issue_cookie = None
    actor_key = clean_viewer_key(viewer_key)
    if actor_key is None:
        token = clean_viewer_token(cookie_token)
        if token is None:
            token = issue_cookie = new_viewer_token()
        actor_key = COOKIE_ACTOR_PREFIX + token
    viewer = Viewer(
        actor_key=actor_key,
        client_key=client_key(client_address, secret, now.astimezone(dt.UTC).date()),
        session_key=clean_viewer_key(session_key),
        source=clean_source(source),
    )
    return Identification(viewer, issue_cookie)


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Engagement:
    open_count: int
    like_count: int
    dislike_count: int
    updated_at: dt.datetime | None

    @property
    def score(self) -> int:
        return self.like_count - self.dislike_count

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> Engagement:
        if row is None:
            return cls(0, 0, 0, None)
        return cls(
            open_count=int(row["open_count"]),
            like_count=int(row["like_count"]),
            dislike_count=int(row["dislike_count"]),
            updated_at=row["updated_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "open_count": self.open_count,
            "like_count": self.like_count,
            "dislike_count": self.dislike_count,
            "score": self.score,
            "updated_at": self.updated_at.isoformat() if self.updated_at is not None else None,
        }


@dataclass(frozen=True)
class InteractionResult:
    pack_id: str
    pack_key: str
    interaction: str
    counted: bool
    engagement: Engagement
    moved_from: str | None = None  # the vote this one replaced within the window
    event_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The API's `data` object (http §4, plus `counted`)."""
        return {
            "pack_key": self.pack_key,
            "interaction": self.interaction,
            "counted": self.counted,
            "engagement": self.engagement.to_dict(),
        }


# --- the service ------------------------------------------------------------------------------------


class InteractionService:
    """Records interactions. `clock` is injectable so tests can step past windows without sleeping."""

    def __init__(
        self, database: Database, settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.secret = client_key_secret(settings)
        self.dedupe_window = dt.timedelta(seconds=settings.sticker_interaction_dedupe_window_seconds)
        self.rate_limit = settings.sticker_interaction_rate_limit_per_minute

    def identify(
        self,
        *,
        viewer_key: str | None,
        cookie_token: str | None,
        session_key: str | None,
        source: str | None,
        client_address: str,
    ) -> Identification:
        return identify_viewer(
            viewer_key=viewer_key,
            cookie_token=cookie_token,
            session_key=session_key,
            source=source,
            client_address=client_address,
            secret=self.secret,
            now=self.clock(),
        )

    def record(self, pack_key: str, interaction: str, viewer: Viewer) -> InteractionResult:
        """Count the interaction unless this viewer already did it within the window.

        Raises PackNotFound (not reachable), RateLimited (client over budget), InvalidInput.
        """
        if interaction not in INTERACTIONS:
            raise InvalidInput(f"Unknown interaction {interaction[:20]!r}; use open, like or dislike.")
        key = public_pack_key(pack_key)
        # Cheap refusals first, without taking the pack's lock: unknown packs and clients over budget.
        with self.database.read() as connection:
            pack_id = _reachable_pack_id(connection, key)
            if pack_id is None:
                raise PackNotFound("Pack not found; it may be private, unpublished or deleted.")
            self._check_rate(connection, viewer.client_key, self.clock())
        with self.database.transaction() as connection:
            # The locks come first: on MySQL the snapshot of later reads starts after them, and on
            # PostgreSQL every later statement sees what the previous holder committed. The client's
            # lock makes its count-then-insert atomic across packs; the pack's, the dedupe.
            lock_key(connection, INTERACTION_CLIENT, viewer.client_key)
            _lock_engagement_row(connection, pack_id)
            now = self.clock()
            if _reachable_pack_id(connection, key) != pack_id:
                raise PackNotFound("Pack not found; it may be private, unpublished or deleted.")
            previous = self._previous_in_window(connection, pack_id, interaction, viewer.actor_key, now)
            if previous == interaction:
                return InteractionResult(pack_id, key, interaction, False, _engagement(connection, pack_id))
            self._check_rate(connection, viewer.client_key, now)
            moved_from = previous if previous in VOTES else None
            _add_to_counters(connection, pack_id, interaction, moved_from, now)
            event_id = _insert_event(connection, pack_id, interaction, viewer, now)
            payload: dict[str, Any] = {"action": interaction, "pack_id": pack_id, "event_id": event_id}
            if moved_from is not None:
                payload["moved_from"] = moved_from
            publish_event(
                connection,
                event_type=ENGAGEMENT_RECORDED,
                aggregate_type="sticker_pack",
                aggregate_id=pack_id,
                payload=payload,
                # One key per recorded interaction (the original's default key made this event
                # deliverable once per pack and action, ever).
                idempotency_key=f"engagement_recorded:{pack_id}:{event_id}",
            )
            return InteractionResult(
                pack_id, key, interaction, True, _engagement(connection, pack_id), moved_from, event_id
            )

    # --- checks ---------------------------------------------------------------------------------
    def _previous_in_window(
        self, connection: Connection, pack_id: str, interaction: str, actor_key: str, now: dt.datetime
    ) -> str | None:
        """The viewer's latest counted interaction of the same kind (open, or any vote) in the window."""
        kinds = VOTES if interaction in VOTES else (interaction,)
        query = (
            sa.select(events.c.interaction)
            .where(
                events.c.pack_id == pack_id,
                events.c.interaction.in_(kinds),
                events.c.actor_key == actor_key,
                events.c.created_at > now - self.dedupe_window,
            )
            .order_by(events.c.created_at.desc(), events.c.id.desc())
            .limit(1)
        )
        return connection.execute(query).scalar_one_or_none()

    def _check_rate(self, connection: Connection, client: str, now: dt.datetime) -> None:
        since = now - RATE_LIMIT_WINDOW
        in_window = sa.and_(events.c.client_key == client, events.c.created_at > since)
        used = connection.execute(
            sa.select(sa.func.count()).select_from(events).where(in_window)
        ).scalar_one()
        if used < self.rate_limit:
            return
        # A slot frees up when the row that keeps the count at the limit leaves the window.
        oldest_blocking = connection.execute(
            sa.select(events.c.created_at)
            .where(in_window)
            .order_by(events.c.created_at.asc())
            .offset(int(used) - self.rate_limit)
            .limit(1)
        ).scalar_one_or_none()
        wait = (oldest_blocking + RATE_LIMIT_WINDOW - now).total_seconds() if oldest_blocking else 1
        retry_after = max(1, math.ceil(wait))
        raise RateLimited(
            f"Too many interactions from this client: at most {self.rate_limit} per minute. "
            f"Try again in {retry_after} s.",
            retry_after_seconds=retry_after,
        )


# --- SQL --------------------------------------------------------------------------------------------


def _reachable_pack_id(connection: Connection, pack_key: str) -> str | None:
    query = sa.select(sticker_pack.c.id).where(sticker_pack.c.pack_key == pack_key, reachable_condition())
    return connection.execute(query).scalar_one_or_none()


def _lock_engagement_row(connection: Connection, pack_id: str) -> None:
    """Create the pack's counters row if missing and hold its write lock until the transaction ends.

    An upsert whose update leaves the row as it is: it locks the existing row exclusively on every
    engine (unlike INSERT IGNORE, which takes a shared lock on MySQL and would deadlock two writers).
    """
    now = utcnow()
    statement = upsert(
        connection.dialect.name,
        engagement_table,
        {"pack_id": pack_id, "created_at": now, "updated_at": now},
        conflict_columns=["pack_id"],
        update={"open_count": engagement_table.c.open_count},
    )
    connection.execute(statement)


def _add_to_counters(
    connection: Connection, pack_id: str, interaction: str, moved_from: str | None, now: dt.datetime
) -> None:
    column = engagement_table.c[_COUNTER_COLUMN[interaction]]
    values: dict[str, Any] = {column.name: column + 1, "last_interacted_at": now, "updated_at": now}
    if interaction == "open":
        values["last_opened_at"] = now
    if moved_from is not None:
        old = engagement_table.c[_COUNTER_COLUMN[moved_from]]
        values[old.name] = sa.case((old > 0, old - 1), else_=0)
    connection.execute(engagement_table.update().where(engagement_table.c.pack_id == pack_id).values(values))


def _insert_event(
    connection: Connection, pack_id: str, interaction: str, viewer: Viewer, now: dt.datetime
) -> int:
    result = connection.execute(
        events.insert().values(
            pack_id=pack_id,
            interaction=interaction,
            actor_key=viewer.actor_key,
            session_key=viewer.session_key,
            source=viewer.source,
            client_key=viewer.client_key,
            created_at=now,
        )
    )
    return int(result.inserted_primary_key[0])


def _engagement(connection: Connection, pack_id: str) -> Engagement:
    row = (
        connection.execute(sa.select(engagement_table).where(engagement_table.c.pack_id == pack_id))
        .mappings()
        .first()
    )
    return Engagement.from_row(row)
