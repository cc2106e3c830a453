"""The S3 backend against a real SigV4-verifying server (rclone serve s3 on loopback)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import botocore.auth
import httpx
import pytest
from s3_server import ACCESS_KEY, SECRET_KEY, RcloneS3

from omnizap.config import Settings
from omnizap.platform.storage import (
    ObjectNotFound,
    ObjectStorageConfig,
    ObjectStorageConfigError,
    S3Storage,
    StorageError,
    StoreHealth,
    StoreUnavailable,
    object_storage,
)
from omnizap.platform.storage.s3 import IMMUTABLE_CACHE_CONTROL, Credentials, presign_get

KEY = "ab/cd/" + "ab" * 32 + ".webp"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RcloneS3]:
    s3 = RcloneS3(tmp_path_factory.mktemp("s3") / "root")
    s3.start()
    yield s3
    s3.stop()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_settings(server: RcloneS3, **extra: object) -> Settings:
    return Settings(_env_file=None, **server.settings_overrides(**extra))


def make_store(server: RcloneS3, clock: Clock | None = None, **extra: object) -> S3Storage:
    config = ObjectStorageConfig.from_settings(make_settings(server, **extra))
    return S3Storage(config, clock=clock) if clock is not None else S3Storage(config)


def test_put_get_head_delete_roundtrip(server: RcloneS3):
    store = make_store(server)
    data = os.urandom(3000)
    store.put(KEY, data, "image/webp")
    assert store.get(KEY) == data
    info = store.head(KEY)
    assert info is not None and info.size == 3000
    assert info.content_type == "image/webp" and info.cache_control == IMMUTABLE_CACHE_CONTROL
    assert info.matches(3000, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())
    assert not info.matches(3000, "0" * 64)
    assert server.object_path("stickers/" + KEY).read_bytes() == data  # under the key prefix
    assert store.uri(KEY) == f"s3://{server.bucket}/stickers/{KEY}"
    assert store.object_key_of_uri(store.uri(KEY)) == "stickers/" + KEY
    assert store.object_key_of_uri(f"s3://another-bucket/stickers/{KEY}") is None
    assert store.object_key_of_uri("unavailable:local_missing") is None
    store.delete(KEY)
    assert not store.exists(KEY)
    store.delete(KEY)  # deleting a missing key is fine
    with pytest.raises(ObjectNotFound):
        store.get(KEY)


def test_large_files_go_up_in_parts(server: RcloneS3):
    threshold = 5 * 1024 * 1024
    store = make_store(server, sticker_object_storage_multipart_threshold_bytes=threshold)
    calls: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: calls.append(model.name), unique_id="count-calls"
    )
    data = os.urandom(threshold * 2 + 1234)
    store.put("big/object.bin", data, "application/octet-stream")
    assert calls.count("CreateMultipartUpload") == 1 and calls.count("UploadPart") == 3
    assert calls.count("CompleteMultipartUpload") == 1
    assert store.get("big/object.bin") == data
    calls.clear()
    store.put("small/object.bin", data[:1000], "application/octet-stream")
    assert calls == ["PutObject"]


def test_presigned_url_is_fetched_and_verified_by_the_server(server: RcloneS3):
    store = make_store(server)  # the real clock: the server checks the URL against its own
    data = os.urandom(2048)
    store.put(KEY, data, "image/webp")
    signed = store.url_for_object("stickers/" + KEY)
    assert signed is not None and signed.expires_at is not None
    response = httpx.get(signed.url)
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "image/webp"

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(signed.url).query)
    signature = query["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    tampered = signed.url.replace(signature, flipped)
    assert httpx.get(tampered).status_code == 403
    other_key = signed.url.replace(KEY, "ab/cd/" + "cd" * 32 + ".webp")
    assert httpx.get(other_key).status_code == 403
    longer = signed.url.replace("X-Amz-Expires=300", "X-Amz-Expires=3600")
    assert httpx.get(longer).status_code == 403


def test_expired_and_wrong_secret_urls_are_rejected(server: RcloneS3):
    store = make_store(server)
    store.put(KEY, b"x" * 100, "image/webp")
    # Signed TTL + 30 s ago: expired by the server's clock.
    past = make_store(server, Clock(time.time() - 330))
    expired = past.url_for_object("stickers/" + KEY)
    assert expired is not None
    assert httpx.get(expired.url).status_code in (400, 403)  # rclone: 400 AccessDenied, AWS: 403
    wrong = make_store(server, sticker_object_storage_secret_access_key="not-the-secret")
    forged = wrong.url_for_object("stickers/" + KEY)
    assert forged is not None and httpx.get(forged.url).status_code == 403


@pytest.mark.parametrize("path_style", [True, False])
@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
def test_signature_equals_botocore(monkeypatch: pytest.MonkeyPatch, path_style: bool, token: str | None):
    """Our SigV4 query signature is byte-for-byte botocore's for the same time, key and credentials."""
    import boto3
    from botocore.config import Config

    signed_at = dt.datetime(2026, 11, 30, 23, 59, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at.replace(tzinfo=None))
    endpoint = "https://objects.example.com:9443"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="sa-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path" if path_style else "virtual"}),
    )
    key = "stickers/ab/cd/x_y-z.webp"
    expected = client.generate_presigned_url(
        "get_object", Params={"Bucket": "my-bucket", "Key": key}, ExpiresIn=300
    )
    ours = presign_get(
        scheme="https",
        host="objects.example.com:9443" if path_style else "my-bucket.objects.example.com:9443",
        path=("/my-bucket/" if path_style else "/") + key,
        region="sa-east-1",
        credentials=Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
        signed_at=signed_at,
        expires_in=300,
    )

    def parts(url: str) -> tuple[str, str, dict[str, list[str]]]:
        split = urllib.parse.urlsplit(url)
        return split.netloc, split.path, urllib.parse.parse_qs(split.query)

    assert parts(ours) == parts(expected)


def test_urls_are_stable_within_a_window_and_never_outlive_the_ttl(server: RcloneS3):
    clock = Clock(1_800_000_000.0)
    store = make_store(server, clock, sticker_object_storage_signed_url_ttl_seconds=300)
    first = store.url_for_object("stickers/" + KEY)
    clock.now += 74  # same 75 s window (a quarter of the TTL)
    again = store.url_for_object("stickers/" + KEY)
    assert first is not None and again is not None and first.url == again.url
    assert again.expires_at - clock.now >= 300 * 0.75
    clock.now += 1
    moved = store.url_for_object("stickers/" + KEY)
    assert moved is not None and moved.url != first.url and moved.expires_at == first.expires_at + 75
    for step in range(0, 600, 7):
        clock.now = 1_800_000_000.0 + step
        url = store.url_for_object("stickers/" + KEY)
        assert url is not None and clock.now < url.expires_at <= clock.now + 300


def test_unsigned_mode_uses_the_cdn_or_the_bucket_url(server: RcloneS3):
    cdn = make_store(
        server,
        sticker_object_storage_signed_url_enabled=False,
        sticker_object_storage_cdn_base_url="https://cdn.example.com/assets/",
    )
    assert cdn.url(KEY) == f"https://cdn.example.com/assets/stickers/{KEY}"
    bucket = make_store(server, sticker_object_storage_signed_url_enabled=False)
    assert bucket.url(KEY) == f"{server.endpoint}/{server.bucket}/stickers/{KEY}"


def test_a_stopped_store_is_reported_unavailable(tmp_path: Path):
    s3 = RcloneS3(tmp_path / "root")
    s3.start()
    try:
        store = make_store(s3, sticker_object_storage_max_attempts=1)
        clock = Clock(0.0)
        health = StoreHealth(store.probe, interval_seconds=10, clock=clock)
        assert health.healthy() is True
        s3.stop()
        assert health.healthy() is True  # the answer is kept for the interval
        with pytest.raises(StoreUnavailable):
            store.put(KEY, b"data", "image/webp")
        with pytest.raises(StoreUnavailable):
            store.get(KEY)
        clock.now = 10
        assert health.healthy() is False and "unreachable" in (health.last_error or "")
        s3.start()
        clock.now = 15
        assert health.healthy() is False  # not probed again before the interval
        clock.now = 20
        assert health.healthy() is True
    finally:
        s3.stop()


def test_missing_bucket_and_bad_credentials_say_what_to_fix(server: RcloneS3):
    missing = make_store(server, sticker_object_storage_bucket="no-such-bucket")
    with pytest.raises(StorageError, match="does not exist"):
        missing.put(KEY, b"data", "image/webp")
    wrong = make_store(server, sticker_object_storage_secret_access_key="wrong")
    with pytest.raises(StorageError, match="ACCESS_KEY_ID"):
        wrong.put(KEY, b"data", "image/webp")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sticker_object_storage_bucket": ""}, "BUCKET is empty"),
        ({"sticker_object_storage_bucket": "Bad_Bucket"}, "not a bucket name"),
        ({"sticker_object_storage_bucket": "a..b"}, "not a bucket name"),
        ({"sticker_object_storage_provider": "gcs"}, "PROVIDER='gcs' is not supported"),
        ({"sticker_object_storage_endpoint": "ftp://host"}, "ENDPOINT='ftp://host' is not a URL"),
        ({"sticker_object_storage_endpoint": "http://host:9000/bucket"}, "has a path"),
        ({"sticker_object_storage_endpoint": "http://user:pw@host"}, "credentials"),
        ({"sticker_object_storage_key_prefix": "../etc"}, "KEY_PREFIX"),
        ({"sticker_object_storage_key_prefix": "a b"}, "KEY_PREFIX"),
        (
            {"sticker_object_storage_access_key_id": "", "sticker_object_storage_secret_access_key": "x"},
            "both",
        ),
        ({"sticker_object_storage_cdn_base_url": "cdn.example.com"}, "CDN_BASE_URL"),
    ],
)
def test_unusable_configuration_is_refused_by_name(server: RcloneS3, overrides: dict, message: str):
    settings = make_settings(server, **overrides)
    with pytest.raises(ObjectStorageConfigError, match=message):
        object_storage(settings)


def test_storage_is_off_by_default_and_keys_are_validated(server: RcloneS3):
    assert object_storage(Settings(_env_file=None)) is None
    store = make_store(server, sticker_object_storage_key_prefix="")
    assert store.object_key(KEY) == KEY
    for hostile in ("../x.webp", "/abs.webp", "a//b.webp", "UPPER.webp", "a/../../b", "x\x00.webp", ""):
        with pytest.raises(ValueError):
            store.put(hostile, b"data", "image/webp")
    assert ACCESS_KEY not in (store.url(KEY) or "").split("X-Amz-Signature")[1]
    assert SECRET_KEY not in (store.url(KEY) or "")


def test_requests_do_not_wait_for_a_running_probe():
    """While one request probes, the others answer at once with the previous answer."""
    import threading

    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_probe() -> None:
        calls.append(1)
        if len(calls) == 2:
            started.set()
            assert release.wait(10)
            raise StorageError("store down")

    clock = Clock(0.0)
    health = StoreHealth(slow_probe, interval_seconds=5, clock=clock)
    assert health.healthy() is True
    clock.now = 5
    results: list[bool] = []
    prober = threading.Thread(target=lambda: results.append(health.healthy()))
    prober.start()
    assert started.wait(10)
    assert health.healthy() is True  # not blocked, previous answer
    release.set()
    prober.join(10)
    assert results == [False] and health.healthy() is False and len(calls) == 2


def test_nothing_is_redirected_before_the_first_answer():
    """A request arriving while the very first probe runs treats the store as unavailable."""
    import threading

    started, release = threading.Event(), threading.Event()

    def first_probe() -> None:
        started.set()
        assert release.wait(10)

    health = StoreHealth(first_probe, interval_seconds=5, clock=Clock(0.0))
    results: list[bool] = []
    prober = threading.Thread(target=lambda: results.append(health.healthy()))
    prober.start()
    assert started.wait(10)
    assert health.healthy() is False
    release.set()
    prober.join(10)
    assert results == [True] and health.healthy() is True


def test_pages_allow_images_from_where_redirects_point():
    from omnizap.web.pages.routes import content_security_policy

    aws = Settings(
        _env_file=None,
        sticker_object_storage_enabled=True,
        sticker_object_storage_bucket="my-bucket",
        sticker_object_storage_region="sa-east-1",
        sticker_object_storage_force_path_style=False,
    )
    assert "img-src 'self' data: https://my-bucket.s3.sa-east-1.amazonaws.com;" in content_security_policy(
        aws
    )
    cdn = aws.model_copy(
        update={
            "sticker_object_storage_signed_url_enabled": False,
            "sticker_object_storage_cdn_base_url": "https://cdn.example.com/x",
        }
    )
    assert "https://cdn.example.com" in content_security_policy(cdn)
    broken = aws.model_copy(update={"sticker_object_storage_bucket": ""})
    assert "img-src 'self' data:;" in content_security_policy(broken)
