"""Smaller renditions of a sticker for grids (GIPHY's `fixed_height_small` idea): 96, 128 or 256 px.

A preview is rendered once per (sticker, size) and stored under a key derived from the sticker's
content hash, so every later request is a plain storage read and every process finds the same file.
Animated stickers stay animated: the one-time cost (decode each frame, shrink, encode small frames)
is a fraction of a second, and a grid of still frames would hide what an animated pack is. Frames
beyond MAX_PREVIEW_FRAMES are merged (their time added to the frame kept), bounding that cost.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageSequence

PREVIEW_SIZES = (96, 128, 256)
# Part of the storage key and the ETag: bump it when rendering changes, so old previews are not reused.
PREVIEW_RENDER_VERSION = 1
PREVIEW_QUALITY = 80
FALLBACK_ANIMATION_QUALITY = 50
PREVIEW_METHOD = 4  # libwebp effort; its default balance of speed and size
MAX_PREVIEW_FRAMES = 150  # 15 fps for WhatsApp's 10 s maximum
DEFAULT_FRAME_MS = 100


def preview_key(sha256: str, size: int) -> str:
    """Storage key of the preview: content-addressed like the sticker itself."""
    return f"previews/v{PREVIEW_RENDER_VERSION}/{size}/{sha256[:2]}/{sha256[2:4]}/{sha256}.webp"


def preview_etag(sha256: str, size: int) -> str:
    # Strong: one sticker, size and renderer version always name the same rendition.
    return f'"{sha256}-{size}-r{PREVIEW_RENDER_VERSION}"'


def _fitted(width: int, height: int, side: int) -> tuple[int, int]:
    scale = side / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(frame: Image.Image, side: int) -> Image.Image:
    rgba = frame.convert("RGBA")
    size = _fitted(rgba.width, rgba.height, side)
    if rgba.size == size:
        return rgba
    return rgba.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def render_preview(data: bytes, side: int) -> bytes:
    """A WebP whose longer side is `side` px (stickers are square, so side×side), animated if the
    sticker is. Raises OSError/ValueError (Pillow's) when `data` is not a readable image."""
    if side not in PREVIEW_SIZES:
        raise ValueError(f"preview size must be one of {PREVIEW_SIZES}, got {side}")
    with Image.open(io.BytesIO(data)) as image:
        frame_count = getattr(image, "n_frames", 1)
        if frame_count <= 1:
            buffer = io.BytesIO()
            _shrink(image, side).save(buffer, "WEBP", quality=PREVIEW_QUALITY, method=PREVIEW_METHOD)
            return buffer.getvalue()
        group = math.ceil(frame_count / MAX_PREVIEW_FRAMES)
        frames: list[Image.Image] = []
        durations: list[int] = []
        for index, frame in enumerate(ImageSequence.Iterator(image)):
            duration = int(frame.info.get("duration") or DEFAULT_FRAME_MS)
            if index % group == 0:
                frames.append(_shrink(frame, side))
                durations.append(duration)
            else:
                durations[-1] += duration
    preview = _encode_animation(frames, durations, PREVIEW_QUALITY)
    if len(preview) >= len(data):
        # Flat, losslessly stored animations can come out bigger when re-encoded lossy at this
        # quality; one cheaper try keeps the preview worth fetching.
        smaller = _encode_animation(frames, durations, FALLBACK_ANIMATION_QUALITY)
        preview = min(preview, smaller, key=len)
    return preview


def _encode_animation(frames: list[Image.Image], durations: list[int], quality: int) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        background=(0, 0, 0, 0),
        quality=quality,
        method=PREVIEW_METHOD,
    )
    return buffer.getvalue()
