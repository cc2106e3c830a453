"""Sticker files in an S3-compatible object store (AWS S3, MinIO, R2, rclone serve s3, …).

Objects live under `<STICKER_OBJECT_STORAGE_KEY_PREFIX>/<storage key>`, where the storage key is the
content address every backend uses (`ab/cd/<sha256>.webp`), so one file is one object whoever
uploaded it. Uploads carry `Content-Type`, `Cache-Control: public, max-age=31536000, immutable`,
the file's SHA-256 as user metadata and (single requests) a Content-MD5 the store verifies; files
of STICKER_OBJECT_STORAGE_MULTIPART_THRESHOLD_BYTES or more go up in parts. Every request is
retried by botocore's standard mode (exponential backoff with jitter) up to
STICKER_OBJECT_STORAGE_MAX_ATTEMPTS tries.

Presigned GET URLs are computed here (AWS Signature V4, query form) rather than by botocore, for
one reason: the signing time is rounded down to a window of a quarter of the TTL, so every API
process and host hands out the *same* URL for an object within a window, and browsers and CDNs
can cache the object under it. A URL is never valid longer than the TTL, and has at least three
quarters of it left when handed out. Tests check the signature against botocore's and against a
real SigV4-verifying server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from omnizap.config import Settings
from omnizap.platform.storage.base import ObjectNotFound, StorageError, validate_key

logger = logging.getLogger(__name__)

IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
SHA256_METADATA = "sha256"
SUPPORTED_PROVIDERS = ("s3",)
URI_SCHEME = "s3://"
_PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9/_.-]{0,127}$")
# Bucket names S3 accepts (3-63 lowercase letters, digits, dots, hyphens).
_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_UNRESERVED = "-_.~"
SIGNED_URL_CACHE_SIZE = 50_000
_PLAIN_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


class ObjectStorageConfigError(ValueError):
    """The STICKER_OBJECT_STORAGE_* settings cannot work; the message names the setting and the fix."""


class StoreUnavailable(StorageError):
    """The store did not answer (connection refused, timeout, 5xx after every retry)."""


@dataclass(frozen=True)
class ObjectStorageConfig:
    """The validated STICKER_OBJECT_STORAGE_* settings (hashable, so clients can be shared per config)."""

    bucket: str
    region: str
    endpoint: str  # scheme://host[:port], or "" for AWS
    force_path_style: bool
    access_key_id: str
    secret_access_key: str
    key_prefix: str
    cdn_base_url: str
    signed_urls: bool
    signed_url_ttl_seconds: int
    connect_timeout_seconds: float
    read_timeout_seconds: float
    max_attempts: int
    multipart_threshold_bytes: int
    probe_timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStorageConfig:
        """The configuration, or ObjectStorageConfigError naming what is wrong."""
        provider = settings.sticker_object_storage_provider.strip().lower()
        if provider not in SUPPORTED_PROVIDERS:
            raise ObjectStorageConfigError(
                f"STICKER_OBJECT_STORAGE_PROVIDER={settings.sticker_object_storage_provider!r} is not "
                "supported; use s3 (any S3-compatible store: AWS, MinIO, R2, Ceph, rclone serve s3)"
            )
        bucket = settings.sticker_object_storage_bucket.strip()
        if not bucket:
            raise ObjectStorageConfigError(
                "STICKER_OBJECT_STORAGE_ENABLED is on but STICKER_OBJECT_STORAGE_BUCKET is empty; "
                "set the bucket name (or turn object storage off)"
            )
        if not _BUCKET_PATTERN.match(bucket) or ".." in bucket:
            raise ObjectStorageConfigError(
                f"STICKER_OBJECT_STORAGE_BUCKET={bucket!r} is not a bucket name: use 3-63 lowercase "
                "letters, digits, dots and hyphens"
            )
        prefix = settings.sticker_object_storage_key_prefix.strip().strip("/")
        if prefix and (not _PREFIX_PATTERN.match(prefix) or ".." in prefix or "//" in prefix):
            raise ObjectStorageConfigError(
                f"STICKER_OBJECT_STORAGE_KEY_PREFIX={settings.sticker_object_storage_key_prefix!r}: use "
                "lowercase letters, digits and / _ . - (at most 128), e.g. stickers"
            )
        access_key = settings.sticker_object_storage_access_key_id.strip()
        secret_key = settings.sticker_object_storage_secret_access_key.strip()
        if bool(access_key) != bool(secret_key):
            raise ObjectStorageConfigError(
                "set both STICKER_OBJECT_STORAGE_ACCESS_KEY_ID and STICKER_OBJECT_STORAGE_SECRET_ACCESS_KEY, "
                "or neither (then the AWS credential chain is used: environment, profile, instance role)"
            )
        timeout = settings.sticker_object_storage_upload_timeout_ms / 1000.0
        return cls(
            bucket=bucket,
            region=settings.sticker_object_storage_region.strip() or "us-east-1",
            endpoint=_clean_endpoint(settings.sticker_object_storage_endpoint),
            force_path_style=settings.sticker_object_storage_force_path_style,
            access_key_id=access_key,
            secret_access_key=secret_key,
            key_prefix=prefix,
            cdn_base_url=_clean_base_url(settings.sticker_object_storage_cdn_base_url),
            signed_urls=settings.sticker_object_storage_signed_url_enabled,
            signed_url_ttl_seconds=settings.sticker_object_storage_signed_url_ttl_seconds,
            connect_timeout_seconds=min(5.0, timeout),
            read_timeout_seconds=timeout,
            max_attempts=settings.sticker_object_storage_max_attempts,
            multipart_threshold_bytes=settings.sticker_object_storage_multipart_threshold_bytes,
            probe_timeout_seconds=settings.sticker_object_storage_health_check_timeout_ms / 1000.0,
        )


def _clean_endpoint(value: str) -> str:
    text = value.strip().rstrip("/")
    if not text:
        return ""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ObjectStorageConfigError(
            f"STICKER_OBJECT_STORAGE_ENDPOINT={value!r} is not a URL: use http(s)://host[:port], "
            "e.g. http://127.0.0.1:9000 (leave it empty for AWS S3)"
        )
    if parts.path or parts.query or parts.fragment or parts.username:
        raise ObjectStorageConfigError(
            f"STICKER_OBJECT_STORAGE_ENDPOINT={value!r} has a path, query or credentials; give only "
            "http(s)://host[:port] (the bucket is STICKER_OBJECT_STORAGE_BUCKET)"
        )
    return f"{parts.scheme}://{_netloc(parts.scheme, parts.hostname, parts.port)}"


def _clean_base_url(value: str) -> str:
    text = value.strip().rstrip("/")
    if not text:
        return ""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ObjectStorageConfigError(
            f"STICKER_OBJECT_STORAGE_CDN_BASE_URL={value!r} is not a base URL: use "
            "https://cdn.example.com[/path] (no query)"
        )
    return text


def _netloc(scheme: str, hostname: str, port: int | None) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    default = 443 if scheme == "https" else 80
    return host if port in (None, default) else f"{host}:{port}"


# --- Signature V4, query form (presigned GET) --------------------------------------------------------


def _quote(text: str, safe: str = "") -> str:
    return urllib.parse.quote(text, safe=_UNRESERVED + safe)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def presign_get(
    *,
    scheme: str,
    host: str,
    path: str,
    region: str,
    credentials: Credentials,
    signed_at: dt.datetime,
    expires_in: int,
) -> str:
    """A presigned GET URL for `scheme://host/path` (path not yet encoded), valid `expires_in` seconds
    from `signed_at`: AWS Signature Version 4 with the signature in the query string."""
    stamp = signed_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    scope = f"{day}/{region}/s3/aws4_request"
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{credentials.access_key}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(int(expires_in)),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.token:
        query["X-Amz-Security-Token"] = credentials.token
    canonical_query = "&".join(f"{_quote(name)}={_quote(value)}" for name, value in sorted(query.items()))
    canonical_path = _quote(path, safe="/")
    canonical_request = "\n".join(
        ["GET", canonical_path, canonical_query, f"host:{host}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            stamp,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + credentials.secret_key).encode("utf-8"), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{scheme}://{host}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"


# --- the store -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD tells about a stored object."""

    size: int
    etag: str
    sha256: str | None  # our metadata; some stores forget user metadata (rclone's local backend)
    content_type: str | None
    cache_control: str | None

    def matches(self, size: int, sha256: str, md5_hex: str | None = None) -> bool:
        """True when the object is the file with this size and hash, as far as HEAD can tell: our
        SHA-256 metadata if kept, else a plain MD5 ETag (single-part uploads), else the size."""
        if self.size != size:
            return False
        if self.sha256:
            return self.sha256.lower() == sha256.lower()
        plain = _PLAIN_MD5_ETAG.match(self.etag or "")
        if plain and md5_hex is not None:
            return plain.group(1) == md5_hex
        return True


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: float | None  # epoch seconds; None for unsigned (CDN / public bucket) URLs


class S3Storage:
    """The Storage interface on an S3-compatible bucket. Thread-safe (boto3 clients are)."""

    name = "s3"

    def __init__(self, config: ObjectStorageConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._client: Any = None
        self._probe_client: Any = None
        self._session: Any = None
        # (object key, ttl) → URL of the current signing window: signing costs ~0.2 ms, a lookup ~nothing.
        self._signed: dict[tuple[str, int], tuple[int, SignedUrl]] = {}
        if config.endpoint:
            scheme, _, netloc = config.endpoint.partition("://")
        else:
            scheme, netloc = "https", f"s3.{config.region}.amazonaws.com"
        self._scheme = scheme
        if config.force_path_style:
            self._host, self._path_prefix = netloc, f"/{config.bucket}/"
        else:
            self._host, self._path_prefix = f"{config.bucket}.{netloc}", "/"

    # --- clients ---------------------------------------------------------------------------------
    def _boto_session(self) -> Any:
        import boto3.session  # imported on first use: local-only deployments never load boto3

        if self._session is None:
            if self.config.access_key_id:
                self._session = boto3.session.Session(
                    aws_access_key_id=self.config.access_key_id,
                    aws_secret_access_key=self.config.secret_access_key,
                    region_name=self.config.region,
                )
            else:
                self._session = boto3.session.Session(region_name=self.config.region)
        return self._session

    def _make_client(self, *, connect_timeout: float, read_timeout: float, attempts: int) -> Any:
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": attempts},
            s3={"addressing_style": "path" if self.config.force_path_style else "virtual"},
            # Checksums only where S3 requires them: many S3-compatible stores reject the trailing
            # checksums newer botocore adds by default. Single uploads carry Content-MD5 instead.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=32,
        )
        return self._boto_session().client("s3", endpoint_url=self.config.endpoint or None, config=config)

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client(
                        connect_timeout=self.config.connect_timeout_seconds,
                        read_timeout=self.config.read_timeout_seconds,
                        attempts=self.config.max_attempts,
                    )
        return self._client

    @property
    def probe_client(self) -> Any:
        """Short timeouts and one try: a health probe must answer fast, not patiently."""
        if self._probe_client is None:
            with self._lock:
                if self._probe_client is None:
                    timeout = self.config.probe_timeout_seconds
                    self._probe_client = self._make_client(
                        connect_timeout=timeout, read_timeout=timeout, attempts=1
                    )
        return self._probe_client

    # --- keys ------------------------------------------------------------------------------------
    def object_key(self, key: str) -> str:
        """Object key of a storage key: the configured prefix, then the content address."""
        validate_key(key)
        return f"{self.config.key_prefix}/{key}" if self.config.key_prefix else key

    def uri(self, key: str) -> str:
        """What `sticker_asset.object_storage_key` records: `s3://<bucket>/<object key>`."""
        return f"{URI_SCHEME}{self.config.bucket}/{self.object_key(key)}"

    def object_key_of_uri(self, uri: str | None) -> str | None:
        """The object key recorded in `uri` when it names this bucket; None otherwise (not uploaded
        here, e.g. recorded for another bucket before a reconfiguration)."""
        if not uri or not uri.startswith(URI_SCHEME):
            return None
        bucket, _, object_key = uri[len(URI_SCHEME) :].partition("/")
        if bucket != self.config.bucket or not object_key:
            return None
        return object_key

    # --- Storage interface -----------------------------------------------------------------------
    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        *,
        sha256: str | None = None,
    ) -> None:
        object_key = self.object_key(key)
        digest = sha256 or hashlib.sha256(data).hexdigest()
        arguments = {
            "ContentType": content_type,
            "CacheControl": IMMUTABLE_CACHE_CONTROL,
            "Metadata": {SHA256_METADATA: digest},
        }
        try:
            if len(data) >= self.config.multipart_threshold_bytes:
                self._put_in_parts(object_key, data, arguments)
            else:
                md5 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")
                self.client.put_object(
                    Bucket=self.config.bucket, Key=object_key, Body=data, ContentMD5=md5, **arguments
                )
        except Exception as exc:
            raise self._storage_error("upload", object_key, exc) from exc

    def _put_in_parts(self, object_key: str, data: bytes, arguments: dict[str, Any]) -> None:
        from boto3.s3.transfer import TransferConfig

        size = self.config.multipart_threshold_bytes
        transfer = TransferConfig(
            multipart_threshold=size, multipart_chunksize=size, max_concurrency=4, use_threads=True
        )
        # s3transfer aborts the multipart upload when a part fails, so no half object stays behind.
        self.client.upload_fileobj(
            io.BytesIO(data), self.config.bucket, object_key, ExtraArgs=arguments, Config=transfer
        )

    def get(self, key: str) -> bytes:
        return self.get_object(self.object_key(key))

    def get_object(self, object_key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.config.bucket, Key=object_key)
            return bytes(response["Body"].read())
        except Exception as exc:
            raise self._storage_error("read", object_key, exc) from exc

    def head(self, key: str) -> ObjectInfo | None:
        return self.head_object(self.object_key(key))

    def head_object(self, object_key: str) -> ObjectInfo | None:
        """What the store says about the object, or None when it has none under that key."""
        try:
            response = self.client.head_object(Bucket=self.config.bucket, Key=object_key)
        except Exception as exc:
            error = self._storage_error("inspect", object_key, exc)
            if isinstance(error, ObjectNotFound):
                return None
            raise error from exc
        metadata = {name.lower(): value for name, value in (response.get("Metadata") or {}).items()}
        return ObjectInfo(
            size=int(response.get("ContentLength", -1)),
            etag=str(response.get("ETag", "")).lower(),
            sha256=metadata.get(SHA256_METADATA),
            content_type=response.get("ContentType"),
            cache_control=response.get("CacheControl"),
        )

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def delete(self, key: str) -> None:
        object_key = self.object_key(key)
        try:
            self.client.delete_object(Bucket=self.config.bucket, Key=object_key)
        except Exception as exc:
            error = self._storage_error("delete", object_key, exc)
            if not isinstance(error, ObjectNotFound):
                raise error from exc

    def url(self, key: str, *, expires_in: int | None = None) -> str | None:
        found = self.url_for_object(self.object_key(key), expires_in=expires_in)
        return found.url if found is not None else None

    def list_object_keys(self, prefix: str | None = None) -> Iterator[str]:
        """Every object key under `prefix` (default: the configured key prefix)."""
        start = self.config.key_prefix + "/" if prefix is None and self.config.key_prefix else prefix or ""
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.config.bucket, Prefix=start):
                for item in page.get("Contents") or ():
                    yield str(item["Key"])
        except Exception as exc:
            raise self._storage_error("list", start or "/", exc) from exc

    # --- URLs ------------------------------------------------------------------------------------
    @property
    def download_origin(self) -> str:
        """scheme://host[:port] that redirected clients download from (for the pages' CSP)."""
        if not self.config.signed_urls and self.config.cdn_base_url:
            parts = urllib.parse.urlsplit(self.config.cdn_base_url)
            return f"{parts.scheme}://{parts.netloc}"
        return f"{self._scheme}://{self._host}"

    def url_for_object(self, object_key: str, *, expires_in: int | None = None) -> SignedUrl | None:
        """A URL a client can GET the object from: presigned (default), or with signing off the CDN
        base URL, else the bucket's own URL (a public bucket). None when no credentials can sign."""
        if not self.config.signed_urls:
            base = self.config.cdn_base_url or f"{self._scheme}://{self._host}{self._path_prefix.rstrip('/')}"
            return SignedUrl(f"{base}/{_quote(object_key, safe='/')}", None)
        ttl = int(expires_in or self.config.signed_url_ttl_seconds)
        # Rounded down to a quarter of the TTL: the same URL for everyone within that window.
        window = max(1, ttl // 4)
        signed_epoch = int(self._clock()) // window * window
        cached = self._signed.get((object_key, ttl))
        if cached is not None and cached[0] == signed_epoch:
            return cached[1]
        credentials = self._credentials()
        if credentials is None:
            return None
        url = presign_get(
            scheme=self._scheme,
            host=self._host,
            path=self._path_prefix + object_key,
            region=self.config.region,
            credentials=credentials,
            signed_at=dt.datetime.fromtimestamp(signed_epoch, dt.UTC),
            expires_in=ttl,
        )
        signed = SignedUrl(url, float(signed_epoch + ttl))
        if len(self._signed) >= SIGNED_URL_CACHE_SIZE:
            self._signed.clear()  # crude but bounded; the next window would replace them anyway
        self._signed[(object_key, ttl)] = (signed_epoch, signed)
        return signed

    def _credentials(self) -> Credentials | None:
        if self.config.access_key_id:
            return Credentials(self.config.access_key_id, self.config.secret_access_key)
        try:
            found = self._boto_session().get_credentials()
            frozen = found.get_frozen_credentials() if found is not None else None
        except Exception:  # a failing credential provider must not fail the request: serve locally
            logger.exception("object storage: could not load AWS credentials to sign a URL")
            return None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            return None
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    # --- health ----------------------------------------------------------------------------------
    def probe(self) -> None:
        """Raise StorageError unless the bucket answers right now (HEAD bucket, one short try)."""
        try:
            self.probe_client.head_bucket(Bucket=self.config.bucket)
        except Exception as exc:
            raise self._storage_error("reach", f"bucket {self.config.bucket}", exc) from exc

    # --- errors ----------------------------------------------------------------------------------
    def _storage_error(self, action: str, what: str, exc: Exception) -> StorageError:
        """A StorageError whose message says what failed and, where known, how to fix it."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        if isinstance(exc, StorageError):
            return exc
        cause: BaseException = exc
        if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, Exception):
            cause = exc.__context__
        where = self.config.endpoint or "AWS S3"
        if isinstance(cause, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
            return StoreUnavailable(f"could not {action} {what}: the object store at {where} is unreachable")
        if isinstance(cause, ReadTimeoutError):
            return StoreUnavailable(f"could not {action} {what}: the object store at {where} timed out")
        if isinstance(cause, NoCredentialsError):
            return StorageError(
                f"could not {action} {what}: no credentials; set STICKER_OBJECT_STORAGE_ACCESS_KEY_ID "
                "and STICKER_OBJECT_STORAGE_SECRET_ACCESS_KEY"
            )
        if isinstance(cause, ClientError):
            error = cause.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code == "NoSuchBucket":
                return StorageError(
                    f"could not {action} {what}: bucket {self.config.bucket} does not exist; create it "
                    "or fix STICKER_OBJECT_STORAGE_BUCKET"
                )
            if code in ("NoSuchKey", "NotFound", "404") or status == 404:
                return ObjectNotFound(f"object {what} is not in bucket {self.config.bucket}")
            refused = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403")
            if code in refused or status == 403:
                return StorageError(
                    f"could not {action} {what}: the store refused the credentials ({code or status}); "
                    "check STICKER_OBJECT_STORAGE_ACCESS_KEY_ID / _SECRET_ACCESS_KEY and the bucket policy"
                )
            if status >= 500:
                return StoreUnavailable(f"could not {action} {what}: the store answered {status} {code}")
            return StorageError(f"could not {action} {what}: the store answered {status} {code}")
        if isinstance(cause, BotoCoreError):
            return StoreUnavailable(f"could not {action} {what}: {type(cause).__name__}")
        return StorageError(f"could not {action} {what}: {type(cause).__name__}: {cause}")


def object_storage(settings: Settings, *, clock: Callable[[], float] = time.time) -> S3Storage | None:
    """The configured object store, or None when STICKER_OBJECT_STORAGE_ENABLED is off.
    Raises ObjectStorageConfigError when it is on but cannot work."""
    if not settings.sticker_object_storage_enabled:
        return None
    return S3Storage(ObjectStorageConfig.from_settings(settings), clock=clock)


def download_origins(settings: Settings) -> list[str]:
    """Origins sticker redirects may point to with these settings; none when storage is off or
    cannot work (then nothing is redirected)."""
    try:
        store = object_storage(settings)
    except ObjectStorageConfigError:
        return []
    return [store.download_origin] if store is not None else []


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
