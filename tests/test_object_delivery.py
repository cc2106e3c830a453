"""The sticker route with object storage: 302 to presigned URLs by rollout, local fallback, signed links.

Every test runs on each database engine against a real S3 server (rclone serve s3, SigV4 verified)
and fetches the redirect targets with a real HTTP client.
"""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import media_factory as mf
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from s3_server import RcloneS3

from omnizap.config import Settings
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.delivery.links import SignedLinks
from omnizap.delivery.objects import REDIRECT_FLAG, DeliveryMetrics, ObjectDelivery
from omnizap.delivery.sync import ObjectSync
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset
from omnizap.platform.flags import FeatureFlags, flag_bucket
from omnizap.platform.storage import StoreHealth
from omnizap.runtime import Runtime
from omnizap.web.app import create_app

OWNER = "5511977776666@s.whatsapp.net"
API = "/api/sticker-packs"
SECRET = "test-link-secret-with-enough-entropy"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3]:
    s3 = RcloneS3(tmp_path_factory.mktemp("s3") / "root")
    s3.start()
    yield s3
    s3.stop()


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def open_site(db: Database, tmp_path: Path, server: RcloneS3, **extra: Any) -> Iterator[SimpleNamespace]:
    server.empty_bucket()
    settings = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
        sticker_asset_url_signing_secret=SECRET,
        **server.settings_overrides(sticker_object_storage_max_attempts=1, **extra),
    )
    runtime = Runtime(settings)
    stickers = StickerService(runtime.database, runtime.storage, settings)
    packs = PackService(runtime.database, settings)
    assets = [
        stickers.ingest(mf.encode_image(mf.graphic_image(150, 110, seed), "PNG"), owner_jid=OWNER).asset
        for seed in range(1, 5)
    ]
    ids = [asset.id for asset in assets]
    public = packs.create_pack(OWNER, "Sunny Cats", initial_sticker_ids=ids[:3])
    private = packs.create_pack(OWNER, "Drafts", visibility="private", initial_sticker_ids=[ids[3]])
    store = runtime.object_storage
    assert store is not None
    flag_clock, health_clock = Clock(), Clock()
    flags = FeatureFlags(runtime.database, cache_ttl_ms=30_000, clock=flag_clock)
    health = StoreHealth(store.probe, interval_seconds=5, clock=health_clock)
    app = create_app(runtime)
    metrics = DeliveryMetrics(app.state.http_metrics.registry)
    app.state.object_delivery = ObjectDelivery(store, flags, metrics=metrics, health=health)
    with TestClient(app, follow_redirects=False) as client:
        yield SimpleNamespace(
            client=client,
            app=app,
            runtime=runtime,
            store=store,
            sync=ObjectSync(runtime.database, runtime.storage, store),
            flags=flags,
            flag_clock=flag_clock,
            health_clock=health_clock,
            assets=assets,
            public=public,
            private=private,
        )
    runtime.close()


@pytest.fixture
def site(db: Database, tmp_path: Path, server: RcloneS3) -> Iterator[SimpleNamespace]:
    with open_site(db, tmp_path, server) as opened:
        yield opened


def url_of(pack: Any, asset: Any, query: str = "") -> str:
    return f"{API}/{pack.pack_key}/stickers/{asset.id}.webp" + (f"?{query}" if query else "")


def rollout(site: SimpleNamespace, percent: int, *, enabled: bool = True) -> None:
    site.flags.set_flag(REDIRECT_FLAG, enabled=enabled, rollout_percent=percent, updated_by="test")


def counted(site: SimpleNamespace, mode: str, reason: str) -> float:
    value = site.app.state.http_metrics.registry.get_sample_value(
        "omnizap_sticker_delivery_total", {"mode": mode, "reason": reason}
    )
    return value or 0.0


def local_bytes(site: SimpleNamespace, asset: Any) -> bytes:
    return site.runtime.storage.get(asset.storage_path)


def test_full_rollout_redirects_to_a_presigned_url_with_the_same_bytes(site: SimpleNamespace):
    site.sync.backfill()
    rollout(site, 100)
    asset = site.assets[0]
    response = site.client.get(url_of(site.public, asset), headers={"X-Viewer-Key": "ana"})
    assert response.status_code == 302 and response.content == b""
    assert response.headers["cache-control"] == "private, max-age=45"
    location = response.headers["location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    fetched = httpx.get(location)
    assert fetched.status_code == 200 and fetched.content == local_bytes(site, asset)
    assert fetched.headers["content-type"] == "image/webp"
    head = site.client.head(url_of(site.public, asset))
    assert head.status_code == 302 and head.headers["location"].startswith(site.store.config.endpoint)
    assert counted(site, "redirect", "presigned") == 2
    # Conditional requests still answer 304 without any redirect.
    etag = f'"{asset.sha256}"'
    assert site.client.get(url_of(site.public, asset), headers={"If-None-Match": etag}).status_code == 304
    # Previews stay local.
    preview = site.client.get(url_of(site.public, asset, "size=96"))
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/webp"
    assert counted(site, "local", "preview") == 1
    # Reachability rules are unchanged: a private pack's sticker is still not found.
    assert site.client.get(url_of(site.private, site.assets[3])).status_code == 404


def test_tampered_or_expired_redirect_targets_are_refused_by_the_store(site: SimpleNamespace):
    site.sync.backfill()
    rollout(site, 100)
    location = site.client.get(url_of(site.public, site.assets[1])).headers["location"]
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["X-Amz-Signature"][0]
    forged = location.replace(signature, signature[::-1])
    assert httpx.get(forged).status_code == 403
    swapped = location.replace(site.assets[1].sha256, site.assets[2].sha256)
    assert httpx.get(swapped).status_code == 403
    # A URL handed out by a process whose clock was 10 minutes behind: expired for the store.
    late = ObjectDelivery(
        type(site.store)(site.store.config, clock=lambda: time.time() - 600),
        site.flags,
        metrics=DeliveryMetrics(None),
        health=StoreHealth(lambda: None, interval_seconds=5),
    )
    site.app.state.object_delivery = late
    stale = site.client.get(url_of(site.public, site.assets[1])).headers["location"]
    assert httpx.get(stale).status_code in (400, 403)


def test_zero_percent_serves_everyone_locally(site: SimpleNamespace):
    site.sync.backfill()
    rollout(site, 0)
    for viewer in range(40):
        response = site.client.get(
            url_of(site.public, site.assets[0]), headers={"X-Viewer-Key": f"v{viewer}"}
        )
        assert response.status_code == 200
        assert response.content == local_bytes(site, site.assets[0])
        assert response.headers["cache-control"] == IMMUTABLE
    assert counted(site, "local", "rollout") == 40 and counted(site, "redirect", "presigned") == 0


def test_partial_rollout_redirects_a_stable_subset_of_viewers(site: SimpleNamespace):
    site.sync.backfill()
    rollout(site, 25)
    viewers = [f"viewer-{number}" for number in range(400)]

    def redirected() -> set[str]:
        chosen = set()
        for viewer in viewers:
            response = site.client.get(url_of(site.public, site.assets[0]), headers={"X-Viewer-Key": viewer})
            assert response.status_code in (200, 302)
            if response.status_code == 302:
                chosen.add(viewer)
        return chosen

    first = redirected()
    assert first == {viewer for viewer in viewers if flag_bucket(REDIRECT_FLAG, viewer) < 2500}
    assert 60 <= len(first) <= 140  # 25 % of 400, give or take the hash
    assert redirected() == first  # the same viewers every time
    # The viewer key may also come from the query string or the viewer cookie.
    inside = sorted(first)[0]
    assert site.client.get(url_of(site.public, site.assets[0], f"viewer_key={inside}")).status_code == 302
    rollout(site, 50)
    assert redirected() >= first  # raising the percentage never drops a viewer


def test_viewer_cookie_and_hostile_keys(site: SimpleNamespace):
    site.sync.backfill()
    rollout(site, 50)
    tokens = [f"{number:024d}" for number in range(60)]
    for token in tokens:
        site.client.cookies.set("omnizap_viewer", token)
        expected = flag_bucket(REDIRECT_FLAG, "cookie:" + token) < 5000
        status = site.client.get(url_of(site.public, site.assets[0])).status_code
        assert status == (302 if expected else 200)
    site.client.cookies.clear()
    for hostile in (b"a b", b"x" * 121, "é".encode(), b"a\tb", b"../../etc", b"<script>", b"\xff\xfe"):
        response = site.client.get(url_of(site.public, site.assets[0]), headers={"X-Viewer-Key": hostile})
        assert response.status_code in (200, 302)  # ignored, never an error


def test_objects_not_uploaded_are_served_from_disk(site: SimpleNamespace):
    rollout(site, 100)
    response = site.client.get(url_of(site.public, site.assets[0]))
    assert response.status_code == 200 and response.content == local_bytes(site, site.assets[0])
    assert counted(site, "local", "not_uploaded") == 1
    # Uploaded to another bucket before a reconfiguration: not trusted either.
    with site.runtime.database.transaction() as connection:
        connection.execute(
            sticker_asset.update()
            .where(sticker_asset.c.id == site.assets[0].id)
            .values(object_storage_key="s3://old-bucket/stickers/" + site.assets[0].storage_path)
        )
    assert site.client.get(url_of(site.public, site.assets[0])).status_code == 200
    assert counted(site, "local", "not_uploaded") == 2


def test_emergency_disable_from_the_runbook_takes_effect_within_the_flag_cache_ttl(site: SimpleNamespace):
    site.sync.backfill()
    rollout(site, 100)
    url = url_of(site.public, site.assets[0])
    assert site.client.get(url).status_code == 302
    runbook = Path(__file__).parent / "data" / "runbook_seed.sql.md"
    assert "enable_object_storage_delivery" in runbook.read_text()
    with site.runtime.database.transaction() as connection:
        connection.exec_driver_sql(
            "UPDATE feature_flag\n"
            "SET is_enabled = 0, rollout_percent = 0, updated_by = 'ops'\n"
            "WHERE flag_name IN (\n"
            "  'enable_worker_dedicated_processes',\n"
            "  'enable_object_storage_delivery',\n"
            "  'enable_domain_event_outbox'\n"
            ");"
        )
    site.flag_clock.now += 29.9  # still within FEATURE_FLAG_CACHE_TTL_MS (30 s)
    assert site.client.get(url).status_code == 302
    site.flag_clock.now += 0.1
    response = site.client.get(url)
    assert response.status_code == 200 and response.content == local_bytes(site, site.assets[0])


def test_store_stopped_mid_run_falls_back_to_disk(db: Database, tmp_path: Path):
    own = RcloneS3(tmp_path / "s3root")
    own.start()
    try:
        with open_site(db, tmp_path, own) as site:
            site.sync.backfill()
            rollout(site, 100)
            url = url_of(site.public, site.assets[0])
            assert site.client.get(url).status_code == 302
            own.stop()
            site.health_clock.now += 5  # the next probe is due
            response = site.client.get(url)
            assert response.status_code == 200 and response.content == local_bytes(site, site.assets[0])
            assert counted(site, "local", "store_unavailable") == 1
            assert site.client.get(url).status_code == 200  # remembered until the next probe
            own.start()
            site.health_clock.now += 5
            back = site.client.get(url)
            assert back.status_code == 302 and httpx.get(back.headers["location"]).status_code == 200
    finally:
        own.stop()


def test_cdn_mode_redirects_to_the_cdn(db: Database, tmp_path: Path, server: RcloneS3):
    with open_site(
        db,
        tmp_path,
        server,
        sticker_object_storage_signed_url_enabled=False,
        sticker_object_storage_cdn_base_url="https://cdn.example.com",
    ) as site:
        site.sync.backfill()
        rollout(site, 100)
        response = site.client.get(url_of(site.public, site.assets[0]))
        assert response.status_code == 302
        assert (
            response.headers["location"] == f"https://cdn.example.com/stickers/{site.assets[0].storage_path}"
        )
        assert counted(site, "redirect", "unsigned") == 1


def test_delivery_counter_is_exposed_on_metrics(site: SimpleNamespace):
    site.client.get(url_of(site.public, site.assets[0]))
    text = site.client.get("/metrics").text
    assert 'omnizap_sticker_delivery_total{mode="local",reason="rollout"} 1.0' in text


# --- signed links ---------------------------------------------------------------------------------


def test_signed_link_opens_a_private_packs_sticker_until_it_expires(site: SimpleNamespace):
    clock = Clock(time.time())
    site.app.state.signed_links = SignedLinks(SECRET, clock=clock)
    asset = site.assets[3]
    plain = url_of(site.private, asset)
    assert site.client.get(plain).status_code == 404
    link = SignedLinks(SECRET).sign(site.private.pack_key, asset.id, 600)
    response = site.client.get(f"{plain}?{link.query()}")
    assert response.status_code == 200 and response.content == local_bytes(site, asset)
    cache = response.headers["cache-control"]
    assert cache.startswith("private, max-age=") and int(cache.rsplit("=", 1)[1]) <= 600
    # Same signature on another sticker, pack or expiry: refused.
    other = f"{url_of(site.public, site.assets[0])}?{link.query()}"
    assert site.client.get(other).json()["error"]["code"] == "LINK_INVALID"
    later = f"{plain}?expires={link.expires + 1}&signature={link.signature}"
    assert site.client.get(later).status_code == 403
    flipped = link.signature[:-1] + ("A" if link.signature[-1] != "A" else "B")
    tampered = site.client.get(f"{plain}?expires={link.expires}&signature={flipped}")
    assert tampered.status_code == 403 and tampered.json()["error"]["code"] == "LINK_INVALID"
    clock.now = link.expires
    expired = site.client.get(f"{plain}?{link.query()}")
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "LINK_EXPIRED"


@pytest.mark.parametrize(
    "query",
    [
        "expires=1",
        "signature=abc",
        "expires=&signature=",
        "expires=-5&signature=" + "a" * 43,
        "expires=1e10&signature=" + "a" * 43,
        "expires=" + "9" * 40 + "&signature=" + "a" * 43,
        "expires=99999999999&signature=" + "a" * 44,
        "expires=99999999999&signature=" + "%00" * 43,
    ],
)
def test_malformed_links_are_refused(site: SimpleNamespace, query: str):
    response = site.client.get(url_of(site.public, site.assets[0], query))
    assert response.status_code == 403 and response.json()["error"]["code"] == "LINK_INVALID"


def test_signed_links_off_without_a_secret(db: Database, tmp_path: Path, server: RcloneS3):
    with open_site(db, tmp_path, server) as site:
        site.app.state.signed_links = SignedLinks("")
        response = site.client.get(url_of(site.private, site.assets[3], "expires=1&signature=" + "a" * 43))
        assert response.status_code == 403 and response.json()["error"]["code"] == "SIGNED_LINKS_DISABLED"


def test_deleted_pack_is_gone_even_with_a_link(site: SimpleNamespace):
    link = SignedLinks(SECRET).sign(site.private.pack_key, site.assets[3].id, 600)
    PackService(site.runtime.database, site.runtime.settings).delete(OWNER, site.private.pack_key)
    response = site.client.get(f"{url_of(site.private, site.assets[3])}?{link.query()}")
    assert response.status_code == 404


def test_storage_off_counts_local(db: Database, tmp_path: Path):
    settings = Settings(
        _env_file=None,
        database_url=db.url.render_as_string(hide_password=False),
        sticker_storage_dir=tmp_path / "stickers",
        sticker_pack_auto_collect_enabled=False,
    )
    runtime = Runtime(settings)
    asset = (
        StickerService(runtime.database, runtime.storage, settings)
        .ingest(mf.encode_image(mf.graphic_image(120, 120, 9), "PNG"), owner_jid=OWNER)
        .asset
    )
    pack = PackService(runtime.database, settings).create_pack(OWNER, "Plain", initial_sticker_ids=[asset.id])
    FeatureFlags(runtime.database, cache_ttl_ms=0).set_flag(
        REDIRECT_FLAG, enabled=True, rollout_percent=100, updated_by="test"
    )
    app = create_app(runtime)
    with TestClient(app, follow_redirects=False) as client:
        assert client.get(url_of(pack, asset)).status_code == 200
        registry = app.state.http_metrics.registry
        sample = {"mode": "local", "reason": "storage_off"}
        assert registry.get_sample_value("omnizap_sticker_delivery_total", sample) == 1
    with runtime.database.read() as connection:
        assert connection.execute(sa.select(sticker_asset.c.object_storage_key)).scalar() is None
    runtime.close()
