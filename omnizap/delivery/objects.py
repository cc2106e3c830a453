"""Redirect or serve locally: the delivery decision for one sticker request (pipeline §9, runbook phase 4).

A request is redirected (302 to a presigned or CDN URL of the object) only when all hold, checked in
this order; the first that fails names the reason it is served from local disk instead:

| check | reason when it fails |
|---|---|
| object storage configured (STICKER_OBJECT_STORAGE_ENABLED, bucket) | `storage_off` |
| the full sticker was asked for (previews stay local) | `preview` |
| `enable_object_storage_delivery` is on for this viewer | `rollout` |
| the asset was uploaded to this bucket and verified (`sticker_asset.object_storage_key`) | `not_uploaded` |
| the store answered its latest health probe | `store_unavailable` |
| a URL could be made (credentials to sign with) | `no_url` |

Each answer is counted in `omnizap_sticker_delivery_total{mode="redirect"|"local", reason}`.
The flag is asked per viewer, so at a partial rollout one viewer always gets the same mode; the flag
cache (FEATURE_FLAG_CACHE_TTL_MS) bounds how long an emergency disable takes to reach a process.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from omnizap.config import Settings
from omnizap.delivery.stickers import StickerLocation
from omnizap.platform.flags import FeatureFlags
from omnizap.platform.storage import S3Storage, StoreHealth

REDIRECT_FLAG = "enable_object_storage_delivery"
# The original's private caching of the redirect; never longer than half of what the URL has left.
REDIRECT_MAX_AGE_SECONDS = 45
LOCAL_REASONS = ("storage_off", "preview", "rollout", "not_uploaded", "store_unavailable", "no_url")
REDIRECT_REASONS = ("presigned", "unsigned")


class DeliveryMetrics:
    """`omnizap_sticker_delivery_total{mode,reason}`; label values come from fixed lists only."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.total = Counter(
            "omnizap_sticker_delivery_total",
            "Sticker file requests by how they were answered: redirect to the object store, or local "
            "disk and why.",
            ["mode", "reason"],
            registry=registry,
        )
        self._children = {
            (mode, reason): self.total.labels(mode, reason)
            for mode, reasons in (("local", LOCAL_REASONS), ("redirect", REDIRECT_REASONS))
            for reason in reasons
        }

    def count(self, mode: str, reason: str) -> None:
        self._children[(mode, reason)].inc()


@dataclass(frozen=True)
class Redirect:
    location: str
    cache_control: str


def viewer_subject(
    *, viewer_key: str | None, cookie_token: str | None, client_address: str, secret: bytes
) -> str:
    """The rollout subject of a request: the viewer's key or cookie (as interactions identify a
    viewer, so one person gets one decision everywhere), else a keyed hash of the client address
    (stable, never stored). Arguments must already be validated; invalid ones are passed as None."""
    if viewer_key:
        return viewer_key
    if cookie_token:
        return "cookie:" + cookie_token
    digest = hmac.new(secret, b"delivery|" + client_address.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "client:" + digest.hexdigest()[:32]


class ObjectDelivery:
    """Decides per request; holds the store, the flags, the store's health and the counters."""

    def __init__(
        self,
        store: S3Storage | None,
        flags: FeatureFlags,
        *,
        metrics: DeliveryMetrics,
        health: StoreHealth | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.flags = flags
        self.metrics = metrics
        self._clock = clock
        if health is None and store is not None:
            health = StoreHealth(store.probe, interval_seconds=5.0, name="object store")
        self.health = health

    @classmethod
    def for_runtime(cls, runtime: Any, metrics: DeliveryMetrics) -> ObjectDelivery:
        settings: Settings = runtime.settings
        store: S3Storage | None = runtime.object_storage
        health = None
        if store is not None:
            health = StoreHealth(
                store.probe,
                interval_seconds=settings.sticker_object_storage_health_check_interval_ms / 1000.0,
                name=f"object store {store.config.endpoint or 'AWS S3'}/{store.config.bucket}",
            )
        return cls(store, runtime.flags, metrics=metrics, health=health)

    def local(self, reason: str) -> None:
        self.metrics.count("local", reason)

    def redirect_for(
        self, location: StickerLocation, subject: Callable[[], str], *, preview: bool = False
    ) -> Redirect | None:
        """The redirect for this viewer, or None (counted with its reason) to serve from disk.
        `subject` is called only when the flag has to be asked (it hashes the client address)."""
        store = self.store
        if store is None:
            return self._local("storage_off")
        if preview:
            return self._local("preview")
        if not self.flags.is_enabled(REDIRECT_FLAG, subject()):
            return self._local("rollout")
        object_key = store.object_key_of_uri(location.object_uri)
        if object_key is None:
            return self._local("not_uploaded")
        if self.health is not None and not self.health.healthy():
            return self._local("store_unavailable")
        url = store.url_for_object(object_key)
        if url is None:
            return self._local("no_url")
        max_age = REDIRECT_MAX_AGE_SECONDS
        if url.expires_at is not None:
            max_age = max(0, min(max_age, int((url.expires_at - self._clock()) // 2)))
        self.metrics.count("redirect", "presigned" if url.expires_at is not None else "unsigned")
        return Redirect(url.url, f"private, max-age={max_age}")

    def _local(self, reason: str) -> None:
        self.metrics.count("local", reason)
        return None
