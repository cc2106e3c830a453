"""The chat core's parts on their own: parsing, the shared rate limit (two connections, every engine),
catalogues, login links and their page, retries, the transport registry and the inbox."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from chat_support import chat_settings

from omnizap.accounts.login_link import LoginLinkInvalid, issue_login_link, verify_login_link
from omnizap.chat.context import ChatContext, SendFailed
from omnizap.chat.i18n import LOCALE_DIR, Translator, compile_po, normalize_locale
from omnizap.chat.inbox import accept, idempotency_key
from omnizap.chat.messages import (
    IncomingMessage,
    MediaKind,
    MediaRef,
    MediaUnavailable,
    Reply,
    ReplyNotSupported,
    SentPack,
)
from omnizap.chat.parsing import (
    first_token,
    fold,
    identifier_and_value,
    parse_command,
    pipe_options,
    split_subcommand,
    strip_quotes,
)
from omnizap.chat.ratelimit import RateLimiter
from omnizap.chat.transports import registry
from omnizap.config import Settings
from omnizap.platform.db import Database
from omnizap.platform.db.types import utcnow
from omnizap.runtime import Runtime

OWNER = "5511999990001@s.whatsapp.net"


# --- parsing ------------------------------------------------------------------------------------------
def test_parse_command():
    parsed = parse_command("  /PACK  add Memes ", "/")
    assert parsed is not None and (parsed.name, parsed.args) == ("pack", "add Memes")
    assert parse_command("/st\nbom dia", "/").args == "bom dia"
    assert parse_command("hello /pack", "/") is None
    assert parse_command("/ pack", "/") is None
    assert parse_command("#menu", "#").name == "menu"
    assert parse_command("/menu", "#") is None


def test_argument_helpers():
    assert first_token('"Meus memes" resto aqui') == ("Meus memes", "resto aqui")
    assert first_token("'a b' c") == ("a b", "c")
    assert first_token("memes-abc12 x") == ("memes-abc12", "x")
    assert identifier_and_value('"Meus memes" "Nova descrição"') == ("Meus memes", "Nova descrição")
    assert split_subcommand("ADD Memes | x=1") == ("add", "Memes | x=1")
    assert strip_quotes('"x"') == "x" and strip_quotes('"x') == '"x'
    main, options = pipe_options('"Meus memes 😂" | publisher="Seu Nome" | PUB=x | nada | desc=\'d\' ||')
    assert main == "Meus memes 😂" and options == {"publisher": "Seu Nome", "pub": "x", "desc": "d"}
    assert pipe_options("|" * 100_000) == ("", {})
    assert fold("  Iniciár ") == "iniciar"


# --- rate limit ----------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_rate_limit_fixed_window(db: Database):
    clock = FakeClock()
    limiter = RateLimiter(db, max_actions=2, window_seconds=60, clock=clock)
    assert limiter.hit("console:ana").allowed
    assert limiter.hit("console:ana").allowed
    clock.now += dt.timedelta(seconds=20)
    blocked = limiter.hit("console:ana")
    assert not blocked.allowed and blocked.retry_after_seconds == 40
    assert limiter.hit("console:bia").allowed  # per sender
    clock.now += dt.timedelta(seconds=40)  # the window closed: a new one opens
    assert limiter.hit("console:ana").allowed
    assert limiter.hit("console:ana").allowed
    assert not limiter.hit("console:ana").allowed


def test_rate_limit_is_shared_through_the_database(db: Database):
    """Two connection pools (as two worker processes would have) hammer one sender at once: exactly
    `max_actions` are allowed in total, so the count lives in the database, not in memory."""
    url = db.url.render_as_string(hide_password=False)
    databases = [Database(url, pool_size=4), Database(url, pool_size=4)]
    limiters = [RateLimiter(database, max_actions=7, window_seconds=60) for database in databases]
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        barrier.wait(timeout=30)
        for _ in range(3):
            allowed = limiters[index % 2].hit("whatsapp:someone").allowed
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for database in databases:
            database.dispose()
    assert len(results) == 24 and results.count(True) == 7


# --- catalogues ----------------------------------------------------------------------------------------
def test_portuguese_catalogue_covers_every_message():
    """Every message id in the chat code has a Portuguese text with the same `{fields}`, and the
    shipped .mo is the compiled .po."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent / "omnizap" / "chat"
    used = {
        message for _file, _line, message, _comments, _context in extract_from_dir(root, keywords={"_": None})
    }
    po_path = LOCALE_DIR / "pt_BR" / "LC_MESSAGES" / "omnizap_chat.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle)
    translated = {message.id: message.string for message in catalog if message.id}
    assert used and not used - set(translated), sorted(used - set(translated))[:5]
    field = re.compile(r"\{[a-z_]+\}")
    for message_id in used:
        assert set(field.findall(message_id)) == set(field.findall(translated[message_id])), message_id
        assert translated[message_id].strip(), message_id
    assert compile_po(po_path) == po_path.with_suffix(".mo").read_bytes(), (
        "run pybabel compile (docs/chat.md)"
    )


def test_translator():
    assert Translator("pt_BR")("🧩 Items: {count}", count="1/30") == "🧩 Itens: 1/30"
    assert Translator("en")("🧩 Items: {count}", count="1/30") == "🧩 Items: 1/30"
    assert normalize_locale("PT-br") == "pt_BR" and normalize_locale("english") == "en"
    assert normalize_locale("klingon") is None


# --- login links ---------------------------------------------------------------------------------------
@pytest.fixture
def signed(db_settings: Settings) -> Settings:
    return db_settings.model_copy(
        update={"whatsapp_login_link_secret": "s3cret", "whatsapp_login_link_ttl_seconds": 900}
    )


def link_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_login_link_works_once(db: Database, signed: Settings):
    link = issue_login_link(db, signed, OWNER)
    params = link_params(link.url)
    assert params["wa"] == "5511999990001" and len(params["wa_sig"]) == 64
    assert verify_login_link(db, signed, params, consume=False) == OWNER  # a look does not use it
    assert verify_login_link(db, signed, params, consume=True) == OWNER
    with pytest.raises(LoginLinkInvalid) as again:
        verify_login_link(db, signed, params, consume=True)
    assert again.value.reason == "used"


def test_login_link_refusals(db: Database, signed: Settings):
    now = utcnow()
    params = link_params(issue_login_link(db, signed, OWNER, now=now).url)
    cases = {
        "missing": {"wa": params["wa"]},
        "missing_signature": {key: value for key, value in params.items() if key != "wa_sig"},
        "invalid_signature": {**params, "wa_sig": "0" * 64},
        "invalid": {**params, "wa_n": "zz"},
    }
    for reason, broken in cases.items():
        with pytest.raises(LoginLinkInvalid) as refused:
            verify_login_link(db, signed, broken, consume=True)
        assert refused.value.reason == reason
    # Someone else's number with this link's nonce: the signature no longer matches.
    with pytest.raises(LoginLinkInvalid) as other:
        verify_login_link(db, signed, {**params, "wa": "5511888888888"}, consume=True)
    assert other.value.reason == "invalid_signature"
    with pytest.raises(LoginLinkInvalid) as late:
        verify_login_link(db, signed, params, consume=True, now=now + dt.timedelta(seconds=901))
    assert late.value.reason == "expired"
    # Without a secret the link is unsigned, but the stored nonce still has to match its owner.
    unsigned = signed.model_copy(update={"whatsapp_login_link_secret": ""})
    plain = link_params(issue_login_link(db, unsigned, OWNER).url)
    assert "wa_sig" not in plain
    with pytest.raises(LoginLinkInvalid):
        verify_login_link(db, unsigned, {**plain, "wa": "5511888888888"}, consume=True)
    assert verify_login_link(db, unsigned, plain, consume=True) == OWNER


def test_login_link_concurrent_use_succeeds_once(db: Database, signed: Settings):
    params = link_params(issue_login_link(db, signed, OWNER).url)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def use() -> None:
        barrier.wait(timeout=30)
        try:
            outcomes.append(verify_login_link(db, signed, params, consume=True))
        except LoginLinkInvalid as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes.count(OWNER) == 1 and outcomes.count("used") == 5


def test_login_page(db: Database, signed: Settings):
    from fastapi.testclient import TestClient

    from omnizap.web.app import create_app

    runtime = Runtime(signed)
    runtime.__dict__["database"] = db
    other = issue_login_link(db, signed, "5511777777777@s.whatsapp.net")  # someone else's link
    link = issue_login_link(db, signed, OWNER)
    path_and_query = link.url[link.url.index("/login/") :]
    with TestClient(create_app(runtime)) as client:
        shown = client.get(path_and_query)
        assert shown.status_code == 200 and 'method="post"' in shown.text
        assert shown.headers["cache-control"] == "no-store"
        assert "5511777777777" not in shown.text
        form = link_params(link.url)
        done = client.post("/login/", data=form)
        assert done.status_code == 200 and "5511999990001@s.whatsapp.net" in done.text
        assert "5511777777777" not in done.text
        assert client.post("/login/", data=form).status_code == 400  # used up
        assert "already used" in client.get(path_and_query).text
        forged = client.get("/login/", params={**link_params(other.url), "wa": "5511999990001"})
        assert forged.status_code == 403 and "5511777777777" not in forged.text
        assert client.get("/login/").status_code == 400


# --- retries, registry, inbox ----------------------------------------------------------------------------
class FlakyTransport:
    network = "flaky"

    def __init__(self, download_failures: int = 0, send_failures: int = 0) -> None:
        self.download_failures = download_failures
        self.send_failures = send_failures
        self.sent: list[Reply] = []

    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        if self.download_failures:
            self.download_failures -= 1
            raise MediaUnavailable("timeout")
        return b"data"

    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | None:
        if reply.kind.value == "sticker_pack":
            raise ReplyNotSupported("no packs here")
        if self.send_failures:
            self.send_failures -= 1
            raise ConnectionError("reset")
        self.sent.append(reply)
        return None


@pytest.fixture
def context_for(db: Database, db_settings: Settings, tmp_path: Path) -> Iterator[Any]:
    def build(transport: FlakyTransport, sleeps: list[float]) -> ChatContext:
        settings = chat_settings(db_settings, chat_media_retry_base_seconds=0.5, chat_media_attempts=3)
        message = IncomingMessage(network="flaky", chat_id="c", sender_id="ana", message_id="1")
        runtime = Runtime(settings)
        return ChatContext(message, transport, settings, db, runtime.storage, sleep=sleeps.append)

    yield build


def test_download_and_send_are_retried_with_backoff(context_for: Any):
    sleeps: list[float] = []
    ctx = context_for(FlakyTransport(download_failures=2, send_failures=2), sleeps)
    media = MediaRef(MediaKind.IMAGE, "x")
    assert ctx.download(media, max_bytes=10) == b"data"
    ctx.reply("oi")
    assert sleeps == [0.5, 1.0, 0.5, 1.0] and [reply.text for reply in ctx.transport.sent] == ["oi"]

    failing = context_for(FlakyTransport(download_failures=5, send_failures=5), sleeps := [])
    with pytest.raises(MediaUnavailable):
        failing.download(media, max_bytes=10)
    with pytest.raises(SendFailed):
        failing.reply("oi")
    assert len(sleeps) == 4  # two waits for each of the two operations, never after the last try
    from omnizap.chat.messages import NativePack, ReplyKind

    with pytest.raises(ReplyNotSupported):  # not retried: the caller falls back at once
        failing.send(Reply(ReplyKind.STICKER_PACK, pack=NativePack("k", "n", "p", ())))
    assert len(sleeps) == 4


def test_registry():
    with pytest.raises(registry.UnknownNetwork):
        registry.build("carrier-pigeon", Settings(_env_file=None))
    transport = FlakyTransport()
    registry.register("flaky", lambda _settings: transport)
    try:
        assert registry.build("flaky", Settings(_env_file=None)) is transport
    finally:
        registry.unregister("flaky")


def test_accept_is_idempotent_per_network_and_message(db: Database):
    message = IncomingMessage(network="whatsapp_cloud", chat_id="c", sender_id="s", message_id="wamid.X")
    assert accept(db, message) is True
    assert accept(db, message) is False
    assert accept(db, IncomingMessage(network="telegram", chat_id="c", sender_id="s", message_id="wamid.X"))
    long_key = idempotency_key("whatsapp_cloud", "m" * 500)
    assert len(long_key) <= 180 and long_key != idempotency_key("whatsapp_cloud", "m" * 499)


def test_console_line_parsing(tmp_path: Path):
    from omnizap.chat.console import ConsoleInputError, parse_line

    (tmp_path / "my cat.png").write_bytes(b"x")
    (tmp_path / "s.webp").write_bytes(b"RIFF")
    text, media, quoted = parse_line('/pack add "Meus memes" @"my cat.png" >@s.webp', tmp_path)
    assert text == '/pack add "Meus memes"'
    assert media is not None and media.kind is MediaKind.IMAGE and media.declared_size == 1
    assert quoted is not None and quoted.kind is MediaKind.STICKER
    assert parse_line("/st don't stop  ", tmp_path) == ("/st don't stop", None, None)
    assert parse_line("mail me a@b.c", tmp_path)[1] is None
    with pytest.raises(ConsoleInputError):
        parse_line("/s @nope.png", tmp_path)


def test_last_sticker_is_remembered_in_the_database(db: Database):
    import uuid

    from omnizap.chat import store
    from omnizap.platform.db.schema import sticker_asset

    def add_asset(created: dt.datetime) -> str:
        asset_id = str(uuid.uuid4())
        row = {
            "id": asset_id,
            "owner_jid": OWNER,
            "sha256": uuid.uuid4().hex * 2,
            "size_bytes": 10,
            "storage_path": asset_id,
            "created_at": created,
        }
        with db.transaction() as connection:
            connection.execute(sticker_asset.insert().values(row))
        return asset_id

    assert store.last_sticker(db, OWNER) is None
    old = add_asset(utcnow() - dt.timedelta(days=2))
    newest = add_asset(utcnow() - dt.timedelta(days=1))
    assert store.last_sticker(db, OWNER) == newest  # nothing remembered: the newest of theirs
    store.remember_last_sticker(db, OWNER, old)
    assert store.last_sticker(db, OWNER) == old
    store.remember_last_sticker(db, OWNER, newest)  # an upsert, on every engine
    assert store.last_sticker(db, OWNER) == newest
    assert store.last_sticker(db, "someone-else") is None
