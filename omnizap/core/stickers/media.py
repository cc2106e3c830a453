"""Decode an image, GIF or video and encode a WhatsApp-valid sticker.

Output rules (WhatsApp's validator): 512×512 WebP; static ≤ 100 KB, animated ≤ 500 KB; every frame
≥ 8 ms and ≤ 10 s in total. The picture keeps its aspect ratio, centred on transparent padding (the
original stretched it). Sizes are met by size-targeted encoding: lossless or high quality first, then
lower quality, then fewer frames per second (animations), then fewer colours; an input that still
cannot fit is refused with STICKER_TOO_COMPLEX.

Decoders: Pillow for images and animated WebP/GIF/APNG, PyAV (bundled ffmpeg) for MP4/WebM.
Every limit that headers reveal is checked before decoding (`formats.probe_source`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFile, ImageOps

from omnizap.core.stickers.errors import (
    CORRUPT_FILE,
    DECOMPRESSION_BOMB,
    INVALID_STICKER,
    NO_FRAMES,
    STICKER_TOO_COMPLEX,
    TRUNCATED_FILE,
    MediaRejected,
)
from omnizap.core.stickers.exif import (
    StickerMetadata,
    embed_sticker_metadata,
    read_sticker_metadata,
    sticker_exif_size,
)
from omnizap.core.stickers.formats import (
    SourceFormat,
    SourceProbe,
    check_dimensions,
    effective_delay_ms,
    probe_source,
)
from omnizap.core.stickers.integrity import check_jpeg_complete, check_png_complete, jpeg_may_be_short
from omnizap.core.stickers.limits import (
    STICKER_SIDE,
    WHATSAPP_ANIMATED_MAX_BYTES,
    WHATSAPP_MAX_DURATION_MS,
    WHATSAPP_MIN_FRAME_MS,
    WHATSAPP_STATIC_MAX_BYTES,
    IngestLimits,
)
from omnizap.core.stickers.webp import WebpFormatError, WebpInfo, exif_overhead, inspect_webp

_PILLOW_FORMAT = {
    SourceFormat.PNG: "PNG",
    SourceFormat.JPEG: "JPEG",
    SourceFormat.GIF: "GIF",
    SourceFormat.WEBP: "WEBP",
}
_AV_DEMUXER = {SourceFormat.MP4: "mov", SourceFormat.WEBM: "matroska"}

# Encoder ladders. Qualities are libwebp's 0–100; fps caps bound frames (and memory) of animations.
STATIC_QUALITIES = (90, 80, 70, 60, 50, 40, 30, 20, 10, 0)
ANIMATION_FPS_LADDER = (15, 12, 10, 8, 6, 5)
ANIMATION_QUALITIES = (75, 60, 45)
ANIMATION_LAST_RESORT_QUALITIES = (30, 15, 0)
REDUCED_PALETTES = (64, 16)
# Relative size of an animation at each quality, on the flat side on purpose: predictions from it may
# only skip a candidate that is clearly too big, never one that might have fit.
_QUALITY_SIZE_FACTOR = {75: 1.0, 60: 0.85, 45: 0.72, 30: 0.6, 15: 0.45, 0: 0.3}
_SKIP_MARGIN = 1.1
LOSSY_METHOD = 4  # libwebp effort: 4 is its default balance; 6 is ~50× slower for ~5% less
# Static stickers try the top quality at method 2 first: half the time of method 4 on a 512 px
# photo (no rate-distortion optimisation) for 0-10% more bytes and an SSIM at most 0.003 lower. A
# picture that does not fit that way (fine grain, noise: there method 2 can be 70% bigger) gets
# method 4's ladder as before, so only easy pictures take the shortcut (docs/benchmarks.md, Ingest).
FAST_STATIC_METHOD = 2
LOSSLESS_PROBE = {"lossless": True, "quality": 0, "method": 0}  # fastest lossless, an upper bound
LOSSLESS_FINAL = {"lossless": True, "quality": 25, "method": 1}


@dataclass(frozen=True)
class ConvertedSticker:
    data: bytes
    is_animated: bool
    frame_count: int
    duration_ms: int
    source_format: SourceFormat
    encoding: str  # how the size was met, e.g. "lossless", "lossy q80", "lossy q45 @10fps"
    width: int = STICKER_SIDE
    height: int = STICKER_SIDE


@dataclass
class _Frame:
    image: Image.Image  # 512×512 RGBA, content centred on transparent padding
    start_ms: int


def configure_pillow(limits: IngestLimits) -> None:
    """Pillow's own decompression-bomb guard, as a second line behind the header checks.

    Process-wide by Pillow's design; every ingest sets the same configured value. Loading truncated
    images is switched off again here, whoever switched it on: with it on, Pillow pads a cut-off file
    with grey instead of raising, and a broken upload would become a broken sticker.
    """
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False


def convert_to_sticker(
    data: bytes,
    *,
    metadata: StickerMetadata,
    limits: IngestLimits | None = None,
    keep_existing_metadata: bool = False,
) -> ConvertedSticker:
    """Turn `data` (PNG, JPEG, WebP, GIF, MP4, WebM) into a sticker with `metadata` embedded.

    An input that is already a valid WhatsApp sticker is not re-encoded (no quality loss); its
    metadata is kept when `keep_existing_metadata` is set and it has some, otherwise replaced.
    Raises MediaRejected with a specific code for anything that cannot become a sticker.
    """
    limits = limits or IngestLimits()
    configure_pillow(limits)
    probe = probe_source(data, limits)
    if probe.format is SourceFormat.PNG:
        check_png_complete(data, limits)
    if probe.format is SourceFormat.WEBP and (probe.width, probe.height) == (STICKER_SIDE, STICKER_SIDE):
        passthrough = _try_passthrough(data, probe, metadata, limits, keep_existing_metadata)
        if passthrough is not None:
            return passthrough

    exif_budget = exif_overhead(sticker_exif_size(metadata), simple_format=True)
    if probe.format.is_video:
        frames, total_ms = _decode_video(data, probe.format, limits)
        prefer_lossless = False
    elif (probe.frame_count or 1) > 1:
        frames, total_ms = _decode_image_animation(data, probe, limits)
        prefer_lossless = probe.lossless
    else:
        frames, total_ms = [_Frame(_decode_still(data, probe), 0)], 0
        prefer_lossless = probe.lossless and _lossless_may_fit(
            len(data), probe, limits.static_max_bytes - exif_budget
        )

    if len(frames) == 1 or len(_timeline(frames, total_ms, ANIMATION_FPS_LADDER[0])) == 1:
        # A one-frame animation or video (or one whose frames all fall in one instant) is static.
        encoded, label = _encode_static(
            frames[0].image, prefer_lossless, limits.static_max_bytes - exif_budget
        )
    else:
        encoded, label = _encode_animation(
            frames, total_ms, prefer_lossless, limits.animated_max_bytes - exif_budget
        )
        if inspect_webp(encoded).frame_count == 1:
            # The encoder merged frames it found identical; one frame is a static sticker.
            encoded, label = _encode_static(
                frames[0].image, prefer_lossless, limits.static_max_bytes - exif_budget
            )
    final = embed_sticker_metadata(encoded, metadata)
    info = inspect_webp(final)
    return ConvertedSticker(
        data=final,
        is_animated=info.is_animated,
        frame_count=info.frame_count,
        duration_ms=info.duration_ms,
        source_format=probe.format,
        encoding=label,
    )


# --- validation of ready-made stickers ------------------------------------------------------------


def whatsapp_sticker_problems(data: bytes, info: WebpInfo, limits: IngestLimits | None = None) -> list[str]:
    """Every WhatsApp rule the WebP breaks (empty when it is a valid sticker). Headers only."""
    limits = limits or IngestLimits()
    problems = []
    if (info.width, info.height) != (STICKER_SIDE, STICKER_SIDE):
        problems.append(f"it is {info.width}×{info.height}, stickers must be 512×512")
    limit = limits.animated_max_bytes if info.is_animated else limits.static_max_bytes
    if len(data) > limit:
        kind = "animated" if info.is_animated else "static"
        problems.append(f"it has {len(data) / 1024:.0f} KB, a {kind} sticker may have {limit // 1024} KB")
    if info.is_animated:
        shortest = min(info.frame_durations_ms)
        if shortest < WHATSAPP_MIN_FRAME_MS:
            problems.append(f"a frame lasts {shortest} ms, each frame must last at least 8 ms")
        if info.duration_ms > WHATSAPP_MAX_DURATION_MS:
            problems.append(f"it lasts {info.duration_ms / 1000:.1f} s, at most 10 s are allowed")
    return problems


def validate_whatsapp_sticker(data: bytes, limits: IngestLimits | None = None) -> WebpInfo:
    """Check a ready-made WebP sticker against WhatsApp's rules and decode every frame once."""
    limits = limits or IngestLimits()
    configure_pillow(limits)
    try:
        info = inspect_webp(data)
    except WebpFormatError as exc:
        code = TRUNCATED_FILE if exc.truncated else INVALID_STICKER
        raise MediaRejected(code, f"not a usable WebP sticker: {exc}") from exc
    problems = whatsapp_sticker_problems(data, info, limits)
    if problems:
        raise MediaRejected(INVALID_STICKER, "not a valid WhatsApp sticker: " + "; ".join(problems))
    with _open_image(data, SourceFormat.WEBP) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            _load(image, SourceFormat.WEBP)
    return info


def _try_passthrough(
    data: bytes,
    probe: SourceProbe,
    metadata: StickerMetadata,
    limits: IngestLimits,
    keep_existing_metadata: bool,
) -> ConvertedSticker | None:
    info = inspect_webp(data)
    if whatsapp_sticker_problems(data, info, limits):
        return None  # re-encode it instead
    validate_whatsapp_sticker(data, limits)
    if keep_existing_metadata and read_sticker_metadata(data):
        final = data[: 8 + int.from_bytes(data[4:8], "little")]  # bytes after the RIFF end are junk
    else:
        final = embed_sticker_metadata(data, metadata)
        if whatsapp_sticker_problems(final, info, limits):
            return None  # the metadata tipped it over the size limit: re-encode with room for it
    return ConvertedSticker(
        data=final,
        is_animated=info.is_animated,
        frame_count=info.frame_count,
        duration_ms=info.duration_ms,
        source_format=probe.format,
        encoding="unchanged",
    )


# --- decoding -------------------------------------------------------------------------------------


@contextmanager
def _open_image(data: bytes, source_format: SourceFormat) -> Iterator[Image.Image]:
    """Open with the one Pillow plugin the magic bytes named, translating Pillow's errors."""
    try:
        image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[source_format]])
    except Image.DecompressionBombError as exc:
        raise MediaRejected(
            DECOMPRESSION_BOMB, f"the {source_format.name} is too large to decode: {exc}"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaRejected(
            CORRUPT_FILE,
            f"the {source_format.name} file cannot be decoded ({exc}); re-export it and try again",
        ) from exc
    with image:
        yield image


def _load(image: Image.Image, source_format: SourceFormat) -> None:
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise MediaRejected(
            DECOMPRESSION_BOMB, f"the {source_format.name} is too large to decode: {exc}"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if "truncated" in str(exc) or isinstance(exc, EOFError):
            raise MediaRejected(
                TRUNCATED_FILE,
                f"the {source_format.name} file is incomplete ({exc}); send the whole file again",
            ) from exc
        if source_format is SourceFormat.WEBP:
            # Every chunk's size was checked against the file (probe_source), so libwebp failing on a
            # frame means the bitstream inside its chunk ends early (or is damaged: libwebp does not
            # say which, and both are fixed by sending the whole, original file again).
            raise MediaRejected(
                TRUNCATED_FILE,
                f"the WEBP file is incomplete: a frame's image data ends early or is damaged ({exc}); "
                "send the whole file again or re-export it",
            ) from exc
        raise MediaRejected(
            CORRUPT_FILE,
            f"the {source_format.name} file cannot be decoded ({exc}); re-export it and try again",
        ) from exc


def fitted_size(width: int, height: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio that fits 512×512 (one side exactly 512)."""
    scale = STICKER_SIDE / max(width, height)
    return max(1, min(STICKER_SIDE, round(width * scale))), max(1, min(STICKER_SIDE, round(height * scale)))


def _to_rgba(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # 16-bit greyscale: scale to 8 bits instead of letting convert() clip everything to white.
        image = image.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    # Always a new image: the caller must never hold on to (and later re-seek) the open file.
    return image.copy() if image.mode == "RGBA" else image.convert("RGBA")


def _pad(content: Image.Image) -> Image.Image:
    """Centre the fitted picture on a transparent 512×512 canvas."""
    if content.size == (STICKER_SIDE, STICKER_SIDE):
        return content
    canvas = Image.new("RGBA", (STICKER_SIDE, STICKER_SIDE), (0, 0, 0, 0))
    canvas.paste(content, ((STICKER_SIDE - content.width) // 2, (STICKER_SIDE - content.height) // 2))
    return canvas


# Modes without transparency, resized as they are: Pillow resizes RGBA by converting it to
# premultiplied RGBa and back, two full-size passes that change nothing while every alpha is 255.
_OPAQUE_RESIZE_MODES = ("RGB", "L")


def _fit_and_pad(image: Image.Image) -> Image.Image:
    size = fitted_size(*image.size)
    if image.size != size:
        # reducing_gap: a fast integer reduction first, then Lanczos on the last ~3× (same look).
        if image.mode not in _OPAQUE_RESIZE_MODES:
            image = _to_rgba(image)
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _pad(_to_rgba(image))


def _decode_still(data: bytes, probe: SourceProbe) -> Image.Image:
    with _open_image(data, probe.format) as image:
        if probe.format is SourceFormat.JPEG:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers 512 px: much faster.
            image.draft(image.mode, fitted_size(*image.size))
        _load(image, probe.format)
        if probe.format is SourceFormat.JPEG and jpeg_may_be_short(image):
            check_jpeg_complete(data, probe.width, probe.height)
        upright = ImageOps.exif_transpose(image)  # phone photos are stored sideways plus a tag
        return _fit_and_pad(upright)


def _lossless_may_fit(source_bytes: int, probe: SourceProbe, budget: int) -> bool:
    """Whether a lossless encode is worth trying, judged from the compressed source size.

    A lossless source shrunk to 512 px keeps roughly its bytes per pixel, and WebP lossless beats
    PNG; twice the budget leaves room for that. Upscaled sources are not extrapolated (pixel art
    stays lossless). Skipping a doomed try saves a few ms on photo-like PNGs.
    """
    shrink = min(1.0, STICKER_SIDE * STICKER_SIDE / max(1, probe.width * probe.height))
    return source_bytes * shrink <= 2 * budget


def _append_changed(frames: list[_Frame], image: Image.Image, start_ms: int) -> None:
    """Add a frame unless it repeats the previous one (which then simply stays on screen longer)."""
    if frames and frames[-1].image.tobytes() == image.tobytes():
        return
    frames.append(_Frame(image, start_ms))


def _decode_image_animation(
    data: bytes, probe: SourceProbe, limits: IngestLimits
) -> tuple[list[_Frame], int]:
    """Frames of an animated GIF/WebP/PNG inside the time cut, at most ANIMATION_FPS_LADDER[0] per second."""
    min_step = math.ceil(1000 / ANIMATION_FPS_LADDER[0])
    frames: list[_Frame] = []
    elapsed = 0
    with _open_image(data, probe.format) as image:
        frame_total = getattr(image, "n_frames", 1)
        if frame_total > limits.max_frames:
            raise MediaRejected(
                DECOMPRESSION_BOMB, f"the {probe.format.name} has more than {limits.max_frames} frames"
            )
        for index in range(frame_total):
            if elapsed >= limits.max_duration_ms:
                break
            try:
                image.seek(index)
            except EOFError as exc:
                raise MediaRejected(
                    TRUNCATED_FILE, f"the {probe.format.name} file ends at frame {index}; send the whole file"
                ) from exc
            _load(image, probe.format)
            if not frames or elapsed >= frames[-1].start_ms + min_step:
                _append_changed(frames, _fit_and_pad(image), elapsed)
            elapsed += effective_delay_ms(int(image.info.get("duration") or 0))
    if not frames:
        raise MediaRejected(NO_FRAMES, f"the {probe.format.name} has no frames")
    return frames, min(elapsed, limits.max_duration_ms)


def _decode_video(data: bytes, source_format: SourceFormat, limits: IngestLimits) -> tuple[list[_Frame], int]:
    """Frames of the first video track up to the time cut, at most ANIMATION_FPS_LADDER[0] per second."""
    import av  # loaded on first video only: importing PyAV costs ~150 ms
    import av.error

    min_step = math.ceil(1000 / ANIMATION_FPS_LADDER[0])
    frames: list[_Frame] = []
    try:
        # An explicit demuxer: ffmpeg never probes the bytes as a playlist or another container.
        # Tags in a broken encoding must not stop the import: they are never used.
        container = av.open(
            io.BytesIO(data), mode="r", format=_AV_DEMUXER[source_format], metadata_errors="replace"
        )
    except (av.error.FFmpegError, ValueError) as exc:
        raise MediaRejected(
            CORRUPT_FILE, f"the {source_format.name} file cannot be read ({exc}); re-export it and try again"
        ) from exc
    with container:
        if not container.streams.video:
            raise MediaRejected(
                NO_FRAMES, f"the {source_format.name} has no video track (it has no frames or only audio)"
            )
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise MediaRejected(
                CORRUPT_FILE, f"the {source_format.name} video track uses a codec that cannot be decoded"
            )
        stream.thread_type = "AUTO"
        check_dimensions(source_format, stream.codec_context.width, stream.codec_context.height, limits)
        rate = stream.average_rate or stream.guessed_rate or 25
        frame_interval_ms = max(1, round(1000 / float(rate)))
        first_time: float | None = None
        last_start = -1
        decoded = 0
        try:
            for frame in _stream_frames(container, stream, source_format):
                decoded += 1
                seconds = frame.time if frame.time is not None else decoded / float(rate)
                if first_time is None:
                    first_time = seconds
                start_ms = round((seconds - first_time) * 1000)
                if start_ms >= limits.max_duration_ms or decoded > limits.max_frames:
                    break
                if start_ms <= last_start:
                    continue  # out-of-order or duplicate timestamp
                last_start = start_ms
                if frames and start_ms < frames[-1].start_ms + min_step:
                    continue
                _append_changed(frames, _video_frame_image(frame), start_ms)
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaRejected(
                CORRUPT_FILE, f"the {source_format.name} video cannot be decoded ({exc}); re-export it"
            ) from exc
    if not frames:
        raise MediaRejected(NO_FRAMES, f"the {source_format.name} video has no frames to show")
    total_ms = min(limits.max_duration_ms, last_start + frame_interval_ms)
    return frames, total_ms


def _stream_frames(container: Any, stream: Any, source_format: SourceFormat) -> Iterator[Any]:
    """Decoded frames of `stream`, refusing a stream cut short inside a container that looks whole.

    ffmpeg marks a packet it could only partly read as corrupt and otherwise just stops early, so
    the packets are also counted against the frame count of the container's index (MP4; 0 when the
    container has none). The check after the loop runs only when the caller reads every frame.
    """
    declared = stream.frames or 0
    packets = 0
    for packet in container.demux(stream):
        if packet.is_corrupt:
            raise MediaRejected(
                TRUNCATED_FILE,
                f"the {source_format.name} video is incomplete: its frame {packets + 1} is cut short; "
                "send the whole file again",
            )
        if packet.size:
            packets += 1
        yield from packet.decode()
    if declared and packets < declared:
        raise MediaRejected(
            TRUNCATED_FILE,
            f"the {source_format.name} video is incomplete: its index lists {declared} frames but only "
            f"{packets} are in the file; send the whole file again",
        )


_ROTATIONS = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def _video_frame_image(frame: Any) -> Image.Image:
    """The frame as shown by a player: the container's rotation applied, scaled by swscale to fit."""
    rotation = round(getattr(frame, "rotation", 0) or 0) % 360
    rotation = rotation if rotation in _ROTATIONS else 0
    sideways = rotation in (90, 270)
    shown_width, shown_height = (frame.height, frame.width) if sideways else (frame.width, frame.height)
    target_width, target_height = fitted_size(shown_width, shown_height)
    if sideways:
        target_width, target_height = target_height, target_width
    image = frame.to_image(width=target_width, height=target_height, interpolation="AREA")
    if rotation:
        image = image.transpose(_ROTATIONS[rotation])  # counter-clockwise, like the display matrix
    return _pad(image.convert("RGBA"))


# --- encoding -------------------------------------------------------------------------------------


def _webp_still(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", **options)
    return buffer.getvalue()


def _encode_static(canvas: Image.Image, prefer_lossless: bool, budget: int) -> tuple[bytes, str]:
    """Best-looking static WebP within `budget` bytes."""
    if prefer_lossless:
        probe = _webp_still(canvas, **LOSSLESS_PROBE)
        if len(probe) <= budget:
            final = _webp_still(canvas, **LOSSLESS_FINAL)
            return (final if len(final) <= len(probe) else probe), "lossless"

    fast = _webp_still(canvas, quality=STATIC_QUALITIES[0], method=FAST_STATIC_METHOD)
    if len(fast) <= budget:
        return fast, f"lossy q{STATIC_QUALITIES[0]}"

    def lossy(quality: int) -> bytes:
        return _webp_still(canvas, quality=quality, method=LOSSY_METHOD)

    found = _highest_fitting(STATIC_QUALITIES, lossy, budget)
    if found is not None:
        quality, data = found
        return data, f"lossy q{quality}"
    smallest = _webp_still(canvas, quality=0, method=6)
    if len(smallest) <= budget:
        return smallest, "lossy q0 (max effort)"
    for colours in REDUCED_PALETTES:  # last resort: flatten detail by cutting the palette
        reduced = canvas.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        reduced_rgba = reduced.convert("RGBA")
        for options, label in ((LOSSLESS_FINAL, "lossless"), ({"quality": 0, "method": 6}, "lossy q0")):
            data = _webp_still(reduced_rgba, **options)
            if len(data) <= budget:
                return data, f"{label}, {colours} colours"
    raise MediaRejected(
        STICKER_TOO_COMPLEX,
        f"the picture cannot be encoded under {budget // 1024} KB even at the lowest quality; "
        "use a simpler or smaller picture",
    )


_TRIED_IN_ORDER = 3  # qualities tried top down before bisecting the rest...
_NEAR_MISS = 1.5  # ...while the last try was at most this much over the budget


def _highest_fitting(
    qualities: Sequence[int], encode: Callable[[int], bytes], budget: int
) -> tuple[int, bytes] | None:
    """Highest quality (list is descending) whose encoding fits; size falls with quality.

    A photo that misses at the first quality mostly fits one or two steps lower (each step of 10
    takes 20-35% off), so after a near miss those are tried in order; far misses (noise, fine
    grain) and everything after that are bisected. The lowest quality is not tried up front: a
    picture that fits nowhere is rare. Same answer as a plain search, in fewer encodes.
    """
    results: dict[int, bytes] = {}

    def fits(index: int) -> bool:
        if index not in results:
            results[index] = encode(qualities[index])
        return len(results[index]) <= budget

    low = 0  # invariant: nothing before `low` fits
    while low < min(_TRIED_IN_ORDER, len(qualities)):
        if fits(low):
            return qualities[low], results[low]
        low += 1
        if len(results[low - 1]) > budget * _NEAR_MISS:
            break
    high = len(qualities)  # invariant: `high` fits, or it is past the end and nothing tried fits
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    if high == len(qualities):
        return None
    return qualities[high], results[high]


def retime(starts: Sequence[int], total_ms: int, min_step_ms: int) -> list[tuple[int, int]]:
    """(frame index, duration ms) keeping frames at least `min_step_ms` apart and lasting `total_ms`.

    Frames that come too soon after the previous kept one are dropped (it stays on screen longer), so
    slower source timing is kept exactly and every duration is ≥ min_step_ms, the last one included.
    """
    kept: list[int] = []
    for index, start in enumerate(starts):
        if start >= total_ms:
            break
        if not kept or start >= starts[kept[-1]] + min_step_ms:
            kept.append(index)
    if len(kept) > 1 and total_ms - starts[kept[-1]] < min_step_ms:
        kept.pop()  # a too-short last frame: the one before it holds until the end instead
    timeline = [starts[index] for index in kept] + [total_ms]
    return [(index, timeline[position + 1] - timeline[position]) for position, index in enumerate(kept)]


def _timeline(frames: Sequence[_Frame], total_ms: int, fps: int) -> list[tuple[int, int]]:
    min_step = max(WHATSAPP_MIN_FRAME_MS, math.ceil(1000 / fps))
    return retime([frame.start_ms for frame in frames], total_ms, min_step)


def _webp_animation(images: Sequence[Image.Image], durations: Sequence[int], **options: Any) -> bytes:
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        "WEBP",
        save_all=True,
        append_images=list(images[1:]),
        duration=list(durations),
        loop=0,
        background=(0, 0, 0, 0),
        kmin=0,
        kmax=0,  # no forced key frames: nobody seeks in a sticker, and they cost size and time
        **options,
    )
    return buffer.getvalue()


def _encode_animation(
    frames: Sequence[_Frame], total_ms: int, prefer_lossless: bool, budget: int
) -> tuple[bytes, str]:
    """Best-looking animated WebP within `budget`: quality first, then fps, then colours."""
    timelines: list[tuple[int, list[tuple[int, int]]]] = []
    for fps in ANIMATION_FPS_LADDER:
        timeline = _timeline(frames, total_ms, fps)
        # A lower fps is a new step only if it drops frames, and never down to one (that is static).
        if len(timeline) >= 2 and (not timelines or len(timeline) < len(timelines[-1][1])):
            timelines.append((fps, timeline))

    # Candidates from best to worst: (fps, timeline, quality or None for lossless, palette colours).
    candidates: list[tuple[int, list[tuple[int, int]], int | None, int | None]] = []
    if prefer_lossless:
        candidates.append((*timelines[0], None, None))
    for fps, timeline in timelines:
        candidates.extend((fps, timeline, quality, None) for quality in ANIMATION_QUALITIES)
    slowest_fps, slowest = timelines[-1]
    candidates.extend((slowest_fps, slowest, quality, None) for quality in ANIMATION_LAST_RESORT_QUALITIES)
    candidates.extend((slowest_fps, slowest, 0, colours) for colours in REDUCED_PALETTES)

    if prefer_lossless:
        # A lossless animation is only worth a try when even half a frame per frame would fit.
        probe = _webp_still(frames[0].image, **LOSSLESS_PROBE)
        if len(probe) * len(timelines[0][1]) * 0.5 > budget:
            candidates.pop(0)

    measured: tuple[int, int, int] | None = None  # (frames, quality, bytes) of the last lossy try
    for position, (fps, timeline, quality, colours) in enumerate(candidates):
        is_last = position == len(candidates) - 1
        if measured is not None and quality is not None and not is_last and colours is None:
            measured_frames, measured_quality, measured_size = measured
            predicted = (
                measured_size
                * len(timeline)
                / measured_frames
                * _QUALITY_SIZE_FACTOR[quality]
                / _QUALITY_SIZE_FACTOR[measured_quality]
            )
            if predicted > budget * _SKIP_MARGIN:
                continue
        images = [frames[index].image for index, _ in timeline]
        if colours is not None:
            images = [
                image.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).convert(
                    "RGBA"
                )
                for image in images
            ]
        durations = [duration for _, duration in timeline]
        if quality is None:
            data = _webp_animation(images, durations, **LOSSLESS_FINAL)
            label = "lossless"
        else:
            data = _webp_animation(images, durations, quality=quality, method=LOSSY_METHOD)
            label = f"lossy q{quality}"
            if colours is None:
                measured = (len(timeline), quality, len(data))
        if len(data) <= budget:
            suffix = f", {colours} colours" if colours else ""
            return data, f"{label} @{fps}fps{suffix}"
    raise MediaRejected(
        STICKER_TOO_COMPLEX,
        f"the animation cannot be encoded under {budget // 1024} KB even at "
        f"{slowest_fps} fps and the lowest quality; use a shorter or simpler clip",
    )


__all__ = [
    "WHATSAPP_ANIMATED_MAX_BYTES",
    "WHATSAPP_STATIC_MAX_BYTES",
    "ConvertedSticker",
    "configure_pillow",
    "convert_to_sticker",
    "fitted_size",
    "retime",
    "validate_whatsapp_sticker",
    "whatsapp_sticker_problems",
]
