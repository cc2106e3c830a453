"""The pages' static files (CSS, JS, images), served from memory with content-hash versioning.

Files are read once and looked up by exact relative name, so no request path can reach anything
outside the folder. URLs carry `?v=<hash>`: a matching version is cached for a year (immutable);
anything else for an hour.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static"
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=3600, stale-while-revalidate=14400"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@functools.cache
def static_files() -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        suffix = path.suffix.lower()
        content_type = (
            CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        version = hashlib.sha256(body).hexdigest()[:12]
        files[path.relative_to(STATIC_DIR).as_posix()] = StaticFile(body, content_type, version)
    return files


def asset_url(name: str) -> str:
    """`/static/<name>?v=<hash>` for templates; an unknown name is a programming error."""
    found = static_files().get(name)
    if found is None:
        raise KeyError(f"no static file {name!r} in {STATIC_DIR}")
    return f"{STATIC_PREFIX}/{name}?v={found.version}"
