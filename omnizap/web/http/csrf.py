"""Cross-site request forgery guard for state-changing requests (POST, PUT, PATCH, DELETE).

A request is accepted only when its `Origin` header (or, when a browser sent none, the origin of
its `Referer`) is SITE_ORIGIN. Browsers always send one of them on cross-site form posts and
fetches, and a page on another site cannot forge either. Requests with neither are refused too:
clients other than browsers must send `Origin: <SITE_ORIGIN>` themselves.

Use it as a route dependency: `dependencies=[Depends(require_same_origin)]` (it lets safe methods
through, so it can sit on a whole router).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from fastapi import Request

from omnizap.web.api.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_origin(url: str | None) -> str | None:
    """`scheme://host[:port]` lowercased, default port dropped; None for anything else ("null")."""
    if not url:
        return None
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def request_origin(headers: Mapping[str, str]) -> str | None:
    """The origin a browser says the request comes from: `Origin`, else the `Referer`'s origin."""
    origin = headers.get("origin")
    if origin is not None:
        return normalized_origin(origin)
    return normalized_origin(headers.get("referer"))


def is_same_origin(headers: Mapping[str, str], site_origin: str) -> bool:
    expected = normalized_origin(site_origin)
    found = request_origin(headers)
    return expected is not None and found == expected


class CrossSiteRequest(ApiError):
    def __init__(self, site_origin: str) -> None:
        super().__init__(
            403,
            "CSRF_REJECTED",
            "This request must come from a page of this site: its Origin (or Referer) header must be "
            f"{normalized_origin(site_origin) or site_origin}.",
        )


def require_same_origin(request: Request) -> None:
    """FastAPI dependency: refuse state-changing requests from other origins (403 CSRF_REJECTED)."""
    if request.method in SAFE_METHODS:
        return
    settings = request.app.state.runtime.settings
    if not is_same_origin(request.headers, settings.site_origin):
        raise CrossSiteRequest(settings.site_origin)
