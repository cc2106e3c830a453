"""Accounts and sign-in end to end (every database engine): the OpenID Connect code flow through the
web app against a real fake provider on loopback (PKCE, state, nonce), Google-ID-token sign-in,
sessions in the database (hashed tokens, one per account, expiry, tampering), sign-out, `/me`,
the `/user` page, one-time sign-in links, bans, the sign-in rate limit and the CSRF guard."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes.oidc_provider import FakeOidcProvider
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey

from omnizap.accounts.service import AccountService, safe_next_path
from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import (
    sticker_web_account,
    sticker_web_google_session,
    sticker_web_login_token,
    sticker_web_oidc_state,
)
from omnizap.platform.db.types import utcnow
from omnizap.runtime import Runtime
from omnizap.web.app import create_app
from omnizap.web.http.csrf import is_same_origin, normalized_origin

ORIGIN = "http://stickers.test"
API = "/api/sticker-packs"
SESSION_PATH = f"{API}/auth/google/session"
COOKIE = "omnizap_google_session"
SAME_ORIGIN = {"Origin": ORIGIN}
OWNER = "5511977776666@s.whatsapp.net"
OTHER_OWNER = "5511955554444@s.whatsapp.net"


class Clock:
    """A settable clock for the account service (expiry without sleeping)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def provider() -> Iterator[FakeOidcProvider]:
    fake = FakeOidcProvider(redirect_uris=(ORIGIN + "/login/oidc/callback",)).start()
    yield fake
    fake.stop()


def make_site(db: Database, tmp_path: Path, provider: FakeOidcProvider | None, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "database_url": db.url.render_as_string(hide_password=False),
        "sticker_storage_dir": tmp_path / "stickers",
        "sticker_pack_auto_collect_enabled": False,
        "site_origin": ORIGIN,
        "sticker_web_sign_in_rate_limit_per_minute": 1000,  # one test checks the limit itself
    }
    if provider is not None:
        values.update(
            oidc_issuer_url=provider.issuer,
            oidc_client_id=provider.client_id,
            oidc_client_secret=provider.client_secret,
        )
    values.update(overrides)
    settings = Settings(_env_file=None, **values)
    runtime = Runtime(settings)
    app = create_app(runtime)
    clock = Clock()
    service = AccountService(runtime.database, settings, clock=clock)
    app.state.account_service = service
    return SimpleNamespace(app=app, runtime=runtime, settings=settings, clock=clock, service=service)


@pytest.fixture
def site(db: Database, tmp_path: Path, provider: FakeOidcProvider) -> Iterator[Any]:
    built = make_site(db, tmp_path, provider)
    built.client = TestClient(built.app, base_url=ORIGIN)
    yield built
    built.service.close()
    built.runtime.close()


def browser(site: Any) -> TestClient:
    """Another browser (its own cookie jar) on the same app."""
    return TestClient(site.app, base_url=ORIGIN)


def start_flow(client: TestClient, provider: FakeOidcProvider, next_path: str | None = None) -> str:
    """Start a sign-in in `client` and let the provider approve it: the callback URL it redirects to."""
    params = {"next": next_path} if next_path else {}
    start = client.get("/login/oidc/start", params=params, follow_redirects=False)
    assert start.status_code == 302, start.text
    location = start.headers["location"]
    assert location.startswith(provider.issuer + "/authorize?")
    approved = httpx.get(location, follow_redirects=False, timeout=10)  # real loopback
    assert approved.status_code == 302, approved.text
    callback = approved.headers["location"]
    assert callback.startswith(ORIGIN + "/login/oidc/callback?")
    return callback


def sign_in(client: TestClient, provider: FakeOidcProvider) -> httpx.Response:
    return client.get(start_flow(client, provider), follow_redirects=False)


def session_rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(sticker_web_google_session)).mappings()]


def all_text_in(db: Database, tables: list[sa.Table]) -> str:
    with db.engine.connect() as connection:
        return repr([list(connection.execute(sa.select(table)).all()) for table in tables])


def me(client: TestClient) -> dict[str, Any]:
    response = client.get(f"{API}/me")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    return response.json()["data"]


# --- the code flow ------------------------------------------------------------------------------------


@pytest.mark.engines
def test_code_flow_signs_in_with_pkce_state_and_nonce(site, provider, db):
    response = sign_in(site.client, provider)
    assert response.status_code == 303
    assert response.headers["location"] == "/user"
    cookie_header = next(
        value for value in response.headers.get_list("set-cookie") if value.startswith(COOKIE + "=")
    )
    attributes = [part.strip().lower() for part in cookie_header.split(";")]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "max-age=604800" in attributes
    assert "secure" not in attributes  # SITE_ORIGIN is http here
    token = site.client.cookies.get(COOKIE)
    assert token

    # PKCE S256, state and nonce went out; the verifier came back at the token endpoint.
    authorize = provider.authorize_requests[-1]
    assert authorize["code_challenge_method"] == "S256" and authorize["nonce"] and authorize["state"]
    assert provider.token_requests[-1]["code_verifier"]

    # Only the token's digest is stored; the login state is gone.
    rows = session_rows(db)
    assert [row["session_token_hash"] for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    tables = [sticker_web_google_session, sticker_web_account, sticker_web_oidc_state]
    assert token not in all_text_in(db, tables)
    with db.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(sticker_web_oidc_state)).scalar() == 0
        )

    data = me(site.client)
    session = data["session"]
    assert session["authenticated"] is True and session["provider"] == "oidc"
    assert session["user"] == {
        "sub": "user-123",
        "email": "ana@example.org",
        "name": "Ana Test",
        "picture": "https://example.org/ana.png",
    }
    assert session["owner_phone"] is None
    assert data["owner_jid"].endswith("@oidc.oauth") and data["owner_jids"] == [data["owner_jid"]]
    assert data["stats"]["total"] == 0 and data["packs"] == []
    assert data["auth"]["google"] == {"enabled": True, "required": True, "client_id": provider.client_id}

    page = site.client.get("/user")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Ana Test" in page.text and "ana@example.org" in page.text and "Sign out" in page.text
    assert token not in page.text


@pytest.mark.engines
def test_next_path_is_followed_only_when_it_stays_on_this_site(site, provider):
    callback = start_flow(site.client, provider, next_path="/stickers?q=cats")
    assert site.client.get(callback, follow_redirects=False).headers["location"] == "/stickers?q=cats"
    other = browser(site)
    callback = start_flow(other, provider, next_path="//evil.example/steal")
    assert other.get(callback, follow_redirects=False).headers["location"] == "/user"


def test_safe_next_path_refuses_other_origins():
    assert safe_next_path("/user") == "/user"
    for hostile in (
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "",
        None,
    ):
        assert safe_next_path(hostile) is None


@pytest.mark.engines
def test_one_active_session_per_account(site, provider, db):
    first, second = browser(site), browser(site)
    assert sign_in(first, provider).status_code == 303
    assert sign_in(second, provider).status_code == 303
    assert me(second)["session"]["authenticated"] is True
    assert me(first)["session"]["authenticated"] is False  # replaced by the newer sign-in
    assert len(session_rows(db)) == 1


# --- refused code flows: no session, clear 4xx --------------------------------------------------------


def assert_refused_page(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert words in response.text
    assert not any(value.startswith(COOKIE + "=") for value in response.headers.get_list("set-cookie"))


@pytest.mark.engines
@pytest.mark.parametrize(
    ("override", "words"),
    [
        ({"aud": "someone-else"}, "another application (aud)"),
        ({"exp": int(time.time()) - 3600}, "expired (exp)"),
        ({"iss": "https://issuer.invalid"}, "(iss)"),
        ({"nonce": "not-the-one-we-sent"}, "nonce does not match"),
        ({"email_verified": False}, "not verified"),
    ],
)
def test_code_flow_refuses_bad_id_tokens(site, provider, db, override, words):
    provider.id_token_overrides = override
    response = sign_in(site.client, provider)
    assert_refused_page(response, 403 if "verified" in words else 401, words)
    assert session_rows(db) == []
    assert me(site.client)["session"]["authenticated"] is False


@pytest.mark.engines
def test_wrong_or_foreign_state_is_refused(site, provider, db):
    callback = start_flow(site.client, provider)
    parts = urllib.parse.urlsplit(callback)
    query = dict(urllib.parse.parse_qsl(parts.query))
    forged = f"/login/oidc/callback?{urllib.parse.urlencode({**query, 'state': 'A' * 43})}"
    assert_refused_page(site.client.get(forged, follow_redirects=False), 400, "not started in this browser")
    # The real callback URL opened in another browser (login CSRF): no login cookie there.
    stranger = browser(site)
    assert_refused_page(stranger.get(callback, follow_redirects=False), 400, "not started in this browser")
    assert session_rows(db) == []


@pytest.mark.engines
def test_replayed_callback_and_replayed_code_are_refused(site, provider, db):
    callback = start_flow(site.client, provider)
    assert site.client.get(callback, follow_redirects=False).status_code == 303
    first_hash = session_rows(db)[0]["session_token_hash"]
    # Same URL again: its state was used.
    replay = browser(site)
    replay.cookies.set("omnizap_oidc_login", dict(urllib.parse.parse_qsl(callback.split("?", 1)[1]))["state"])
    assert_refused_page(replay.get(callback, follow_redirects=False), 400, "already used")
    # The old code with a fresh state of this browser: the provider refuses the used code.
    fresh = dict(urllib.parse.parse_qsl(start_flow(site.client, provider).split("?", 1)[1]))
    old_code = dict(urllib.parse.parse_qsl(callback.split("?", 1)[1]))["code"]
    mixed = f"/login/oidc/callback?{urllib.parse.urlencode({'code': old_code, 'state': fresh['state']})}"
    assert_refused_page(site.client.get(mixed, follow_redirects=False), 401, "invalid_grant")
    assert [row["session_token_hash"] for row in session_rows(db)] == [first_hash]


@pytest.mark.engines
def test_code_from_another_login_fails_pkce(site, provider, db):
    """A code obtained for another PKCE challenge (code injection) is refused by the verifier check."""
    mine = dict(urllib.parse.parse_qsl(start_flow(site.client, provider).split("?", 1)[1]))
    theirs = dict(urllib.parse.parse_qsl(start_flow(browser(site), provider).split("?", 1)[1]))
    injected = (
        f"/login/oidc/callback?{urllib.parse.urlencode({'code': theirs['code'], 'state': mine['state']})}"
    )
    response = site.client.get(injected, follow_redirects=False)
    assert_refused_page(response, 401, "invalid_grant")
    assert provider.token_requests[-1]["code_verifier"]  # sent, but not the one for that challenge
    assert session_rows(db) == []


def test_fake_provider_requires_the_pkce_verifier(provider):
    """The fake enforces PKCE like a real provider: no verifier, no token."""
    url = (
        provider.issuer
        + "/authorize?"
        + urllib.parse.urlencode(
            {
                "client_id": provider.client_id,
                "redirect_uri": provider.redirect_uris[0],
                "response_type": "code",
                "scope": "openid",
                "state": "s",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            }
        )
    )
    code = dict(urllib.parse.parse_qsl(httpx.get(url).headers["location"].split("?", 1)[1]))["code"]
    answer = httpx.post(
        provider.issuer + "/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": provider.redirect_uris[0]},
        auth=(provider.client_id, provider.client_secret),
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    no_pkce = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    del no_pkce["code_challenge"]
    assert httpx.get(provider.issuer + "/authorize?" + urllib.parse.urlencode(no_pkce)).status_code == 400


@pytest.mark.engines
def test_provider_error_and_missing_code_are_clear(site, provider, db):
    start_flow(site.client, provider)
    cancelled = site.client.get("/login/oidc/callback?error=access_denied&state=x", follow_redirects=False)
    assert_refused_page(cancelled, 400, "access_denied")
    callback = dict(urllib.parse.parse_qsl(start_flow(site.client, provider).split("?", 1)[1]))
    no_code = site.client.get(f"/login/oidc/callback?state={callback['state']}", follow_redirects=False)
    assert_refused_page(no_code, 400, "authorization `code`")
    assert session_rows(db) == []


# --- POST {api}/auth/google/session with an ID token --------------------------------------------------


def post_token(client: TestClient, token: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(
        SESSION_PATH, json={"google_id_token": token}, headers=SAME_ORIGIN if headers is None else headers
    )


@pytest.mark.engines
def test_id_token_sign_in_and_sign_out(site, provider, db):
    response = post_token(site.client, provider.sign(provider.claims()))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["authenticated"] is True and data["user"]["sub"] == "user-123"
    assert site.client.get(SESSION_PATH).json()["data"]["authenticated"] is True
    assert session_rows(db)[0]["auth_method"] == "google_id_token"

    out = site.client.delete(SESSION_PATH, headers=SAME_ORIGIN)
    assert out.status_code == 200 and out.json() == {"data": {"cleared": True}}
    assert any(
        value.startswith(COOKIE + '=""') or "max-age=0" in value.lower()
        for value in out.headers.get_list("set-cookie")
    )
    assert session_rows(db) == []
    assert site.client.get(SESSION_PATH).json()["data"] == {
        "authenticated": False,
        "provider": "oidc",
        "user": None,
        "owner_jid": None,
        "owner_phone": None,
        "expires_at": None,
    }


@pytest.mark.engines
def test_logout_route_and_user_page_form(site, provider, db):
    assert post_token(site.client, provider.sign(provider.claims())).status_code == 200
    assert site.client.post(f"{API}/auth/logout", headers=SAME_ORIGIN).json() == {"data": {"cleared": True}}
    assert session_rows(db) == []
    assert post_token(site.client, provider.sign(provider.claims())).status_code == 200
    form = site.client.post("/user/logout", headers={"Referer": ORIGIN + "/user"}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"] == "/user"
    assert session_rows(db) == []
    assert "You are not signed in" in site.client.get("/user").text


def tampered_payload(payload: str) -> str:
    """The same claims with another subject, re-encoded without re-signing."""
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def other_key() -> RSAKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return RSAKey.import_key(pem)


@pytest.mark.engines
def test_id_token_checks(site, provider, db):
    good = provider.sign(provider.claims())
    header, payload, signature = good.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    cases = {
        "tampered signature": (f"{header}.{payload}.{flipped}", 401),
        "tampered payload": (f"{header}.{tampered_payload(payload)}.{signature}", 401),
        "wrong audience": (provider.sign(provider.claims(aud="other-app")), 401),
        "expired": (provider.sign(provider.claims(exp=int(time.time()) - 120)), 401),
        "wrong issuer": (provider.sign(provider.claims(iss="https://accounts.google.com")), 401),
        "other key, same kid": (provider.sign(provider.claims(), key=other_key()), 401),
        "unknown kid": (provider.sign(provider.claims(), key=other_key(), kid="rotated"), 401),
        "not a JWT": ("hello", 401),
        "unverified e-mail": (provider.sign(provider.claims(email_verified=False)), 403),
        "missing": ("", 400),
    }
    for name, (token, status) in cases.items():
        response = post_token(site.client, token)
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"]["message"], name
        assert COOKIE not in response.headers.get("set-cookie", ""), name
    assert session_rows(db) == []
    # The nonce, when the client sends one, must match the token's.
    with_nonce = provider.sign(provider.claims(nonce="n-1"))
    refused = site.client.post(
        SESSION_PATH, json={"google_id_token": with_nonce, "nonce": "n-2"}, headers=SAME_ORIGIN
    )
    assert refused.status_code == 401
    accepted = site.client.post(
        SESSION_PATH, json={"id_token": with_nonce, "nonce": "n-1"}, headers=SAME_ORIGIN
    )
    assert accepted.status_code == 200


@pytest.mark.engines
def test_state_changing_requests_need_this_origin(site, provider, db):
    token = provider.sign(provider.claims())
    for headers in (
        {},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/x"},
    ):
        response = post_token(site.client, token, headers=headers)
        assert response.status_code == 403, headers
        assert response.json()["error"]["code"] == "CSRF_REJECTED"
    assert session_rows(db) == []
    assert post_token(site.client, token, headers={"Referer": ORIGIN + "/login/"}).status_code == 200
    for method, path in (("DELETE", SESSION_PATH), ("POST", f"{API}/auth/logout"), ("POST", "/user/logout")):
        refused = site.client.request(method, path, headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403, path
    assert len(session_rows(db)) == 1  # still signed in


def test_origin_comparison():
    assert normalized_origin("HTTPS://Example.org:443/path") == "https://example.org"
    assert normalized_origin("http://example.org:8080") == "http://example.org:8080"
    assert normalized_origin("null") is None and normalized_origin("ftp://x") is None
    assert is_same_origin({"origin": "https://example.org"}, "https://example.org/")
    assert not is_same_origin({"origin": "https://example.org:8443"}, "https://example.org")
    assert not is_same_origin({"origin": "https://example.org.evil"}, "https://example.org")
    assert is_same_origin({"referer": "https://example.org/user?x=1"}, "https://example.org")
    assert not is_same_origin({"origin": "null", "referer": "https://example.org/"}, "https://example.org")
    assert not is_same_origin({}, "https://example.org")


@pytest.mark.engines
def test_bad_bodies_are_clear(site, provider):
    for body, status in ((b"{not json", 400), (b"[1]", 400), (b"x" * (64 * 1024 + 1), 413)):
        response = site.client.post(SESSION_PATH, content=body, headers=SAME_ORIGIN)
        assert response.status_code == status
        assert response.json()["error"]["message"]


@pytest.mark.engines
def test_sign_in_disabled_without_client_id(db, tmp_path):
    built = make_site(db, tmp_path, None)
    client = TestClient(built.app, base_url=ORIGIN)
    response = client.post(SESSION_PATH, json={"google_id_token": "x"}, headers=SAME_ORIGIN)
    assert response.status_code == 404 and response.json()["error"]["code"] == "SIGN_IN_DISABLED"
    assert client.get(SESSION_PATH).json()["data"]["provider"] == "google"
    assert client.get("/login/oidc/start", follow_redirects=False).status_code == 404
    assert me(client)["auth"]["google"] == {"enabled": False, "required": False, "client_id": None}
    built.runtime.close()


# --- sessions: expiry, tampering, other accounts ------------------------------------------------------


@pytest.mark.engines
def test_expired_tampered_and_unknown_cookies_are_anonymous(site, provider, db):
    assert post_token(site.client, provider.sign(provider.claims())).status_code == 200
    token = site.client.cookies.get(COOKIE)
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "../../etc", token + "=", " " * 50):
        stranger = browser(site)
        stranger.cookies.set(COOKIE, bad)
        data = me(stranger)
        assert data["session"]["authenticated"] is False and data["owner_jid"] is None and data["packs"] == []
    site.clock.advance(days=7, seconds=1)
    assert me(site.client)["session"]["authenticated"] is False
    assert session_rows(db) == []  # the expired session was deleted


@pytest.mark.engines
def test_last_seen_is_written_at_most_every_minute(site, provider, db):
    assert post_token(site.client, provider.sign(provider.claims())).status_code == 200
    created = session_rows(db)[0]["last_seen_at"]
    site.clock.advance(seconds=30)
    me(site.client)
    assert session_rows(db)[0]["last_seen_at"] == created
    site.clock.advance(seconds=31)
    me(site.client)
    assert session_rows(db)[0]["last_seen_at"] == site.clock.now


@pytest.mark.engines
def test_me_lists_only_the_signed_in_owner_packs(site, db):
    packs = PackService(site.runtime.database, site.settings)
    mine = packs.create_pack(OWNER, "My Drafts", visibility="private")
    packs.create_pack(OTHER_OWNER, "Someone Else", visibility="public")
    me_client, other_client = browser(site), browser(site)
    for client, owner in ((me_client, OWNER), (other_client, OTHER_OWNER)):
        link = site.service.create_login_link(owner)
        assert (
            client.get(
                urllib.parse.urlsplit(link.url)._replace(scheme="", netloc="").geturl(),
                follow_redirects=False,
            ).status_code
            == 303
        )
    data = me(me_client)
    assert data["owner_jid"] == OWNER and data["session"]["owner_phone"] == "5511977776666"
    assert [pack["pack_key"] for pack in data["packs"]] == [mine.pack_key]
    assert data["packs"][0]["is_publicly_visible"] is False and data["packs"][0]["cover_url"] is None
    assert data["stats"] == {
        "total": 1,
        "published": 1,
        "drafts": 0,
        "private": 1,
        "unlisted": 0,
        "public": 0,
    }
    page = me_client.get("/user").text
    assert "5511977776666" in page and "5511955554444" not in page
    assert "5511955554444" not in repr(data)
    # What the database holds (digests) does not work as a cookie for anyone.
    for row in session_rows(db):
        thief = browser(site)
        thief.cookies.set(COOKIE, row["session_token_hash"])
        assert me(thief)["owner_jid"] is None


# --- one-time sign-in links ---------------------------------------------------------------------------


def link_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == ORIGIN
    return f"{parts.path}?{parts.query}"


@pytest.mark.engines
def test_login_link_signs_in_once(site, db):
    link = site.service.create_login_link(OWNER, ttl_seconds=120)
    token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link.url).query))["token"]
    assert token not in all_text_in(db, [sticker_web_login_token])
    response = site.client.get(link_path(link.url), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/user"
    assert me(site.client)["owner_jid"] == OWNER
    assert session_rows(db)[0]["auth_method"] == "login_link"
    again = browser(site).get(link_path(link.url), follow_redirects=False)
    assert_refused_page(again, 400, "already used")
    assert len(session_rows(db)) == 1
    assert token not in again.text


@pytest.mark.engines
def test_expired_or_bogus_login_link_is_refused(site, db):
    link = site.service.create_login_link(OWNER, ttl_seconds=60)
    site.clock.advance(seconds=61)
    assert_refused_page(site.client.get(link_path(link.url), follow_redirects=False), 400, "expired")
    for bogus in ("/login/link", "/login/link?token=short", "/login/link?token=" + "A" * 43):
        assert_refused_page(site.client.get(bogus, follow_redirects=False), 400, "not valid")
    assert session_rows(db) == []


# --- bans ---------------------------------------------------------------------------------------------


@pytest.mark.engines
def test_banned_people_get_403_and_no_session(site, provider, db):
    ban_id = site.service.ban(email="ANA@example.org", reason="spam")
    response = post_token(site.client, provider.sign(provider.claims()))
    assert response.status_code == 403 and "blocked" in response.json()["error"]["message"]
    assert_refused_page(sign_in(site.client, provider), 403, "blocked")
    site.service.ban(owner=OWNER)
    link = site.service.create_login_link(OWNER)
    assert_refused_page(site.client.get(link_path(link.url), follow_redirects=False), 403, "blocked")
    assert session_rows(db) == []
    with db.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(sticker_web_account)).scalar() == 0
    assert site.service.unban(ban_id) is True
    assert post_token(site.client, provider.sign(provider.claims())).status_code == 200


@pytest.mark.engines
def test_ban_ends_an_open_session_and_expires(site, provider, db):
    assert post_token(site.client, provider.sign(provider.claims())).status_code == 200
    site.service.ban(subject="user-123", expires_in=dt.timedelta(days=1))
    assert me(site.client)["session"]["authenticated"] is False
    assert session_rows(db) == []
    site.clock.advance(days=1, seconds=1)
    assert [ban["oidc_subject"] for ban in site.service.list_bans()] == []
    assert len(site.service.list_bans(include_inactive=True)) == 1
    assert post_token(site.client, provider.sign(provider.claims())).status_code == 200


# --- rate limit ---------------------------------------------------------------------------------------


@pytest.mark.engines
def test_sign_in_attempts_are_rate_limited_per_client(db, tmp_path, provider):
    built = make_site(db, tmp_path, provider, sticker_web_sign_in_rate_limit_per_minute=3)
    client = TestClient(built.app, base_url=ORIGIN)
    bad = provider.sign(provider.claims(aud="nope"))
    assert [post_token(client, bad).status_code for _ in range(3)] == [401, 401, 401]
    limited = post_token(client, provider.sign(provider.claims()))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert session_rows(db) == []
    link = built.service.create_login_link(OWNER)
    assert client.get(link_path(link.url), follow_redirects=False).status_code == 429
    built.clock.advance(seconds=61)
    assert post_token(client, provider.sign(provider.claims())).status_code == 200
    built.service.close()
    built.runtime.close()


# --- CLI ----------------------------------------------------------------------------------------------


@pytest.mark.engines
def test_cli_login_link_and_bans(db, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from omnizap.cli.main import cli
    from omnizap.config import reset_settings_cache

    monkeypatch.setenv("DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SITE_ORIGIN", ORIGIN)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(tmp_path / "stickers"))
    reset_settings_cache()
    runner = CliRunner()
    made = runner.invoke(cli, ["accounts", "login-link", "5511977776666:3@c.us", "--ttl", "60"])
    assert made.exit_code == 0, made.output
    url = made.stdout.strip()
    assert url.startswith(ORIGIN + "/login/link?token=")
    with db.engine.connect() as connection:
        row = connection.execute(sa.select(sticker_web_login_token)).mappings().one()
    assert row["owner_jid"] == OWNER and url.split("token=")[1] not in repr(dict(row))
    assert runner.invoke(cli, ["accounts", "login-link", "bad owner!"]).exit_code == 1

    banned = runner.invoke(cli, ["accounts", "ban", "--owner", OWNER, "--reason", "spam"])
    assert banned.exit_code == 0, banned.output
    listed = runner.invoke(cli, ["accounts", "list"])
    assert OWNER in listed.output and "spam" in listed.output
    ban_id = listed.output.split("\t")[0]
    assert runner.invoke(cli, ["accounts", "unban", ban_id]).exit_code == 0
    assert runner.invoke(cli, ["accounts", "unban", ban_id]).exit_code != 0
    assert runner.invoke(cli, ["accounts", "list"]).output.strip() == "no bans"
    assert runner.invoke(cli, ["accounts", "ban"]).exit_code == 1
    reset_settings_cache()


@pytest.mark.engines
def test_cookie_is_secure_on_an_https_site(db, tmp_path, provider):
    built = make_site(db, tmp_path, provider, site_origin="https://stickers.test")
    client = TestClient(built.app, base_url="https://stickers.test")
    response = client.post(
        SESSION_PATH,
        json={"google_id_token": provider.sign(provider.claims())},
        headers={"Origin": "https://stickers.test"},
    )
    assert response.status_code == 200
    attributes = [part.strip().lower() for part in response.headers["set-cookie"].split(";")]
    assert "secure" in attributes and "httponly" in attributes and "samesite=lax" in attributes
    # The http origin of the same host is another origin.
    refused = client.post(SESSION_PATH, json={}, headers={"Origin": "http://stickers.test"})
    assert refused.status_code == 403
    built.service.close()
    built.runtime.close()


def test_a_wrong_method_names_every_method_of_the_path(site):
    """GET, POST and DELETE of the session path are three routes: a 405 lists them all, not only the
    first route's (Starlette's own Allow header named GET alone)."""
    response = browser(site).request("OPTIONS", "/api/sticker-packs/auth/google/session")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST", "DELETE"}
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
