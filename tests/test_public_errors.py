"""Public HTTP errors never tell anonymous clients how the server is run.

No error body names an `omnizap …` command, a setting, or a server path; the CLI may (it is the
operator's). Checked on the WhatsApp download refusals (where operator advice used to leak through
`details.problems`), on a sweep of every kind of API error, and on the last-resort guard.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import media_factory as mf
import pytest
from fastapi.testclient import TestClient

from omnizap.config import Settings
from omnizap.core.errors import ExportRefused, InvalidInput
from omnizap.core.packs.export import WhatsAppExporter
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db import Database
from omnizap.runtime import Runtime
from omnizap.web.api.errors import leaks_internals
from omnizap.web.app import create_app

OWNER = "5511966665555@s.whatsapp.net"
API = "/api/sticker-packs"
COMMAND = re.compile(r"omnizap\s+[a-z]")
SETTING = re.compile(r"\bSTICKER_[A-Z_]+\b")


def assert_public(response: Any, tmp_path: Path) -> None:
    """The answer names no operator command, setting or server path."""
    text = response.text
    error = response.json()["error"]
    said = error["message"] + repr(error.get("details", ""))  # `code` may be e.g. STICKER_NOT_FOUND
    assert not COMMAND.search(text), text
    assert not SETTING.search(said), text
    assert str(tmp_path) not in text and "/stickers/" not in error["message"], text
    assert not leaks_internals(text), text


def make_site(db: Database, tmp_path: Path, **overrides: Any) -> SimpleNamespace:
    settings = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
        **overrides,
    )
    runtime = Runtime(settings)
    stickers = StickerService(runtime.database, runtime.storage, settings)
    assets = [
        stickers.ingest(mf.encode_image(mf.graphic_image(120, 120, seed), "PNG"), owner_jid=OWNER).asset
        for seed in range(1, 4)
    ]
    pack = PackService(runtime.database, settings).create_pack(
        OWNER, "Public Cats", initial_sticker_ids=[asset.id for asset in assets]
    )
    return SimpleNamespace(runtime=runtime, settings=settings, assets=assets, pack=pack)


@pytest.fixture
def site(db: Database, tmp_path: Path) -> Iterator[SimpleNamespace]:
    built = make_site(db, tmp_path)
    with TestClient(create_app(built.runtime)) as client:
        built.client = client
        yield built
    built.runtime.close()


def test_download_of_a_pack_with_a_missing_file_names_no_command(site: SimpleNamespace, tmp_path: Path):
    missing = site.assets[1]
    site.runtime.storage.delete(missing.storage_path)
    response = site.client.get(f"{API}/{site.pack.pack_key}/download/whatsapp")
    assert response.status_code == 422 and response.json()["error"]["code"] == "EXPORT_INVALID"
    assert_public(response, tmp_path)
    error = response.json()["error"]
    assert "Sticker #2 is not available" in error["message"]
    assert error["details"]["rule"] == "sticker_file_missing" and error["details"]["position"] == 2
    assert error["details"]["problems"] == ["Sticker #2 is not available."]
    assert missing.storage_path not in response.text


def test_the_cli_export_still_tells_the_operator_how_to_fix_it(site: SimpleNamespace):
    site.runtime.storage.delete(site.assets[1].storage_path)
    exporter = WhatsAppExporter(site.runtime.database, site.runtime.storage, site.settings)
    with pytest.raises(ExportRefused) as caught:
        exporter.export(site.pack)
    assert "`omnizap sticker import`" in caught.value.message
    assert "omnizap pack remove" in caught.value.message
    assert caught.value.public_message == "Sticker #2 is not available."


def test_download_refused_for_server_settings_names_no_setting(db: Database, tmp_path: Path):
    built = make_site(db, tmp_path, sticker_export_publisher_email="not an email")
    try:
        with TestClient(create_app(built.runtime)) as client:
            response = client.get(f"{API}/{built.pack.pack_key}/download/whatsapp")
    finally:
        built.runtime.close()
    assert response.status_code == 422
    assert_public(response, tmp_path)
    assert "settings are invalid" in response.json()["error"]["message"]


def test_every_kind_of_public_error_is_clean(site: SimpleNamespace, tmp_path: Path):
    key, sticker = site.pack.pack_key, site.assets[0].id
    requests = [
        ("GET", f"{API}/nope-abcde"),
        ("GET", f"{API}?limit=0"),
        ("GET", f"{API}?sort=sideways"),
        ("GET", f"{API}?cursor=garbage"),
        ("GET", f"{API}?nsfw=maybe"),
        ("GET", f"{API}/{key}/stickers/{sticker}.webp?size=7"),
        ("GET", f"{API}/{key}/stickers/00000000-0000-0000-0000-000000000000.webp"),
        ("GET", f"{API}/{key}/stickers/{sticker}.webp?expires=1&signature=abc"),
        ("GET", f"{API}/nope-abcde/download/whatsapp"),
        ("POST", f"{API}/nope-abcde/like"),
        ("DELETE", f"{API}/{key}"),
        ("GET", "/api/no-such-route"),
    ]
    site.runtime.storage.delete(site.assets[0].storage_path)
    requests.append(("GET", f"{API}/{key}/stickers/{sticker}.webp"))  # file missing: 404
    for method, url in requests:
        response = site.client.request(method, url)
        assert 400 <= response.status_code < 500, (method, url, response.status_code)
        assert_public(response, tmp_path)


def test_a_leaking_message_is_replaced_by_a_generic_one(
    site: SimpleNamespace, caplog: pytest.LogCaptureFixture
):
    """The last guard: a domain error written for the CLI never reaches a visitor as it is."""

    def leaky() -> None:
        raise InvalidInput(
            "Sticker 7 is gone — run `omnizap pack remove cats 7 --owner X`",
            details={"path": "/var/lib/omnizap/stickers/ab/cd.webp", "parameter": "sticker"},
        )

    site.client.app.add_api_route("/api/test-leak", leaky)
    error = ExportRefused("fix with `omnizap pack add`", public_message="Sticker #1 is damaged.")
    site.client.app.add_api_route("/api/test-public", lambda: (_ for _ in ()).throw(error))
    response = site.client.get("/api/test-leak")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "INVALID_INPUT",
        "message": "The request is invalid.",
        "details": {"parameter": "sticker"},
    }
    assert any("omnizap pack remove" in record.getMessage() for record in caplog.records)  # logged
    public = site.client.get("/api/test-public")
    assert public.status_code == 422 and public.json()["error"]["message"] == "Sticker #1 is damaged."


@pytest.mark.parametrize(
    ("text", "leaks"),
    [
        ("run `omnizap pack remove cats 2 --owner X`", True),
        ("import it with omnizap sticker import", True),
        ("the file /var/lib/omnizap/ab/cd.webp is gone", True),
        ("See /api-docs for the API's endpoints.", False),
        ("Use a link such as https://example.org/a/b", False),
        ("size must be one of 96/128/256", False),
        ("Pack not found; it may be private, unpublished or deleted.", False),
    ],
)
def test_leak_detection(text: str, leaks: bool):
    assert leaks_internals(text) is leaks
