"""Sticker files, previews and WhatsApp downloads through the web app, on every engine, with real stickers."""

from __future__ import annotations

import io
import logging
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import media_factory as mf
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.delivery import preview_key, render_preview
from omnizap.delivery.downloads import safe_filename
from omnizap.platform.db import Database
from omnizap.runtime import Runtime
from omnizap.web.app import create_app
from omnizap.web.http.cache import etag_matches

OWNER = "5511988887777@s.whatsapp.net"
API = "/api/sticker-packs"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def site(db: Database, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Real stickers in packs of every visibility, served by the delivery routes."""
    settings = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
    )
    runtime = Runtime(settings)
    stickers = StickerService(runtime.database, runtime.storage, settings)
    packs = PackService(runtime.database, settings)

    def ingest(seed: int) -> Any:
        return stickers.ingest(
            mf.encode_image(mf.graphic_image(160, 120, seed), "PNG"), owner_jid=OWNER
        ).asset

    assets = [ingest(seed) for seed in range(1, 6)]
    animated = stickers.ingest(mf.animated_gif(6, (96, 96), duration=80), owner_jid=OWNER).asset
    ids = [asset.id for asset in assets]
    public = packs.create_pack(OWNER, "Sunny Cats", initial_sticker_ids=ids[:3])
    unlisted = packs.create_pack(OWNER, "Quiet", visibility="unlisted", initial_sticker_ids=[ids[3]])
    private = packs.create_pack(OWNER, "Drafts", visibility="private", initial_sticker_ids=[ids[4]])
    two = packs.create_pack(OWNER, "Only Two", initial_sticker_ids=ids[:2])
    moving = packs.create_pack(OWNER, "Moving", initial_sticker_ids=[animated.id])
    app = create_app(runtime)
    with TestClient(app) as client:
        yield SimpleNamespace(
            client=client,
            app=app,
            runtime=runtime,
            storage=runtime.storage,
            packs=packs,
            assets=assets,
            animated=animated,
            public=public,
            unlisted=unlisted,
            private=private,
            two=two,
            moving=moving,
            tmp_path=tmp_path,
        )
    runtime.close()


def sticker_url(pack: Any, sticker_id: str, suffix: str = ".webp") -> str:
    return f"{API}/{pack.pack_key}/stickers/{sticker_id}{suffix}"


def assert_error(response: Any, status: int, code: str, site: SimpleNamespace) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code
    assert str(site.tmp_path) not in response.text and "/stickers/" not in body["error"]["message"]


# --- sticker files --------------------------------------------------------------------------------


def test_sticker_bytes_and_caching_headers(site: SimpleNamespace):
    asset = site.assets[0]
    for suffix in (".webp", ""):
        response = site.client.get(sticker_url(site.public, asset.id, suffix))
        assert response.status_code == 200
        assert response.content == site.storage.get(asset.storage_path)
        assert response.headers["content-type"] == "image/webp"
        assert response.headers["content-length"] == str(asset.size_bytes)
        assert response.headers["etag"] == f'"{asset.sha256}"'
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.headers["x-content-type-options"] == "nosniff"
    upper = site.client.get(sticker_url(site.public, asset.id.upper(), ".WEBP"))
    assert upper.status_code == 200 and upper.content == response.content


def test_conditional_requests_answer_304(site: SimpleNamespace):
    asset = site.assets[1]
    url = sticker_url(site.public, asset.id)
    etag = f'"{asset.sha256}"'
    for header in (etag, f"W/{etag}", f'"nope", {etag}', f'W/"nope",W/{etag}', "*"):
        response = site.client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag and response.headers["cache-control"] == IMMUTABLE
    for header in ('"nope"', asset.sha256, f'"{asset.sha256[:-1]}"', "", '"a", "b"', "W/"):
        assert site.client.get(url, headers={"If-None-Match": header}).status_code == 200, header


def test_head_sends_headers_without_a_body(site: SimpleNamespace):
    asset = site.assets[2]
    response = site.client.head(sticker_url(site.public, asset.id))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(asset.size_bytes)
    assert response.headers["etag"] == f'"{asset.sha256}"'
    assert response.headers["content-type"] == "image/webp"
    again = site.client.head(
        sticker_url(site.public, asset.id), headers={"If-None-Match": f'"{asset.sha256}"'}
    )
    assert again.status_code == 304
    preview = site.client.head(sticker_url(site.public, asset.id) + "?size=96")
    assert preview.status_code == 200 and preview.content == b""
    assert int(preview.headers["content-length"]) == len(site.storage.get(preview_key(asset.sha256, 96)))


def test_only_stickers_of_reachable_packs_are_served(site: SimpleNamespace):
    a = site.assets
    assert site.client.get(sticker_url(site.unlisted, a[3].id)).status_code == 200
    assert_error(site.client.get(sticker_url(site.private, a[4].id)), 404, "PACK_NOT_FOUND", site)
    # A sticker of another pack, even a public one, is not a sticker of this pack.
    assert_error(site.client.get(sticker_url(site.public, a[3].id)), 404, "STICKER_NOT_FOUND", site)
    assert_error(site.client.get(sticker_url(site.unlisted, a[0].id)), 404, "STICKER_NOT_FOUND", site)
    assert_error(site.client.get(sticker_url(site.public, a[4].id)), 404, "STICKER_NOT_FOUND", site)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_error(site.client.get(sticker_url(site.public, unknown)), 404, "STICKER_NOT_FOUND", site)
    assert_error(site.client.get(f"{API}/nope-abcde/stickers/{a[0].id}.webp"), 404, "PACK_NOT_FOUND", site)
    site.packs.delete(OWNER, site.unlisted.pack_key)
    assert_error(site.client.get(sticker_url(site.unlisted, a[3].id)), 404, "PACK_NOT_FOUND", site)
    assert site.client.post(sticker_url(site.public, a[0].id)).status_code == 405


PATH_TRICKS = [
    "/stickers/..%2F..%2F..%2Fetc%2Fpasswd",
    "/stickers/%2e%2e%2f%2e%2e%2fomnizap.db",
    "/stickers/..%5C..%5Cwindows",
    "/stickers/{id}%2F..%2F{id}.webp",
    "/stickers/{id}%00.webp",
    "/stickers/" + "a" * 10_000 + ".webp",
    "/stickers/%E2%98%83.webp",
    "/stickers/ç{id}.webp",
    "/stickers/.webp",
    "/stickers/{id}.webp.webp",
    "/stickers/{id}.png",
    "/stickers/{id}/",
]


def test_path_tricks_and_hostile_keys_are_not_found(site: SimpleNamespace):
    sticker_id = site.assets[0].id
    for path in PATH_TRICKS:
        response = site.client.get(f"{API}/{site.public.pack_key}" + path.replace("{id}", sticker_id))
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] in {"STICKER_NOT_FOUND", "NOT_FOUND"}
        assert str(site.tmp_path) not in response.text
    for pack_key in ("..%2F..", "k" * 10_000, "%00", "ção-abcde", "%2e%2e", site.public.pack_key + "%00"):
        response = site.client.get(f"{API}/{pack_key}/stickers/{sticker_id}.webp")
        assert response.status_code == 404, pack_key
        assert response.json()["error"]["code"] in {"PACK_NOT_FOUND", "NOT_FOUND"}


def test_a_missing_file_is_a_404_that_names_no_path(site: SimpleNamespace, caplog: pytest.LogCaptureFixture):
    asset = site.assets[0]
    site.storage.delete(asset.storage_path)
    with caplog.at_level(logging.ERROR, logger="omnizap.delivery"):
        response = site.client.get(sticker_url(site.public, asset.id))
    assert_error(response, 404, "STICKER_FILE_MISSING", site)
    assert asset.storage_path not in response.text and asset.sha256 not in response.text
    assert any(asset.id in record.getMessage() for record in caplog.records)  # the operator is told
    assert site.client.head(sticker_url(site.public, asset.id)).status_code == 404
    assert site.client.get(sticker_url(site.public, asset.id) + "?size=128").status_code == 404
    # A client that still has the bytes may keep them.
    cached = site.client.get(
        sticker_url(site.public, asset.id), headers={"If-None-Match": f'"{asset.sha256}"'}
    )
    assert cached.status_code == 304


# --- previews -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [96, 128, 256])
def test_previews_are_webp_of_that_size_stored_once(site: SimpleNamespace, size: int):
    asset = site.assets[size % 3]
    url = sticker_url(site.public, asset.id) + f"?size={size}"
    response = site.client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["cache-control"] == IMMUTABLE
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag != f'"{asset.sha256}"' and str(size) in etag
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "WEBP" and image.size == (size, size)
        assert getattr(image, "n_frames", 1) == 1
    assert len(response.content) < asset.size_bytes
    key = preview_key(asset.sha256, size)
    assert site.storage.get(key) == response.content  # kept under its derived key
    # Later requests read the stored rendition: overwrite it and see the stored bytes come back.
    marker = response.content + b"\0"
    site.storage.put(key, marker, "image/webp")
    assert site.client.get(url).content == marker
    assert site.client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_animated_stickers_keep_moving_in_previews(site: SimpleNamespace):
    response = site.client.get(sticker_url(site.moving, site.animated.id) + "?size=128")
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (128, 128)
        assert image.n_frames > 1 and image.is_animated


def test_other_preview_sizes_are_refused_by_name(site: SimpleNamespace):
    url = sticker_url(site.public, site.assets[0].id)
    for size in ("0", "-1", "100", "512", "1e2", "abc", "", "96.0", "9" * 10_000, " ", "0x60", "٩٦"):
        response = site.client.get(url, params={"size": size})
        assert_error(response, 400, "INVALID_INPUT", site)
        assert "96, 128, 256" in response.json()["error"]["message"], size


def test_concurrent_first_preview_requests_are_safe(site: SimpleNamespace):
    asset = site.assets[1]
    url = sticker_url(site.public, asset.id) + "?size=256"
    barrier = threading.Barrier(6)
    answers: list[tuple[int, bytes]] = []

    def fetch() -> None:
        barrier.wait()
        response = site.client.get(url)
        answers.append((response.status_code, response.content))

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * 6
    assert len({content for _, content in answers}) == 1
    assert answers[0][1] == site.storage.get(preview_key(asset.sha256, 256))


def test_render_preview_shrinks_non_square_pictures_to_fit():
    data = mf.encode_image(mf.graphic_image(400, 200), "WEBP")
    with Image.open(io.BytesIO(render_preview(data, 128))) as image:
        assert image.size == (128, 64)
    with pytest.raises(ValueError):
        render_preview(data, 100)


# --- WhatsApp download ----------------------------------------------------------------------------


def test_whatsapp_download_is_a_valid_zip_built_once(site: SimpleNamespace):
    url = f"{API}/{site.public.pack_key}/download/whatsapp"
    response = site.client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="{site.public.pack_key}.wastickers.zip"'
    etag = response.headers["etag"]
    assert site.public.id in etag and "-v1-" in etag
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert "contents.json" in names
        webps = [name for name in names if name.endswith(".webp")]
        assert len(webps) == 3
        stored = {site.storage.get(asset.storage_path) for asset in site.assets[:3]}
        assert {archive.read(name) for name in webps} == stored
    downloads = site.app.state.whatsapp_downloads
    assert site.client.get(url).content == response.content
    assert site.client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert site.client.head(url).headers["content-length"] == str(len(response.content))
    assert downloads.builds == 1
    # A change of the pack is a new version: a new ETag and a new zip.
    site.packs.add_sticker(OWNER, site.public.pack_key, site.assets[3].id, emojis="😀")
    assert site.client.get(url, headers={"If-None-Match": etag}).status_code == 200
    changed = site.client.get(url)
    assert changed.headers["etag"] != etag and "-v2-" in changed.headers["etag"]
    with zipfile.ZipFile(io.BytesIO(changed.content)) as archive:
        assert len([name for name in archive.namelist() if name.endswith(".webp")]) == 4
    assert downloads.builds == 2


def test_a_pack_whatsapp_refuses_is_422_naming_the_rule(site: SimpleNamespace):
    response = site.client.get(f"{API}/{site.two.pack_key}/download/whatsapp")
    assert_error(response, 422, "EXPORT_INVALID", site)
    error = response.json()["error"]
    assert "WhatsApp needs 3 to 30 stickers" in error["message"] and "this pack has 2" in error["message"]
    assert "omnizap" not in error["message"] and "--owner" not in error["message"]  # no operator commands
    assert error["details"]["rule"] == "sticker_count"


def test_whatsapp_download_of_unreachable_packs_is_404(site: SimpleNamespace):
    for key in (site.private.pack_key, "nope-abcde", "k" * 10_000):
        assert_error(site.client.get(f"{API}/{key}/download/whatsapp"), 404, "PACK_NOT_FOUND", site)
    assert site.client.get(f"{API}/{site.public.pack_key}/download/telegram").status_code == 404


# --- helpers --------------------------------------------------------------------------------------


def test_etag_matching_rules():
    assert etag_matches('"a"', '"a"') and etag_matches('W/"a"', '"a"') and etag_matches("*", '"a"')
    assert etag_matches(' "x" , W/"a" ', '"a"')
    assert not etag_matches('"A"', '"a"') and not etag_matches("a", '"a"') and not etag_matches(None, '"a"')
    assert not etag_matches('"a"' + "," * 10_000, '"a"')  # too long to bother parsing


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sunny-cats-k3x9q.wastickers.zip", "sunny-cats-k3x9q.wastickers.zip"),
        ('evil"; filename="x.exe', "evil-filename-x.exe.zip"),
        ("../../etc/passwd", "etc-passwd.zip"),
        ("Ção Ñandú.zip", "Cao-Nandu.zip"),
        ("\r\nSet-Cookie: a=b", "Set-Cookie-a-b.zip"),
        ("", "pack.wastickers.zip"),
        ("😀😀", "pack.wastickers.zip"),
    ],
)
def test_download_filenames_are_sanitised(name: str, expected: str):
    assert safe_filename(name) == expected
