"""Stickers out to other formats, for the chat commands /toimg, /tovideo, /tovid (chat §4.5).

- `sticker_to_png`: the picture as an RGBA PNG; an animated sticker gives its first frame.
- `sticker_to_mp4`: a real H.264 MP4 (yuv420p, even sides, no B-frames so every player keeps the
  timing), transparency flattened onto `background` (white by default), every frame's duration
  kept (variable frame rate, millisecond timestamps). A static sticker becomes a 2-second video of
  the still picture (at 10 fps, so players that dislike one-frame videos still show it).
- `sticker_to_telegram_webm`: a Telegram video sticker: WEBM, VP9 with alpha (yuva420p), one side
  exactly 512 px, at most 30 fps, at most 3 s, at most 256 KB, no audio. A longer animation is
  first played faster, at most twice as fast, and what still runs past 3 s is cut. The size is met
  by raising the VP9 CRF, then by lowering the frame rate (down to 5 fps). A static sticker is refused
  (NOT_ANIMATED): Telegram takes static stickers as images, use `sticker_to_png`.

The original only exported animated stickers unchanged (§4.5); these are real conversions.
Input: the bytes of a WebP sticker, at most 2 MiB (the original's limit); a picture larger than
512 px is scaled down to fit 512×512 first (outputs are sticker-sized). Animated WebP is decoded
by Pillow (ffmpeg cannot decode animated WebP), PyAV encodes. Every refusal is a MediaRejected with
a message about the file itself, never a server path; headers are checked before decoding
(`probe_source`: dimensions, frame count and total decoded pixels), and only the first 10 s of an
animation are used (WhatsApp's longest sticker).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from PIL import Image, ImageColor

from omnizap.core.stickers.errors import (
    CORRUPT_FILE,
    EMPTY_FILE,
    INVALID_COLOR,
    NOT_ANIMATED,
    STICKER_TOO_COMPLEX,
    TOO_LARGE,
    TRUNCATED_FILE,
    UNSUPPORTED_FORMAT,
    MediaRejected,
)
from omnizap.core.stickers.formats import SourceFormat, effective_delay_ms, probe_source
from omnizap.core.stickers.limits import STICKER_SIDE, IngestLimits
from omnizap.core.stickers.media import _load, _open_image, configure_pillow, fitted_size, retime

MAX_STICKER_BYTES = 2 * 1024 * 1024  # the original's /toimg limit

MP4_STILL_SECONDS = 2
MP4_STILL_FPS = 10
MP4_OPTIONS = {"crf": "23", "preset": "veryfast", "bf": "0", "tune": "animation"}

TELEGRAM_SIDE = 512
TELEGRAM_MAX_MS = 3000
TELEGRAM_MAX_SPEEDUP = 2.0
TELEGRAM_MAX_BYTES = 256 * 1024
TELEGRAM_FPS_LADDER = (30, 20, 15, 10, 8, 5)
TELEGRAM_CRF_LADDER = (30, 36, 42, 48, 54, 63)  # VP9 CRF: higher is smaller and blurrier
_VP9_OPTIONS = {
    "b": "0",  # constant quality: the CRF alone decides
    "deadline": "good",
    "cpu-used": "4",
    "row-mt": "1",
    "auto-alt-ref": "0",  # libvpx cannot use alt-ref frames together with an alpha channel
    "lag-in-frames": "0",
}
_MILLISECOND = Fraction(1, 1000)
# A lower frame rate is skipped when the last try, scaled by frame count, is this much over the
# limit: frames of one animation cost about the same, and the margin keeps borderline tries.
_SKIP_MARGIN = 1.5


@dataclass
class _Animation:
    frames: list[Image.Image]  # RGBA, the sticker's own size, fully composited
    durations_ms: list[int]
    is_animated: bool


def sticker_to_png(webp: bytes, *, limits: IngestLimits | None = None) -> bytes:
    """The sticker as an RGBA PNG; an animated sticker gives its first frame."""
    animation = _decode(webp, limits or IngestLimits(), first_frame_only=True)
    buffer = io.BytesIO()
    animation.frames[0].save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def sticker_to_mp4(webp: bytes, *, background: str = "white", limits: IngestLimits | None = None) -> bytes:
    """An H.264 MP4 of the sticker on `background` (any CSS colour); a still becomes a 2 s video."""
    fill = _background(background)
    animation = _decode(webp, limits or IngestLimits(), first_frame_only=False)
    frames, durations = animation.frames, animation.durations_ms
    if not animation.is_animated:
        count = MP4_STILL_SECONDS * MP4_STILL_FPS
        frames, durations = frames * count, [1000 // MP4_STILL_FPS] * count
    width, height = (side + side % 2 for side in frames[0].size)  # yuv420p needs even sides
    flattened = [_flatten(frame, fill, (width, height)) for frame in frames]
    return _encode_video(
        "mp4", "libx264", "yuv420p", MP4_OPTIONS, flattened, durations, (width, height), rgba=False
    )


def sticker_to_telegram_webm(
    webp: bytes, *, max_bytes: int = TELEGRAM_MAX_BYTES, limits: IngestLimits | None = None
) -> bytes:
    """A Telegram video sticker (WEBM VP9 with alpha, 512 px side, ≤ 3 s, ≤ 30 fps, ≤ `max_bytes`,
    by default Telegram's 256 KB)."""
    animation = _decode(webp, limits or IngestLimits(), first_frame_only=False)
    if not animation.is_animated:
        raise MediaRejected(
            NOT_ANIMATED,
            "this sticker is not animated; a Telegram video sticker needs an animation "
            "(send a static sticker to Telegram as an image instead)",
        )
    size = _telegram_size(*animation.frames[0].size)
    frames = [
        frame if frame.size == size else frame.resize(size, Image.Resampling.LANCZOS)
        for frame in animation.frames
    ]
    starts, total_ms = _telegram_timeline(animation.durations_ms)

    def encode(timeline: list[tuple[int, int]], crf: int) -> bytes:
        options = {**_VP9_OPTIONS, "crf": str(crf)}
        return _encode_video(
            "webm",
            "libvpx-vp9",
            "yuva420p",
            options,
            [frames[index] for index, _ in timeline],
            [duration for _, duration in timeline],
            size,
            rgba=True,
        )

    smallest: tuple[int, int] | None = None  # (frames, bytes) of the last try at the highest CRF
    for fps in TELEGRAM_FPS_LADDER:
        timeline = retime(starts, total_ms, math.ceil(1000 / fps))
        if smallest is not None:
            tried_frames, tried_bytes = smallest
            if len(timeline) >= tried_frames:
                continue  # this frame rate drops no frame: it cannot be smaller than the last try
            if tried_bytes * len(timeline) / tried_frames > max_bytes * _SKIP_MARGIN:
                continue  # even scaled down by its frame count it would be clearly too big
        found = _lowest_crf_fitting(lambda crf, timeline=timeline: encode(timeline, crf), max_bytes)
        if isinstance(found, bytes):
            return found
        smallest = (len(timeline), found)
    raise MediaRejected(
        STICKER_TOO_COMPLEX,
        f"the animation cannot be encoded under {max_bytes // 1024} KB as a Telegram video "
        "sticker even at 5 fps and the lowest quality; use a simpler animation",
    )


# --- decoding -------------------------------------------------------------------------------------


def _decode(webp: bytes, limits: IngestLimits, *, first_frame_only: bool) -> _Animation:
    if not webp:
        raise MediaRejected(EMPTY_FILE, "the sticker file is empty (0 bytes); send the sticker again")
    if len(webp) > MAX_STICKER_BYTES:
        raise MediaRejected(
            TOO_LARGE,
            f"the sticker has {len(webp) / 1_048_576:.1f} MB; at most "
            f"{MAX_STICKER_BYTES // 1_048_576} MB can be converted, send a smaller one",
        )
    if webp[:4] != b"RIFF" or webp[8:12] != b"WEBP":
        raise MediaRejected(
            UNSUPPORTED_FORMAT, "this file is not a WebP sticker; send or reply to a sticker to convert"
        )
    configure_pillow(limits)
    probe = probe_source(webp, limits)  # header checks: truncation, dimensions, frames, pixel budget
    frames: list[Image.Image] = []
    durations: list[int] = []
    elapsed = 0
    with _open_image(webp, SourceFormat.WEBP) as image:
        frame_total = 1 if first_frame_only else getattr(image, "n_frames", 1)
        for index in range(frame_total):
            if elapsed >= limits.max_duration_ms:
                break
            try:
                image.seek(index)
            except EOFError as exc:
                raise MediaRejected(
                    TRUNCATED_FILE, f"the sticker ends at frame {index}; send the whole sticker again"
                ) from exc
            _load(image, SourceFormat.WEBP)
            frame = image.convert("RGBA")
            if max(frame.size) > STICKER_SIDE:
                # Stickers are 512 px; bigger frames are scaled down as they arrive, so memory stays
                # at 512×512 a frame whatever the header declares (within the pixel budget).
                frame = frame.resize(fitted_size(*frame.size), Image.Resampling.LANCZOS, reducing_gap=3.0)
            frames.append(frame)
            delay = effective_delay_ms(int(image.info.get("duration") or 0))
            delay = min(delay, limits.max_duration_ms - elapsed)
            durations.append(delay)
            elapsed += delay
    if not frames:
        raise MediaRejected(CORRUPT_FILE, "the sticker has no picture; send another sticker")
    return _Animation(frames, durations, is_animated=(probe.frame_count or 1) > 1 and not first_frame_only)


# --- encoding -------------------------------------------------------------------------------------


def _encode_video(
    container_format: str,
    codec: str,
    pixel_format: str,
    options: dict[str, str],
    frames: Sequence[Image.Image],
    durations_ms: Sequence[int],
    size: tuple[int, int],
    *,
    rgba: bool,
) -> bytes:
    """Encode with PyAV at millisecond timestamps; each packet gets its frame's real duration, so
    the last frame lasts as long as in the sticker (encoders would guess it from a nominal rate)."""
    import av  # loaded on first conversion only: importing PyAV costs ~150 ms

    buffer = io.BytesIO()
    duration_by_pts: dict[int, int] = {}
    with av.open(buffer, mode="w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=30, options=dict(options))
        stream.width, stream.height = size
        stream.pix_fmt = pixel_format
        stream.time_base = _MILLISECOND
        stream.codec_context.time_base = _MILLISECOND

        def mux(packets: list[Any]) -> None:
            for packet in packets:
                if packet.pts in duration_by_pts:
                    packet.duration = duration_by_pts[packet.pts]
                container.mux(packet)

        start = 0
        for image, duration in zip(frames, durations_ms, strict=True):
            array = np.asarray(image.convert("RGBA" if rgba else "RGB"))
            frame = av.VideoFrame.from_ndarray(array, format="rgba" if rgba else "rgb24")
            frame = frame.reformat(format=pixel_format)
            frame.pts = start
            frame.time_base = _MILLISECOND
            duration_by_pts[start] = duration
            mux(stream.encode(frame))
            start += duration
        mux(stream.encode(None))
    return buffer.getvalue()


def _lowest_crf_fitting(encode: Callable[[int], bytes], budget: int) -> bytes | int:
    """The best quality (lowest CRF) whose encoding fits, by bisection over TELEGRAM_CRF_LADDER;
    when even the highest CRF does not fit, its size in bytes instead."""
    ladder = TELEGRAM_CRF_LADDER
    results: dict[int, bytes] = {}

    def fits(index: int) -> bool:
        if index not in results:
            results[index] = encode(ladder[index])
        return len(results[index]) <= budget

    if fits(0):
        return results[0]
    low, high = 1, len(ladder) - 1
    if not fits(high):
        return len(results[high])
    while low < high:  # invariant: `high` fits, everything before `low` does not
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return results[high]


def _telegram_size(width: int, height: int) -> tuple[int, int]:
    """One side exactly 512 (Telegram's rule), the other ≤ 512 and even (4:2:0 chroma)."""
    fitted_width, fitted_height = fitted_size(width, height)
    scale = TELEGRAM_SIDE / STICKER_SIDE
    fitted_width, fitted_height = round(fitted_width * scale), round(fitted_height * scale)
    return max(2, fitted_width - fitted_width % 2), max(2, fitted_height - fitted_height % 2)


def _telegram_timeline(durations_ms: Sequence[int]) -> tuple[list[int], int]:
    """Frame start times and total length within 3 s: up to 2× faster, then cut."""
    total = sum(durations_ms)
    speedup = min(TELEGRAM_MAX_SPEEDUP, max(1.0, total / TELEGRAM_MAX_MS))
    starts: list[int] = []
    elapsed = 0
    for duration in durations_ms:
        starts.append(round(elapsed / speedup))
        elapsed += duration
    return starts, min(TELEGRAM_MAX_MS, round(total / speedup))


def _background(color: str) -> tuple[int, int, int]:
    try:
        rgb = ImageColor.getrgb(color.strip())
    except (ValueError, AttributeError) as exc:
        raise MediaRejected(
            INVALID_COLOR,
            f"{str(color)[:20]!r} is not a colour; use a name such as white or black, or #rrggbb",
        ) from exc
    return rgb[0], rgb[1], rgb[2]


def _flatten(frame: Image.Image, background: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGBA", size, (*background, 255))
    canvas.alpha_composite(frame.convert("RGBA"))
    return canvas.convert("RGB")


__all__ = [
    "MAX_STICKER_BYTES",
    "TELEGRAM_MAX_BYTES",
    "sticker_to_mp4",
    "sticker_to_png",
    "sticker_to_telegram_webm",
]
