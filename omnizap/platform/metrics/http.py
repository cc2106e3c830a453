"""HTTP request metrics (reference http §14): names, labels, buckets and route groups of the original.

- `omnizap_http_requests_total{service,route_group,method,status_class}`
- `omnizap_http_request_duration_ms{service,route_group,method,status_class}` (histogram, ms)
- `omnizap_http_slo_violation_total{service,route_group,method}`: requests that took at least
  HTTP_SLO_TARGET_MS.

Label values are bounded: route groups are a fixed list, methods outside the standard set become
`OTHER`, and status classes are `1xx`…`5xx` or `unknown`, so no client can create new series.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from omnizap.config import Settings

HTTP_DURATION_BUCKETS_MS = (5, 10, 20, 40, 75, 120, 200, 350, 500, 750, 1000, 2000, 5000, 10000)
ROUTE_GROUPS = (
    "catalog_api_public",
    "catalog_api_auth",
    "catalog_api_admin",
    "catalog_api_upload",
    "catalog_web",
    "catalog_data_asset",
    "catalog_user_profile",
    "marketplace_stats",
    "metrics",
    "sitemap",
    "other",
)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
OTHER_METHOD = "OTHER"
UNKNOWN_METHOD = "UNKNOWN"
MAX_METHOD_LABEL = 12
MARKETPLACE_STATS_PATH = "/api/marketplace/stats"
SITEMAP_PATH = "/sitemap.xml"
HOME_PATH = "/"
STATIC_PREFIX = "/static/"
_UPLOAD_SEGMENT = re.compile(r"/(manage|finalize|stickers-upload|publish-state)(/|$)")


def method_label(method: str) -> str:
    """Uppercased standard method; anything else is `OTHER` (so junk methods add no series)."""
    normalized = (method or "").strip().upper()[:MAX_METHOD_LABEL]
    if not normalized:
        return UNKNOWN_METHOD
    return normalized if normalized in KNOWN_METHODS else OTHER_METHOD


def status_class(status: int) -> str:
    if 100 <= status <= 599:
        return f"{status // 100}xx"
    return "unknown"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _clean_prefix(value: str) -> str:
    return "/" + value.strip("/") if value.strip("/") else "/"


@dataclass(frozen=True)
class RouteGroupPaths:
    """The configurable prefixes route groups are computed from (STICKER_* paths, METRICS_PATH)."""

    metrics_path: str = "/metrics"
    api_base_path: str = "/api/sticker-packs"
    web_path: str = "/stickers"
    data_public_path: str = "/data"
    user_profile_path: str = "/user"

    @classmethod
    def from_settings(cls, settings: Settings) -> RouteGroupPaths:
        return cls(
            metrics_path=settings.metrics_path or "/metrics",
            api_base_path=_clean_prefix(settings.sticker_api_base_path),
            web_path=_clean_prefix(settings.sticker_web_path),
            data_public_path=_clean_prefix(settings.sticker_data_public_path),
            user_profile_path=_clean_prefix(settings.user_profile_web_path),
        )


def resolve_route_group(path: str, paths: RouteGroupPaths) -> str:
    """The original's `resolveRouteGroup` (http §14.2), first match wins.

    Additions, all in `catalog_web`: the home page `/` and the pages' `/static/*` files, which the
    original served from nginx outside the Node server; they are the catalog's pages and count
    toward its SLO. Health probes, robots.txt and the API docs fall to `other`.
    """
    if path.startswith(paths.metrics_path):
        return "metrics"
    if path == SITEMAP_PATH:
        return "sitemap"
    if path == MARKETPLACE_STATS_PATH:
        return "marketplace_stats"
    api = paths.api_base_path
    if _under(path, api):
        if path in (f"{api}/auth/google/session", f"{api}/me", f"{api}/admin/session"):
            return "catalog_api_auth"
        if path == f"{api}/create" or _UPLOAD_SEGMENT.search(path):
            return "catalog_api_upload"
        if path.startswith(f"{api}/admin"):
            return "catalog_api_admin"
        return "catalog_api_public"
    if _under(path, paths.data_public_path):
        return "catalog_data_asset"
    if path in (paths.user_profile_path, paths.user_profile_path + "/"):
        return "catalog_user_profile"
    if _under(path, paths.web_path) or path == HOME_PATH or path.startswith(STATIC_PREFIX):
        return "catalog_web"
    return "other"


class HttpMetrics:
    """The three HTTP series. Label children are cached, so recording a request is a dict lookup
    and three increments (memory-mapped files in multi-process mode)."""

    def __init__(self, *, service: str, slo_target_ms: float, registry: CollectorRegistry | None) -> None:
        self.service = service
        self.slo_target_ms = float(slo_target_ms)
        self.registry = registry
        self.requests = Counter(
            "omnizap_http_requests_total",
            "HTTP requests answered, by route group, method and status class.",
            ["service", "route_group", "method", "status_class"],
            registry=registry,
        )
        self.duration = Histogram(
            "omnizap_http_request_duration_ms",
            "Time from receiving a request to sending the last byte of its answer, in milliseconds.",
            ["service", "route_group", "method", "status_class"],
            buckets=HTTP_DURATION_BUCKETS_MS,
            registry=registry,
        )
        self.slo_violations = Counter(
            "omnizap_http_slo_violation_total",
            "HTTP requests that took at least HTTP_SLO_TARGET_MS.",
            ["service", "route_group", "method"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}
        self._lock = threading.Lock()

    def _children_for(self, route_group: str, method: str, status: str) -> tuple[Any, Any, Any]:
        key = (route_group, method, status)
        found = self._children.get(key)
        if found is None:
            with self._lock:
                found = (
                    self.requests.labels(self.service, route_group, method, status),
                    self.duration.labels(self.service, route_group, method, status),
                    self.slo_violations.labels(self.service, route_group, method),
                )
                self._children[key] = found
        return found

    def observe(self, *, route_group: str, method: str, status: int, duration_ms: float) -> None:
        """Record one answered request. `method` may be raw; it is normalized here."""
        if route_group not in ROUTE_GROUPS:
            route_group = "other"
        requests, duration, slo = self._children_for(route_group, method_label(method), status_class(status))
        requests.inc()
        duration.observe(duration_ms)
        if duration_ms >= self.slo_target_ms:
            slo.inc()
