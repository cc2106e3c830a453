"""The web pages in a real browser (Debian chromium through Playwright) against a real uvicorn
server running the catalog app on a seeded SQLite database with real sticker files."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import media_factory as mf
import pytest

from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db.migrate import upgrade
from omnizap.runtime import Runtime

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OWNER = "5511988887777@s.whatsapp.net"
BOT_NUMBER = "5511999990000"
BOT_USERNAME = "omnizap_test_bot"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _seed(runtime: Runtime) -> dict[str, Any]:
    """Three packs with real stickers (public, unlisted, private) made through the core services."""
    stickers = StickerService(runtime.database, runtime.storage, runtime.settings)
    packs = PackService(runtime.database, runtime.settings)

    def sticker_ids(first_seed: int, count: int) -> list[str]:
        return [
            stickers.ingest(
                mf.encode_image(mf.graphic_image(320, 320, seed), "PNG"), owner_jid=OWNER
            ).asset.id
            for seed in range(first_seed, first_seed + count)
        ]

    sunny = packs.create_pack(
        OWNER,
        "Sunny Cats",
        publisher="Ana",
        description="Cats in the sun",
        initial_sticker_ids=sticker_ids(10, 5),
    )
    office = packs.create_pack(OWNER, "Office Memes", publisher="Bea", initial_sticker_ids=sticker_ids(20, 3))
    unlisted = packs.create_pack(
        OWNER, "Quiet Corner", publisher="Caio", visibility="unlisted", initial_sticker_ids=sticker_ids(30, 2)
    )
    private = packs.create_pack(
        OWNER,
        "Private Drafts",
        publisher="Caio",
        visibility="private",
        initial_sticker_ids=sticker_ids(40, 2),
    )
    # The sets `/pack send` on Telegram recorded: Sunny's is current, Office's predates a change,
    # the private pack's must never show up publicly.
    from omnizap.chat.transports.telegram_sets import SetEntry, SetRecord, StickerSetRepository, set_name_for

    telegram_sets = StickerSetRepository(runtime.database)
    for pack, behind in ((sunny, 0), (office, 1), (private, 0)):
        record = SetRecord(
            pack.pack_key,
            set_name_for(pack.pack_key, BOT_USERNAME),
            7,
            pack.version - behind,
            (SetEntry("0" * 64, "AgAD"),),
        )
        telegram_sets.save(record, pack_id=pack.id)
    return {"sunny": sunny, "office": office, "unlisted": unlisted, "private": private}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    web_app = pytest.importorskip(
        "omnizap.web.app", reason="the catalog web app is not part of this tree yet"
    )
    import uvicorn

    folder = tmp_path_factory.mktemp("web-pages")
    port = _free_port()
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{folder / 'omnizap.db'}",
        sticker_storage_dir=folder / "stickers",
        sticker_pack_auto_collect_enabled=False,
        site_origin=f"http://127.0.0.1:{port}",
        whatsapp_bot_number="+55 11 99999-0000",
        command_prefix="!",
        http_access_log=False,  # the server thread outlives each test's output capture
    )
    runtime = Runtime(settings)
    upgrade(runtime.database)
    packs = _seed(runtime)
    server = uvicorn.Server(
        uvicorn.Config(web_app.create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", packs=packs)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing: run `make system-deps` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (new localStorage, so a new viewer) that fails on console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and "404" not in message.text
            else None
        ),
    )
    yield opened
    context.close()
    assert problems == [], problems


def _sticker_images_loaded(page: Any) -> list[int]:
    return page.eval_on_selector_all(".sticker-grid img", "images => images.map(image => image.naturalWidth)")


def test_search_finds_a_pack_and_opens_it(site: SimpleNamespace, page: Any):
    from playwright.sync_api import expect

    page.goto(site.url + "/stickers")
    page.get_by_label("Search", exact=True).fill("sunny")
    page.get_by_label("Search", exact=True).press("Enter")
    page.wait_for_url("**/stickers?q=sunny*")
    results = page.locator("#results")
    expect(results.get_by_role("link", name="Sunny Cats")).to_be_visible()
    expect(results.get_by_role("link", name="Office Memes")).to_have_count(0)
    results.get_by_role("link", name="Sunny Cats").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sunny Cats")


def test_pack_page_shows_its_stickers_and_they_load(site: SimpleNamespace, page: Any):
    from playwright.sync_api import expect

    page.goto(f"{site.url}/stickers/{site.packs['sunny'].pack_key}")
    page.wait_for_load_state("networkidle")
    images = page.locator(".sticker-grid img")
    expect(images).to_have_count(5)
    widths = _sticker_images_loaded(page)
    assert len(widths) == 5 and all(width > 0 for width in widths), widths
    for index in range(5):
        assert images.nth(index).get_attribute("alt"), "every sticker has alt text"


def test_like_counts_once_per_viewer(site: SimpleNamespace, page: Any, browser: Any):
    from playwright.sync_api import expect

    url = f"{site.url}/stickers/{site.packs['office'].pack_key}"
    page.goto(url)
    like = page.locator("button[data-interaction=like]")
    count = like.locator("[data-count=like_count]")
    before = int(count.inner_text().replace(",", ""))
    like.click()
    expect(count).to_have_text(str(before + 1))
    expect(like).to_have_attribute("aria-pressed", "true")
    like.click()  # a second click from the same viewer
    expect(page.locator("#interaction-status")).to_contain_text("already")
    page.reload()
    expect(page.locator("button[data-interaction=like] [data-count=like_count]")).to_have_text(
        str(before + 1)
    )

    # Another browser (another viewer key) adds its own like: the counter works, it is deduplicated.
    other = browser.new_context()
    try:
        second = other.new_page()
        second.goto(url)
        second.locator("button[data-interaction=like]").click()
        expect(second.locator("button[data-interaction=like] [data-count=like_count]")).to_have_text(
            str(before + 2)
        )
    finally:
        other.close()


def test_home_lists_public_packs_only(site: SimpleNamespace, page: Any):
    page.goto(site.url + "/")
    text = page.locator("main").inner_text()
    assert "Sunny Cats" in text
    assert "Quiet Corner" not in text and "Private Drafts" not in text


def test_unlisted_is_reachable_by_link_but_not_listed_and_private_is_404(site: SimpleNamespace, page: Any):
    from playwright.sync_api import expect

    page.goto(site.url + "/stickers")
    expect(page.locator("#results").get_by_role("link", name="Quiet Corner")).to_have_count(0)
    expect(page.locator("#results").get_by_role("link", name="Private Drafts")).to_have_count(0)
    response = page.goto(f"{site.url}/stickers/{site.packs['unlisted'].pack_key}")
    assert response is not None and response.status == 200
    response = page.goto(f"{site.url}/stickers/{site.packs['private'].pack_key}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Pack not found")


def test_keyboard_users_can_skip_to_content(site: SimpleNamespace, page: Any):
    page.goto(site.url + "/stickers")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to content"


def test_api_docs_render_from_local_files_only(site: SimpleNamespace, page: Any):
    """Swagger UI comes from the installed wheel: every request stays on this server, none is blocked."""
    from playwright.sync_api import expect

    foreign: list[str] = []
    page.on(
        "request", lambda request: None if request.url.startswith(site.url) else foreign.append(request.url)
    )
    page.goto(site.url + "/api-docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("OmniZap")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert foreign == []


def test_whatsapp_download_from_the_pack_page_is_a_valid_pack(
    site: SimpleNamespace, page: Any, tmp_path: Path
):
    import json
    import zipfile

    page.goto(f"{site.url}/stickers/{site.packs['sunny'].pack_key}")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download .zip").click()
    saved = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(saved)
    assert saved.name.endswith(".zip")
    with zipfile.ZipFile(saved) as archive:
        contents = json.loads(archive.read("contents.json"))
        stickers = contents["sticker_packs"][0]["stickers"]
        assert len(stickers) == 5
        assert all(archive.read(sticker["image_file"])[8:12] == b"WEBP" for sticker in stickers)

    # A 2-sticker pack cannot go to WhatsApp: the page says why instead of offering the file.
    page.goto(f"{site.url}/stickers/{site.packs['unlisted'].pack_key}")
    assert page.get_by_role("link", name="Download .zip").count() == 0
    assert "at least 3 stickers" in page.locator("main").inner_text()


def test_pack_page_offers_the_ways_onto_a_phone(site: SimpleNamespace, page: Any):
    from playwright.sync_api import expect

    from omnizap.chat.transports.telegram_sets import set_name_for

    sunny = site.packs["sunny"].pack_key
    page.goto(f"{site.url}/stickers/{sunny}")
    ways = page.get_by_role("region", name="Get this pack")
    whatsapp = ways.get_by_role("link", name="Send to my WhatsApp")
    expect(whatsapp).to_have_attribute("href", f"https://wa.me/{BOT_NUMBER}?text=%21pack%20send%20{sunny}")
    expect(ways.locator("[data-get=whatsapp] .hint")).to_contain_text(f"!pack send {sunny} already typed")
    telegram = ways.get_by_role("link", name="Add to Telegram")
    expect(telegram).to_have_attribute(
        "href", f"https://t.me/addstickers/{set_name_for(sunny, BOT_USERNAME)}"
    )
    expect(ways.locator("[data-get=telegram]")).not_to_contain_text("may be older")
    expect(ways.locator("[data-get=download] .hint")).to_contain_text(
        "for .wastickers importer apps on Android. WhatsApp itself does not open this file."
    )
    for link in (whatsapp, telegram, ways.get_by_role("link", name="Download .zip")):
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["height"] >= 44, box  # a comfortable tap target

    # A set synced before the pack's last change is linked, with a note.
    office = site.packs["office"].pack_key
    page.goto(f"{site.url}/stickers/{office}")
    expect(page.locator("[data-get=telegram] .stale")).to_be_visible()
    expect(page.locator("[data-get=telegram] .stale")).to_contain_text("may be older")


def test_private_packs_telegram_set_is_nowhere_public(site: SimpleNamespace, page: Any):
    import json
    import urllib.error
    import urllib.request

    from omnizap.chat.transports.telegram_sets import set_name_for

    private = site.packs["private"].pack_key
    secret = set_name_for(private, BOT_USERNAME)
    seen: list[str] = []
    public_paths = ["/", "/stickers", "/stickers?q=private", "/sitemap.xml", "/api/sticker-packs"]
    public_paths += ["/api/sticker-packs/intents", f"/api/sticker-packs/{private}", f"/stickers/{private}"]
    for path in public_paths:
        try:
            with urllib.request.urlopen(site.url + path) as answer:
                seen.append(answer.read().decode())
        except urllib.error.HTTPError as error:
            assert error.code == 404, (path, error.code)
            seen.append(error.read().decode())
    for key in ("sunny", "office", "unlisted"):
        with urllib.request.urlopen(f"{site.url}/api/sticker-packs/{site.packs[key].pack_key}") as answer:
            seen.append(json.dumps(json.loads(answer.read())))
        page.goto(f"{site.url}/stickers/{site.packs[key].pack_key}")
        seen.append(page.content())
    assert secret not in "\n".join(seen)
    assert any("t.me/addstickers/" in text for text in seen)  # the public sets did show up
