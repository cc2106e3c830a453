"""Sticker files in the formats a Telegram sticker set accepts.

Static: WEBP with one side exactly 512 px (the other ≤ 512), at most 512 KB.
Video: WEBM, VP9, one side exactly 512 px, at most 3 s, at most 30 fps, at most 256 KB, no audio.
Our animated stickers are animated WebP; `omnizap.core.stickers.convert` turns them into the VP9 video
(with alpha, so transparent stickers stay transparent).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from omnizap.core.stickers.convert import sticker_to_telegram_webm
from omnizap.core.stickers.errors import MediaRejected

SIDE = 512
STATIC_MAX_BYTES = 512 * 1024
VIDEO_MAX_BYTES = 256 * 1024


class StickerFormatError(ValueError):
    """The file cannot be made into a Telegram sticker within Telegram's limits."""


@dataclass(frozen=True)
class TelegramStickerFile:
    data: bytes
    format: str  # "static" or "video", InputSticker.format
    filename: str


def fit_side(width: int, height: int) -> tuple[int, int]:
    """Scale so the longer side is exactly 512 (Telegram's rule), keeping the aspect ratio."""
    scale = SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def static_sticker(data: bytes) -> TelegramStickerFile:
    """The WebP as it is when it already fits, else resized and re-encoded until it does."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "WEBP" and max(image.size) == SIDE and len(data) <= STATIC_MAX_BYTES:
            return TelegramStickerFile(data, "static", "sticker.webp")
        frame = image.convert("RGBA")
    frame = frame.resize(fit_side(*frame.size), Image.Resampling.LANCZOS)
    for options in ({"lossless": True}, {"quality": 90}, {"quality": 75}, {"quality": 50}, {"quality": 25}):
        buffer = io.BytesIO()
        frame.save(buffer, "WEBP", method=6, **options)
        if buffer.tell() <= STATIC_MAX_BYTES:
            return TelegramStickerFile(buffer.getvalue(), "static", "sticker.webp")
    raise StickerFormatError("the sticker does not fit Telegram's 512 KB limit even at low quality")


def video_sticker(data: bytes) -> TelegramStickerFile:
    """An animated WebP as a VP9 WEBM video sticker (the core's conversion: 512 px side, ≤ 3 s, ≤ 30 fps,
    ≤ 256 KB, no audio, alpha kept; bomb and truncation checks included)."""
    try:
        encoded = sticker_to_telegram_webm(data, max_bytes=VIDEO_MAX_BYTES)
    except MediaRejected as exc:
        raise StickerFormatError(str(exc)) from exc
    return TelegramStickerFile(encoded, "video", "sticker.webm")


def telegram_sticker(data: bytes, *, animated: bool) -> TelegramStickerFile:
    return video_sticker(data) if animated else static_sticker(data)
