"""The web pages' server side with a recorded catalog reader: parameters passed to the catalog,
escaping, 404s, headers and static files. The browser tests are in test_web_pages.py."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omnizap.config import Settings
from omnizap.web.pages import router
from omnizap.web.pages.assets import asset_url, static_files
from omnizap.web.pages.source import CatalogUnavailable
from omnizap.web.pages.views import CatalogQuery, clean_query, json_ld, normalize_tag, sticker_alt

EVIL = '<script>alert("x")</script>'


def entry(key: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": key,
        "pack_key": key,
        "name": name,
        "publisher": "Ana",
        "description": "desc",
        "visibility": "public",
        "sticker_count": 3,
        "cover_url": f"/api/sticker-packs/{key}/stickers/s1.webp",
        "web_url": f"/stickers/{key}",
        "engagement": {"open_count": 1, "like_count": 2, "dislike_count": 0, "score": 2},
        "tags": ["cats", "animals"],
        "is_nsfw": False,
        "whatsapp": None,
        **extra,
    }


class RecordingReader:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.packs = [entry("cats-aaaaa", "Cats"), entry("evil-bbbbb", EVIL)]
        self.details: dict[str, dict[str, Any]] = {}
        self.next_offset: int | None = None

    def list_packs(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list_packs", kwargs))
        more = self.next_offset is not None
        return {
            "data": self.packs,
            "pagination": {
                "limit": 24,
                "offset": kwargs["offset"],
                "has_more": more,
                "next_offset": self.next_offset,
            },
        }

    def intents(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("intents", kwargs))
        return {
            "data": {"em_alta": self.packs, "novos": [], "crescendo_agora": [], "mais_curtidos": self.packs}
        }

    def stats(self) -> dict[str, Any]:
        return {"data": {"packs_total": 1234, "stickers_total": 5, "creators_total": 2, "downloads_total": 9}}

    def pack_detail(self, pack_key: str) -> dict[str, Any] | None:
        self.calls.append(("pack_detail", {"pack_key": pack_key}))
        return self.details.get(pack_key)


@pytest.fixture
def reader() -> RecordingReader:
    return RecordingReader()


@pytest.fixture
def client(reader: RecordingReader, tmp_path: Path) -> TestClient:
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        site_origin="https://stickers.example",
        sticker_object_storage_cdn_base_url="https://cdn.example/stickers",
    )
    app = FastAPI()
    app.state.runtime = SimpleNamespace(settings=settings)
    app.state.pages_catalog_reader = reader
    app.include_router(router)
    return TestClient(app)


def assert_safe_html(response: Any) -> None:
    """No inline executable script; the CSP allows scripts from this origin only."""
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    for tag in re.findall(r"<script\b[^>]*>", response.text):
        assert "src=" in tag or 'type="application/ld+json"' in tag, tag
    assert EVIL not in response.text


def test_home_shows_collections_and_stats_escaped(client: TestClient, reader: RecordingReader):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_safe_html(response)
    assert "Popular now" in response.text and "Most liked" in response.text
    assert "Rising now" not in response.text  # empty collections are left out
    assert "1,234" in response.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in response.text
    assert 'href="/stickers?intent=em_alta"' in response.text
    assert ("intents", {"limit": 12}) in reader.calls


def test_catalog_passes_clean_parameters_to_the_catalog(client: TestClient, reader: RecordingReader):
    response = client.get(
        "/stickers",
        params={"q": "  cats\x00 and\tdogs ", "sort": "drop table", "category": "Bom Día!", "offset": "-5"},
    )
    assert response.status_code == 200
    assert_safe_html(response)
    listing = reader.calls[0][1]
    assert listing == {
        "q": "cats and dogs",
        "sort": "",
        "categories": ["bom-dia"],
        "intent": "",
        "limit": 24,
        "offset": 0,
    }
    assert 'value="cats and dogs"' in response.text
    assert '<option value="bom-dia" selected>' in response.text
    assert 'name="robots" content="noindex, follow"' in response.text


def test_catalog_pagination_uses_the_catalogs_next_offset(client: TestClient, reader: RecordingReader):
    reader.next_offset = 61
    response = client.get("/stickers", params={"q": "cat", "offset": "30"})
    assert 'href="/stickers?q=cat&amp;offset=61" rel="next"' in response.text
    assert 'href="/stickers?q=cat&amp;offset=6" rel="prev"' in response.text
    assert reader.calls[0][1]["offset"] == 30


def test_catalog_without_results_says_so(client: TestClient, reader: RecordingReader):
    reader.packs = []
    response = client.get("/stickers", params={"q": EVIL})
    assert response.status_code == 200
    assert "No pack matches" in response.text
    assert_safe_html(response)


def test_pack_page_renders_stickers_with_alt_text_and_share_link(client: TestClient, reader: RecordingReader):
    items = [
        {"sticker_id": "s1", "position": 1, "emojis": ["😺"], "accessibility_label": None,
         "asset_url": "/api/sticker-packs/cats-aaaaa/stickers/s1.webp"},
        {"sticker_id": "s2", "position": 2, "emojis": [], "accessibility_label": "A cat waving",
         "asset_url": "/api/sticker-packs/cats-aaaaa/stickers/s2.webp"},
        {"sticker_id": "s3", "position": 3, "emojis": [], "accessibility_label": None, "asset_url": None},
    ]  # fmt: skip
    whatsapp = {"url": "https://wa.me/5511999999999?text=%2Fpack%20send%20cats-aaaaa"}
    reader.details["cats-aaaaa"] = entry("cats-aaaaa", "Cats", items=items, whatsapp=whatsapp)
    response = client.get("/stickers/cats-aaaaa")
    assert response.status_code == 200
    assert_safe_html(response)
    html = response.text
    assert 'data-pack-key="cats-aaaaa"' in html
    assert 'alt="Sticker 1 of Cats 😺"' in html
    assert 'alt="A cat waving"' in html
    assert "Sensitive sticker hidden" in html
    assert 'value="https://stickers.example/stickers/cats-aaaaa"' in html
    assert 'href="https://wa.me/5511999999999?text=%2Fpack%20send%20cats-aaaaa"' in html
    assert '<link rel="canonical" href="https://stickers.example/stickers/cats-aaaaa">' in html
    assert "img-src 'self' data: https://cdn.example" in response.headers["content-security-policy"]


def test_pack_page_json_ld_cannot_close_its_script(client: TestClient, reader: RecordingReader):
    reader.details["evil-bbbbb"] = entry("evil-bbbbb", "</script><script>alert(1)</script>", items=[])
    response = client.get("/stickers/evil-bbbbb")
    ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', response.text, re.S)
    assert ld is not None
    assert "<" not in ld.group(1)
    assert "\\u003c/script\\u003e" in ld.group(1)


def test_unknown_and_malformed_pack_keys_get_a_404_page(client: TestClient, reader: RecordingReader):
    response = client.get("/stickers/no-such-pack")
    assert response.status_code == 404
    assert "Pack not found" in response.text
    assert 'content="noindex, nofollow"' in response.text
    reader.calls.clear()
    for bad in ["%3Cscript%3E", "a%20b", "x" * 200, "..%2F..%2Fetc"]:
        assert client.get(f"/stickers/{bad}").status_code == 404
    assert reader.calls == []  # refused before asking the catalog


def test_unlisted_pack_is_reachable_but_not_indexed(client: TestClient, reader: RecordingReader):
    reader.details["hidden-ccccc"] = entry("hidden-ccccc", "Hidden", visibility="unlisted", items=[])
    response = client.get("/stickers/hidden-ccccc")
    assert response.status_code == 200
    assert 'name="robots" content="noindex, follow"' in response.text


def test_whatsapp_links_other_than_https_are_dropped(client: TestClient, reader: RecordingReader):
    reader.details["cats-aaaaa"] = entry(
        "cats-aaaaa", "Cats", items=[], whatsapp={"url": "javascript:alert(1)"}
    )
    response = client.get("/stickers/cats-aaaaa")
    assert "javascript:" not in response.text
    assert "Send to my WhatsApp" not in response.text


def test_catalog_outage_is_a_503_page(reader: RecordingReader, client: TestClient):
    def broken(**_: Any) -> Any:
        raise CatalogUnavailable("down")

    reader.intents = broken  # type: ignore[method-assign]
    response = client.get("/")
    assert response.status_code == 503
    assert "Catalog unavailable" in response.text


def test_head_requests_work(client: TestClient):
    assert client.head("/stickers").status_code == 200


# --- static files ---------------------------------------------------------------------------------


def test_static_files_are_versioned_and_cached(client: TestClient):
    url = asset_url("css/pages.css")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert "immutable" in response.headers["cache-control"]
    unversioned = client.get("/static/css/pages.css")
    assert "immutable" not in unversioned.headers["cache-control"]
    again = client.get(url, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert client.get(asset_url("js/pages.js")).headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    ["/static/../routes.py", "/static/%2e%2e/routes.py", "/static/nope.css", "/static/", "/static/css"],
)
def test_static_serves_nothing_outside_its_folder(client: TestClient, path: str):
    assert client.get(path).status_code == 404


def test_every_template_reference_to_a_static_file_exists():
    templates = Path(__file__).resolve().parent.parent / "omnizap" / "web" / "pages" / "templates"
    for template in templates.glob("*.html"):
        for name in re.findall(r"asset\('([^']+)'\)", template.read_text()):
            assert name in static_files(), f"{template.name} uses missing static file {name}"


# --- pure helpers ---------------------------------------------------------------------------------


def test_query_cleaning_and_tag_normalisation():
    assert clean_query("a\x00b\n\nc" + "x" * 300)[:5] == "a b c"
    assert len(clean_query("x" * 300)) == 120
    assert normalize_tag("  Bom Día!! ") == "bom-dia"
    assert normalize_tag("<script>") == "script"
    assert normalize_tag("🔥🔥") == ""
    query = CatalogQuery.from_params({"offset": "999999999", "intent": "EM_ALTA", "sort": "likes"})
    assert (query.offset, query.intent, query.sort) == (100_000, "em_alta", "likes")
    assert CatalogQuery.from_params({"offset": "abc"}).offset == 0


def test_alt_text_and_json_ld_helpers():
    assert sticker_alt("Cats", {"position": 4, "emojis": ["😺", "🐟"]}) == "Sticker 4 of Cats 😺 🐟"
    assert sticker_alt("Cats", {"position": 1, "accessibility_label": "  a   cat "}) == "a cat"
    assert json_ld({"name": "</script>&"}) == '{"name":"\\u003c/script\\u003e\\u0026"}'


def _items(count: int, *, animated: list[bool] | None = None) -> list[dict[str, Any]]:
    flags = animated or [False] * count
    return [
        {
            "sticker_id": f"s{n}",
            "position": n,
            "emojis": [],
            "accessibility_label": None,
            "asset_url": f"/api/sticker-packs/cats-aaaaa/stickers/s{n}.webp",
            "asset": {"is_animated": flags[n - 1]},
        }
        for n in range(1, count + 1)
    ]


def test_pack_page_offers_the_whatsapp_download_only_when_whatsapp_would_take_it(
    client: TestClient, reader: RecordingReader
):
    download = "/api/sticker-packs/cats-aaaaa/download/whatsapp"
    reader.details["cats-aaaaa"] = entry("cats-aaaaa", "Cats", items=_items(3), download_url=download)
    html = client.get("/stickers/cats-aaaaa").text
    assert f'href="{download}" download' in html
    assert 'src="/api/sticker-packs/cats-aaaaa/stickers/s1.webp?size=128"' in html  # small previews
    assert "s1.webp?size=256 2x" in html

    for items, reason in [
        (_items(2), "at least 3 stickers"),
        (_items(3, animated=[True, False, False]), "mix animated and still"),
    ]:
        reader.details["cats-aaaaa"] = entry("cats-aaaaa", "Cats", items=items, download_url=download)
        html = client.get("/stickers/cats-aaaaa").text
        assert download not in html and reason in html


def _phone_ways(client: TestClient, reader: RecordingReader, **extra: Any) -> str:
    reader.details["cats-aaaaa"] = entry("cats-aaaaa", "Cats", items=_items(3), **extra)
    response = client.get("/stickers/cats-aaaaa")
    assert response.status_code == 200
    return response.text


def test_pack_page_sends_to_whatsapp_through_the_bot_chat(client: TestClient, reader: RecordingReader):
    url = "https://wa.me/5511999990000?text=%21pack%20send%20cats-aaaaa"
    html = _phone_ways(
        client, reader, whatsapp={"phone": "5511999990000", "text": "!pack send cats-aaaaa", "url": url}
    )
    assert f'href="{url}"' in html and "Send to my WhatsApp" in html
    assert "<code>!pack send cats-aaaaa</code> already typed" in html
    # No bot number configured: no WhatsApp way, and no empty section either.
    html = _phone_ways(client, reader)
    assert "Send to my WhatsApp" not in html and "wa.me" not in html
    assert "Get this pack" not in html


def test_pack_page_adds_to_telegram_and_flags_an_older_set(client: TestClient, reader: RecordingReader):
    link = "https://t.me/addstickers/cats_aaaaa_by_omnizap_bot"
    html = _phone_ways(client, reader, telegram={"url": link, "is_current": True})
    assert f'href="{link}"' in html and "Add to Telegram" in html
    assert "may be older" not in html
    html = _phone_ways(client, reader, telegram={"url": link, "is_current": False})
    assert f'href="{link}"' in html and "It may be older than this page" in html
    for bad in ({"url": "javascript:alert(1)", "is_current": True}, {"url": "https://evil.example/x"}, "x"):
        html = _phone_ways(client, reader, telegram=bad)
        assert "Add to Telegram" not in html and "evil.example" not in html and "javascript:" not in html
    assert "Add to Telegram" not in _phone_ways(client, reader, telegram=None)


def test_pack_page_says_what_the_zip_is_for(client: TestClient, reader: RecordingReader):
    download = "/api/sticker-packs/cats-aaaaa/download/whatsapp"
    html = _phone_ways(client, reader, download_url=download)
    assert f'href="{download}" download' in html
    assert (
        "for <code>.wastickers</code> importer apps on Android. WhatsApp itself does not open this file."
        in html
    )


def test_pack_context_keeps_only_safe_phone_links():
    from omnizap.web.pages import views

    link = "https://t.me/addstickers/cats_by_bot"
    wa = {
        "url": "https://wa.me/5511999990000?text=%2Fpack%20send%20cats-aaaaa",
        "text": "/pack send cats-aaaaa",
    }
    context = views.pack_context(
        entry("cats-aaaaa", "Cats", items=[], whatsapp=wa, telegram={"url": link, "is_current": False}), ""
    )
    assert context["whatsapp_url"] == wa["url"] and context["whatsapp_text"] == wa["text"]
    assert context["telegram"] == {"url": link, "is_current": False}
    hostile = views.pack_context(
        entry(
            "cats-aaaaa",
            "Cats",
            items=[],
            whatsapp={"url": "http://wa.me/1", "text": "x"},
            telegram={"url": "https://t.me.evil.example/addstickers/x", "is_current": True},
        ),
        "",
    )
    assert hostile["whatsapp_url"] is None and hostile["whatsapp_text"] is None
    assert hostile["telegram"] is None
