"""Sticker files in the formats a Telegram sticker set accepts.

Static: WEBP with one side exactly 512 px (the other ≤ 512), at most 512 KB.
Video: WEBM, VP9, one side exactly 512 px, at most 3 s, at most 30 fps, at most 256 KB, no audio.
Our animated stickers are animated WebP; FFmpeg cannot decode those, so Pillow decodes the frames and
PyAV encodes the VP9 video (with alpha, so transparent stickers stay transparent).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
from PIL import Image, ImageSequence

SIDE = 512
STATIC_MAX_BYTES = 512 * 1024
VIDEO_MAX_BYTES = 256 * 1024
VIDEO_MAX_MS = 3000
VIDEO_FPS = 30
# Constant-quality levels tried in turn until the file fits (63 is VP9's lowest quality).
VIDEO_CRF_STEPS = (30, 38, 46, 54, 63)


class StickerFormatError(ValueError):
    """The file cannot be made into a Telegram sticker within Telegram's limits."""


@dataclass(frozen=True)
class TelegramStickerFile:
    data: bytes
    format: str  # "static" or "video", InputSticker.format
    filename: str
    duration_ms: int = 0


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


def decode_frames(data: bytes) -> list[tuple[Image.Image, int]]:
    """(RGBA frame, duration ms) for every frame of an animated image."""
    frames: list[tuple[Image.Image, int]] = []
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            duration = int(frame.info.get("duration") or 100)
            frames.append((frame.convert("RGBA"), max(duration, 1)))
    if not frames:
        raise StickerFormatError("the animated sticker has no frames")
    return frames


def timeline(durations: list[int]) -> list[int]:
    """Index of the source frame shown at each 1/30 s tick of the first 3 seconds."""
    total = min(sum(durations), VIDEO_MAX_MS)
    ticks = max(1, total * VIDEO_FPS // 1000)
    starts: list[int] = []
    elapsed = 0
    for duration in durations:
        starts.append(elapsed)
        elapsed += duration
    shown: list[int] = []
    index = 0
    for tick in range(ticks):
        moment = tick * 1000 / VIDEO_FPS
        while index + 1 < len(starts) and starts[index + 1] <= moment:
            index += 1
        shown.append(index)
    return shown


def _encode_webm(images: list[Image.Image], order: list[int], crf: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx-vp9", rate=VIDEO_FPS)
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuva420p"
        stream.time_base = Fraction(1, VIDEO_FPS)
        stream.options = {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
        for pts, index in enumerate(order):
            frame = av.VideoFrame.from_image(images[index])
            frame.pts = pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def video_sticker(data: bytes) -> TelegramStickerFile:
    """An animated WebP as a VP9 WEBM video sticker: first 3 s, 30 fps, ≤ 256 KB, no audio."""
    frames = decode_frames(data)
    size = fit_side(*frames[0][0].size)
    # VP9 with yuva420p needs even sides.
    size = (
        size[0] - size[0] % 2 if size[0] != SIDE else SIDE,
        size[1] - size[1] % 2 if size[1] != SIDE else SIDE,
    )
    images = [
        image.resize(size, Image.Resampling.LANCZOS) if image.size != size else image for image, _ in frames
    ]
    order = timeline([duration for _, duration in frames])
    for crf in VIDEO_CRF_STEPS:
        encoded = _encode_webm(images, order, crf)
        if len(encoded) <= VIDEO_MAX_BYTES:
            return TelegramStickerFile(encoded, "video", "sticker.webm", len(order) * 1000 // VIDEO_FPS)
    raise StickerFormatError("the animated sticker does not fit Telegram's 256 KB video limit")


def telegram_sticker(data: bytes, *, animated: bool) -> TelegramStickerFile:
    return video_sticker(data) if animated else static_sticker(data)
