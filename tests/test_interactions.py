"""Interactions (open, like, dislike): dedupe per viewer, vote moves, rate limit per client, one
transaction with the outbox event, concurrency on every engine, and the HTTP route with hostile input."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from omnizap.catalog.interactions import (
    COOKIE_ACTOR_PREFIX,
    InteractionService,
    RateLimited,
    Viewer,
    clean_viewer_key,
    client_key,
    client_key_secret,
    identify_viewer,
)
from omnizap.config import Settings
from omnizap.core.errors import InvalidInput, PackNotFound
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    domain_event_outbox,
    sticker_pack_engagement,
    sticker_pack_interaction_event,
)
from omnizap.platform.outbox.events import ENGAGEMENT_RECORDED
from omnizap.runtime import Runtime
from omnizap.web.app import create_app

OWNER = "5511999990000@s.whatsapp.net"
START = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)


class SteppingClock:
    """A clock the test moves by hand, so windows are crossed without sleeping."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def make_settings(db: Database, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
        **overrides,
    )


def viewer(name: str, client: str = "client-a") -> Viewer:
    return Viewer(actor_key=name, client_key=client_key(client, b"k" * 32, START.date()))


def counts(db: Database, pack_id: str) -> tuple[int, int, int]:
    with db.read() as connection:
        row = connection.execute(
            sa.select(
                sticker_pack_engagement.c.open_count,
                sticker_pack_engagement.c.like_count,
                sticker_pack_engagement.c.dislike_count,
            ).where(sticker_pack_engagement.c.pack_id == pack_id)
        ).first()
    return tuple(row) if row else (0, 0, 0)


def rows(db: Database, table: sa.Table) -> list[dict[str, Any]]:
    with db.read() as connection:
        return [dict(row) for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings()]


def engagement_events(db: Database) -> list[dict[str, Any]]:
    return [row for row in rows(db, domain_event_outbox) if row["event_type"] == ENGAGEMENT_RECORDED]


@pytest.fixture
def packs(db: Database, tmp_path: Path) -> PackService:
    return PackService(db, make_settings(db, tmp_path))


@pytest.fixture
def public_pack(packs: PackService) -> Any:
    return packs.create_pack(OWNER, "Sunny Cats", visibility="public")


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def service(db: Database, tmp_path: Path, clock: SteppingClock) -> InteractionService:
    return InteractionService(db, make_settings(db, tmp_path), clock=clock)


# --- identity -------------------------------------------------------------------------------------


def test_viewer_keys_outside_the_allowed_set_are_ignored_not_rewritten():
    assert clean_viewer_key("web-3f2a.b:c@d_E") == "web-3f2a.b:c@d_E"
    assert clean_viewer_key("a" * 120) == "a" * 120
    for garbage in ("a" * 121, "a" * 10_000, "abc\x00def", "abc\ndef", "ção", "", "a b", "a/b", None):
        assert clean_viewer_key(garbage) is None


def test_identity_falls_back_to_a_new_cookie_and_reuses_a_valid_one():
    common = dict(session_key=None, source=None, client_address="10.0.0.1", secret=b"s", now=START)
    fresh = identify_viewer(viewer_key="bad key", cookie_token=None, **common)
    assert fresh.issue_cookie is not None
    assert fresh.viewer.actor_key == COOKIE_ACTOR_PREFIX + fresh.issue_cookie
    again = identify_viewer(viewer_key=None, cookie_token=fresh.issue_cookie, **common)
    assert again.issue_cookie is None and again.viewer.actor_key == fresh.viewer.actor_key
    forged = identify_viewer(viewer_key=None, cookie_token="x" * 5000, **common)
    assert forged.issue_cookie is not None and forged.issue_cookie != "x" * 5000
    own = identify_viewer(viewer_key="me-123", cookie_token=fresh.issue_cookie, **common)
    assert own.viewer.actor_key == "me-123" and own.issue_cookie is None
    assert own.viewer.source == "web"


def test_client_key_is_a_keyed_hash_never_the_address():
    key = client_key("203.0.113.9", b"secret", START.date())
    assert "203.0.113.9" not in key and len(key) == 64
    assert key == client_key("203.0.113.9", b"secret", START.date())
    assert key != client_key("203.0.113.9", b"other", START.date())
    assert key != client_key("203.0.113.10", b"secret", START.date())
    assert key != client_key("203.0.113.9", b"secret", START.date() + dt.timedelta(days=1))


def test_client_key_secret_is_shared_by_processes_with_the_same_settings(tmp_path: Path):
    first = Settings(_env_file=None, database_url="sqlite:///x.db", sticker_interaction_client_key_secret="")
    second = Settings(_env_file=None, database_url="sqlite:///x.db")
    configured = Settings(_env_file=None, sticker_interaction_client_key_secret="operator-secret")
    assert client_key_secret(first) == client_key_secret(second)
    assert client_key_secret(first) != client_key_secret(configured)


# --- dedupe and votes -----------------------------------------------------------------------------


def test_repeat_within_the_window_is_not_counted_and_counts_again_after_it(
    db: Database, service: InteractionService, public_pack: Any, clock: SteppingClock
):
    first = service.record(public_pack.pack_key, "open", viewer("ana"))
    assert first.counted and first.engagement.open_count == 1
    clock.advance(1799)
    repeat = service.record(public_pack.pack_key, "open", viewer("ana"))
    assert not repeat.counted and repeat.engagement.open_count == 1
    other = service.record(public_pack.pack_key, "open", viewer("bea"))
    assert other.counted and other.engagement.open_count == 2
    clock.advance(2)  # 1801 s after Ana's first open
    later = service.record(public_pack.pack_key, "open", viewer("ana"))
    assert later.counted and later.engagement.open_count == 3
    assert counts(db, public_pack.id) == (3, 0, 0)
    assert len(rows(db, sticker_pack_interaction_event)) == 3


def test_open_and_like_are_deduplicated_separately(service: InteractionService, public_pack: Any):
    assert service.record(public_pack.pack_key, "open", viewer("ana")).counted
    liked = service.record(public_pack.pack_key, "like", viewer("ana"))
    assert liked.counted
    assert liked.engagement.to_dict() | {"updated_at": None} == {
        "open_count": 1,
        "like_count": 1,
        "dislike_count": 0,
        "score": 1,
        "updated_at": None,
    }


def test_switching_a_vote_within_the_window_moves_it(
    db: Database, service: InteractionService, public_pack: Any, clock: SteppingClock
):
    key = public_pack.pack_key
    assert service.record(key, "like", viewer("ana")).counted
    assert service.record(key, "like", viewer("bea")).counted
    clock.advance(60)
    moved = service.record(key, "dislike", viewer("ana"))
    assert moved.counted and moved.moved_from == "like"
    assert (moved.engagement.like_count, moved.engagement.dislike_count, moved.engagement.score) == (1, 1, 0)
    assert not service.record(key, "dislike", viewer("ana")).counted
    back = service.record(key, "like", viewer("ana"))
    assert back.counted and back.moved_from == "dislike"
    assert counts(db, public_pack.id) == (0, 2, 0)
    clock.advance(1800)  # the window is over: a new vote is a new vote, the old one stays counted
    fresh = service.record(key, "dislike", viewer("ana"))
    assert fresh.counted and fresh.moved_from is None
    assert counts(db, public_pack.id) == (0, 2, 1)
    outbox = engagement_events(db)
    assert [row["payload"].get("moved_from") for row in outbox] == [None, None, "like", "dislike", None]


def test_one_transaction_writes_counter_event_row_and_outbox_event(
    db: Database, service: InteractionService, public_pack: Any
):
    result = service.record(public_pack.pack_key, "like", viewer("ana"))
    [event] = rows(db, sticker_pack_interaction_event)
    assert event["id"] == result.event_id
    assert (event["interaction"], event["actor_key"], event["source"]) == ("like", "ana", "web")
    assert event["client_key"] == viewer("ana").client_key
    [outbox] = engagement_events(db)
    assert outbox["event_type"] == ENGAGEMENT_RECORDED
    assert (outbox["aggregate_type"], outbox["aggregate_id"]) == ("sticker_pack", public_pack.id)
    assert outbox["payload"] == {"action": "like", "pack_id": public_pack.id, "event_id": event["id"]}
    with db.read() as connection:
        engagement = connection.execute(sa.select(sticker_pack_engagement)).mappings().one()
    assert engagement["last_interacted_at"] is not None and engagement["last_opened_at"] is None


def test_every_recorded_interaction_gets_its_own_outbox_event(
    db: Database, service: InteractionService, public_pack: Any
):
    """The original's key made ENGAGEMENT_RECORDED deliverable once per (pack, action), ever."""
    for name in ("ana", "bea", "caio"):
        service.record(public_pack.pack_key, "like", viewer(name))
    outbox = engagement_events(db)
    assert len(outbox) == 3
    assert len({row["idempotency_key"] for row in outbox}) == 3
    assert all(row["status"] == "pending" for row in outbox)


def test_a_failure_inside_the_transaction_leaves_nothing_behind(
    db: Database, tmp_path: Path, public_pack: Any, monkeypatch: pytest.MonkeyPatch
):
    import omnizap.catalog.interactions as interactions

    def broken_publish(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(interactions, "publish_event", broken_publish)
    service = InteractionService(db, make_settings(db, tmp_path))
    with pytest.raises(RuntimeError):
        service.record(public_pack.pack_key, "like", viewer("ana"))
    assert counts(db, public_pack.id) == (0, 0, 0)
    assert rows(db, sticker_pack_interaction_event) == []
    assert engagement_events(db) == []


# --- reachability -----------------------------------------------------------------------------------


def test_only_reachable_packs_take_interactions(
    db: Database, service: InteractionService, packs: PackService
):
    unlisted = packs.create_pack(OWNER, "Quiet", visibility="unlisted")
    private = packs.create_pack(OWNER, "Drafts", visibility="private")
    draft = packs.create_pack(OWNER, "Not yet", visibility="public", status="draft")
    deleted = packs.create_pack(OWNER, "Gone", visibility="public")
    packs.delete(OWNER, deleted.pack_key)
    assert service.record(unlisted.pack_key, "like", viewer("ana")).counted
    for pack in (private, draft, deleted):
        with pytest.raises(PackNotFound):
            service.record(pack.pack_key, "like", viewer("ana"))
    for key in ("", "nope-abcde", "x" * 10_000, "../etc-passw", "ção-abcde", "a\x00b-abcde"):
        with pytest.raises(PackNotFound):
            service.record(key, "open", viewer("ana"))
    with pytest.raises(InvalidInput):
        service.record(unlisted.pack_key, "share", viewer("ana"))
    assert len(rows(db, sticker_pack_interaction_event)) == 1


def test_pack_keys_are_matched_case_insensitively(service: InteractionService, public_pack: Any):
    assert (
        service.record(public_pack.pack_key.upper(), "open", viewer("ana")).pack_key == public_pack.pack_key
    )


# --- rate limit ---------------------------------------------------------------------------------------


def test_rate_limit_per_client_with_retry_after(
    db: Database, tmp_path: Path, packs: PackService, clock: SteppingClock
):
    service = InteractionService(
        db, make_settings(db, tmp_path, sticker_interaction_rate_limit_per_minute=3), clock=clock
    )
    first, second = (packs.create_pack(OWNER, name, visibility="public") for name in ("One", "Two"))
    service.record(first.pack_key, "open", viewer("v1"))
    clock.advance(10)
    service.record(second.pack_key, "open", viewer("v2"))
    clock.advance(10)
    service.record(first.pack_key, "like", viewer("v3"))
    clock.advance(5)
    with pytest.raises(RateLimited) as refused:
        service.record(second.pack_key, "like", viewer("v4"))
    assert refused.value.http_status == 429 and refused.value.code == "RATE_LIMITED"
    assert refused.value.retry_after_seconds == 35  # the first interaction leaves the window at +60 s
    # Another client is not affected.
    assert service.record(second.pack_key, "like", viewer("v4", client="client-b")).counted
    clock.advance(35)
    assert service.record(second.pack_key, "like", viewer("v5")).counted
    assert counts(db, first.id) == (1, 1, 0) and counts(db, second.id) == (1, 2, 0)


def test_rate_limit_is_shared_by_separate_processes(db: Database, tmp_path: Path, public_pack: Any):
    """Two services with their own engines (as two worker processes would have) share one budget."""
    settings = make_settings(db, tmp_path, sticker_interaction_rate_limit_per_minute=4)
    other_database = Database(db.url.render_as_string(hide_password=False), pool_size=2)
    try:
        workers = [InteractionService(db, settings), InteractionService(other_database, settings)]
        identified = [
            worker.identify(
                viewer_key=f"viewer-{n}",
                cookie_token=None,
                session_key=None,
                source=None,
                client_address="198.51.100.7",
            )
            for n, worker in enumerate(workers)
        ]
        assert identified[0].viewer.client_key == identified[1].viewer.client_key
        for n in range(4):
            worker = workers[n % 2]
            assert worker.record(
                public_pack.pack_key, "open", Viewer(f"v{n}", identified[0].viewer.client_key)
            )
        for worker in workers:
            with pytest.raises(RateLimited):
                worker.record(public_pack.pack_key, "open", Viewer("v9", identified[0].viewer.client_key))
    finally:
        other_database.dispose()
    assert counts(db, public_pack.id) == (4, 0, 0)


# --- concurrency ------------------------------------------------------------------------------------


def run_together(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(i)` in `count` threads released at the same moment; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = action(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_likes_from_different_viewers_all_count(
    db: Database, service: InteractionService, public_pack: Any
):
    service.record(public_pack.pack_key, "open", viewer("someone-else"))  # the counters row exists
    results = run_together(8, lambda n: service.record(public_pack.pack_key, "like", viewer(f"viewer-{n}")))
    assert all(result.counted for result in results)
    assert counts(db, public_pack.id) == (1, 8, 0)
    assert len(rows(db, sticker_pack_interaction_event)) == 9
    assert len(engagement_events(db)) == 9


def test_concurrent_identical_likes_from_one_viewer_count_once(
    db: Database, service: InteractionService, public_pack: Any
):
    service.record(public_pack.pack_key, "open", viewer("someone-else"))  # the counters row exists
    results = run_together(8, lambda n: service.record(public_pack.pack_key, "like", viewer("same-viewer")))
    assert sum(result.counted for result in results) == 1
    assert all(result.engagement.like_count == 1 for result in results if not result.counted)
    assert counts(db, public_pack.id) == (1, 1, 0)
    assert len(rows(db, sticker_pack_interaction_event)) == 2
    assert len(engagement_events(db)) == 2


def test_concurrent_first_interactions_on_a_pack_without_counters_row(
    db: Database, service: InteractionService, packs: PackService
):
    """The counters row does not exist yet: creating it concurrently must neither fail nor lose counts."""
    created = [packs.create_pack(OWNER, f"Pack {n}", visibility="public") for n in range(3)]
    results = run_together(
        9,
        lambda n: service.record(
            created[n % 3].pack_key, ("open", "like", "dislike")[n // 3], viewer(f"v{n}")
        ),
    )
    assert all(result.counted for result in results)
    for pack in created:
        assert counts(db, pack.id) == (1, 1, 1)


def test_concurrent_likes_from_one_client_stop_exactly_at_its_budget(
    db: Database, tmp_path: Path, packs: PackService, clock: SteppingClock
):
    """80 likes at once from one client address, by different viewers and on different packs: the
    count-and-insert is atomic per client, so exactly the per-minute budget is counted (the lock
    used to be per pack only, and 67-69 of 80 got through on PostgreSQL and MySQL)."""
    targets = [packs.create_pack(OWNER, f"Pack {n}", visibility="public") for n in range(8)]
    # A pool as big as the crowd, so every request really is in flight at once.
    crowd = Database(db.url.render_as_string(hide_password=False), pool_size=40)
    try:
        service = InteractionService(crowd, make_settings(db, tmp_path), clock=clock)

        def like(n: int) -> bool:
            try:
                result = service.record(targets[n % 8].pack_key, "like", viewer(f"viewer-{n}", "one-client"))
            except RateLimited:
                return False
            return result.counted

        counted = run_together(80, like)
    finally:
        crowd.dispose()

    budget = make_settings(db, tmp_path).sticker_interaction_rate_limit_per_minute
    assert sum(counted) == budget == 60
    client = viewer("any", "one-client").client_key
    events = rows(db, sticker_pack_interaction_event)
    assert len([event for event in events if event["client_key"] == client]) == budget
    assert sum(counts(db, pack.id)[1] for pack in targets) == budget


def test_many_viewers_give_exact_counts(db: Database, tmp_path: Path, public_pack: Any):
    service = InteractionService(
        db, make_settings(db, tmp_path, sticker_interaction_rate_limit_per_minute=10_000)
    )
    for n in range(150):
        service.record(public_pack.pack_key, "open", viewer(f"viewer-{n}"))
        service.record(public_pack.pack_key, "open", viewer(f"viewer-{n}"))
        service.record(public_pack.pack_key, "like" if n % 3 else "dislike", viewer(f"viewer-{n}"))
    assert counts(db, public_pack.id) == (150, 100, 50)
    assert len(rows(db, sticker_pack_interaction_event)) == 300


# --- HTTP -------------------------------------------------------------------------------------------

API = "/api/sticker-packs"


@pytest.fixture
def http(db: Database, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Clients of the real web app (`create_app`) over the engine under test, settings overridable."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            runtime = Runtime(make_settings(db, tmp_path, **overrides))
            stack.callback(runtime.close)
            return stack.enter_context(TestClient(create_app(runtime)))

        yield make


def test_http_like_answers_counts_and_dedupes_by_viewer_key(
    http: Callable[..., TestClient], public_pack: Any, db: Database
):
    client = http()
    url = f"{API}/{public_pack.pack_key}/like"
    first = client.post(url, headers={"X-Viewer-Key": "web-viewer-0001", "X-Client-Source": "bot"})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert "set-cookie" not in first.headers  # the client has its own key
    body = first.json()
    assert body["data"]["pack_key"] == public_pack.pack_key
    assert body["data"]["interaction"] == "like"
    assert body["data"]["counted"] is True
    engagement = body["data"]["engagement"]
    assert {key: engagement[key] for key in ("open_count", "like_count", "dislike_count", "score")} == {
        "open_count": 0,
        "like_count": 1,
        "dislike_count": 0,
        "score": 1,
    }
    assert dt.datetime.fromisoformat(engagement["updated_at"]).tzinfo is not None
    repeat = client.post(url + "?viewer_key=web-viewer-0001")
    assert repeat.status_code == 200 and repeat.json()["data"]["counted"] is False
    assert repeat.json()["data"]["engagement"]["like_count"] == 1
    [event] = rows(db, sticker_pack_interaction_event)
    assert (event["actor_key"], event["source"]) == ("web-viewer-0001", "bot")
    assert event["client_key"] and "testclient" not in event["client_key"]


def test_http_without_a_key_the_viewer_gets_a_cookie(http: Callable[..., TestClient], public_pack: Any):
    client = http()
    url = f"{API}/{public_pack.pack_key}/open"
    first = client.post(url)
    assert first.json()["data"]["counted"] is True
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("omnizap_viewer=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/api/sticker-packs" in lowered
    assert "max-age=34560000" in lowered and "secure" not in lowered
    second = client.post(url)  # TestClient sends the cookie back
    assert second.json()["data"]["counted"] is False
    assert "set-cookie" not in second.headers
    https_client = http(site_origin="https://stickers.example")
    assert "secure" in https_client.post(url).headers["set-cookie"].lower()


@pytest.mark.parametrize(
    "forged",
    ["", "short", "x" * 10_000, "abc;def=1", "a\tb" * 10, "../../etc/passwd", "AAAAAAAAAAAAAAAAAAAA==="],
)
def test_http_forged_cookies_are_replaced(http: Callable[..., TestClient], public_pack: Any, forged: str):
    client = http()
    client.cookies.set("omnizap_viewer", forged)
    response = client.post(f"{API}/{public_pack.pack_key}/open")
    assert response.status_code == 200 and response.json()["data"]["counted"] is True
    issued = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert issued != forged and 16 <= len(issued) <= 64


def test_http_garbage_viewer_keys_are_ignored(
    http: Callable[..., TestClient], public_pack: Any, db: Database
):
    client = http()
    url = f"{API}/{public_pack.pack_key}/like"
    for garbage in ("k" * 10_000, "abc\x01def", "a b c", "ção"):
        raw = garbage.encode("utf-8")  # header bytes as a hostile client would send them
        response = client.post(url, headers={"X-Viewer-Key": raw, "X-Session-Key": raw})
        assert response.status_code == 200
    # All four fell back to the same cookie identity: one like.
    assert counts(db, public_pack.id) == (0, 1, 0)
    [event] = rows(db, sticker_pack_interaction_event)
    assert event["actor_key"].startswith(COOKIE_ACTOR_PREFIX) and event["session_key"] is None
    response = client.post(url, params={"viewer_key": "x" * 121})
    assert response.json()["data"]["counted"] is False  # still the cookie viewer


def test_http_unknown_hostile_and_hidden_packs_are_404(
    http: Callable[..., TestClient], packs: PackService, db: Database
):
    client = http()
    private = packs.create_pack(OWNER, "Drafts", visibility="private")
    deleted = packs.create_pack(OWNER, "Gone", visibility="public")
    packs.delete(OWNER, deleted.pack_key)
    for key in ("nope-abcde", "k" * 10_000, private.pack_key, deleted.pack_key, "%00", "..%2F..%2Fx", "ção"):
        response = client.post(f"{API}/{key}/like", headers={"X-Viewer-Key": "viewer-1"})
        assert response.status_code == 404, key
        assert response.json()["error"]["code"] in {"PACK_NOT_FOUND", "NOT_FOUND"}
        assert isinstance(response.json()["error"]["message"], str)
    assert client.post(f"{API}//like").status_code == 404
    assert rows(db, sticker_pack_interaction_event) == []


def test_http_other_methods_are_405(http: Callable[..., TestClient], public_pack: Any, db: Database):
    client = http()
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = client.request(method, f"{API}/{public_pack.pack_key}/like")
        assert response.status_code == 405, method
        assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert "POST" in response.headers["allow"]
    assert rows(db, sticker_pack_interaction_event) == []


def test_http_request_bodies_are_ignored_and_limited(
    http: Callable[..., TestClient], public_pack: Any, db: Database
):
    client = http()
    url = f"{API}/{public_pack.pack_key}/dislike"
    forged = b'{"like_count": 1000000, "viewer_key": "someone-else"}'
    response = client.post(
        url,
        headers={"X-Viewer-Key": "viewer-1", "Content-Type": "application/json"},
        content=forged + b" " * 60_000,
    )
    assert response.status_code == 200 and response.json()["data"]["counted"] is True
    too_large = client.post(url, headers={"X-Viewer-Key": "viewer-2"}, content=b"x" * 1_000_000)
    assert too_large.status_code == 413  # the app's HTTP_MAX_BODY_BYTES, before the route runs
    assert too_large.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert counts(db, public_pack.id) == (0, 0, 1)
    [event] = rows(db, sticker_pack_interaction_event)
    assert event["actor_key"] == "viewer-1"


def test_http_a_counted_like_shows_in_the_pack_detail_at_once(
    http: Callable[..., TestClient], public_pack: Any
):
    """The route tells the catalog service, whose detail cache would otherwise lag for minutes."""
    client = http(sticker_catalog_pack_payload_cache_seconds=1800)
    detail_url = f"{API}/{public_pack.pack_key}"
    assert client.get(detail_url).json()["data"]["engagement"]["like_count"] == 0  # now cached
    client.post(f"{detail_url}/like", headers={"X-Viewer-Key": "viewer-1"})
    assert client.get(detail_url).json()["data"]["engagement"]["like_count"] == 1


def test_http_rate_limit_answers_429_with_retry_after(
    http: Callable[..., TestClient], public_pack: Any, db: Database
):
    client = http(sticker_interaction_rate_limit_per_minute=3)
    url = f"{API}/{public_pack.pack_key}/open"
    for n in range(3):
        assert client.post(url, headers={"X-Viewer-Key": f"viewer-{n}"}).json()["data"]["counted"]
    refused = client.post(url, headers={"X-Viewer-Key": "viewer-9"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert "3 per minute" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert counts(db, public_pack.id) == (3, 0, 0)


def test_http_many_viewers_counts_exact(http: Callable[..., TestClient], public_pack: Any, db: Database):
    client = http(sticker_interaction_rate_limit_per_minute=1000)
    for n in range(60):
        for interaction in ("open", "open", "like", "like"):
            response = client.post(
                f"{API}/{public_pack.pack_key}/{interaction}", headers={"X-Viewer-Key": f"viewer-{n:03d}"}
            )
            assert response.status_code == 200
    body = client.post(f"{API}/{public_pack.pack_key}/open", headers={"X-Viewer-Key": "viewer-000"}).json()
    assert body["data"]["engagement"] | {"updated_at": None} == {
        "open_count": 60,
        "like_count": 60,
        "dislike_count": 0,
        "score": 60,
        "updated_at": None,
    }
