"""Why a file cannot become a sticker. Each refusal has a stable code and says how to fix the input."""

from __future__ import annotations

from typing import Any

from omnizap.core.errors import InvalidInput

EMPTY_FILE = "EMPTY_FILE"
TOO_LARGE = "TOO_LARGE"
UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
TRUNCATED_FILE = "TRUNCATED_FILE"
CORRUPT_FILE = "CORRUPT_FILE"
DECOMPRESSION_BOMB = "DECOMPRESSION_BOMB"
DIMENSIONS_TOO_LARGE = "DIMENSIONS_TOO_LARGE"
NO_FRAMES = "NO_FRAMES"
STICKER_TOO_COMPLEX = "STICKER_TOO_COMPLEX"
INVALID_STICKER = "INVALID_STICKER"
INVALID_METADATA = "INVALID_METADATA"
NOT_ANIMATED = "NOT_ANIMATED"  # a conversion that needs an animation was given a static sticker
# Text stickers (/st, /stw, /stb): `details` carries the numbers the chat reply shows.
TEXT_EMPTY = "TEXT_EMPTY"
TEXT_TOO_LONG = "TEXT_TOO_LONG"  # details: length, limit
TEXT_TOO_MANY_LINES = "TEXT_TOO_MANY_LINES"  # details: lines, limit
TEXT_CONTROL_CHARACTER = "TEXT_CONTROL_CHARACTER"  # details: codepoint ("U+0007"), position
INVALID_COLOR = "INVALID_COLOR"  # details: color

# HTTP status per code, for the web upload path (413 for "too big", 422 for "understood but unusable").
_HTTP_STATUS = {
    TOO_LARGE: 413,
    DECOMPRESSION_BOMB: 413,
    DIMENSIONS_TOO_LARGE: 413,
    STICKER_TOO_COMPLEX: 422,
    INVALID_STICKER: 422,
    NO_FRAMES: 422,
}


class MediaRejected(InvalidInput):
    """The input cannot become a sticker; `code` is one of the constants above."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, details=details)
        self.http_status = _HTTP_STATUS.get(code, 400)
