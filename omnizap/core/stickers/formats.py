"""Recognise an input by its magic bytes and read its size and frame count from the headers alone.

Everything here walks container structure without decoding pixels, so a decompression bomb (a tiny
file that claims 100000×100000 pixels or thousands of frames) is refused before any memory is spent,
and a cut-off file is reported as truncated instead of as a vague decoder failure.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from omnizap.core.stickers.errors import (
    CORRUPT_FILE,
    DECOMPRESSION_BOMB,
    DIMENSIONS_TOO_LARGE,
    EMPTY_FILE,
    NO_FRAMES,
    TOO_LARGE,
    TRUNCATED_FILE,
    UNSUPPORTED_FORMAT,
    MediaRejected,
)
from omnizap.core.stickers.limits import IngestLimits
from omnizap.core.stickers.webp import WebpFormatError, inspect_webp

ACCEPTED = "PNG, JPEG, WebP, GIF, MP4 or WebM"


class SourceFormat(enum.StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    GIF = "gif"
    WEBP = "webp"
    MP4 = "mp4"
    WEBM = "webm"

    @property
    def is_video(self) -> bool:
        return self in (SourceFormat.MP4, SourceFormat.WEBM)


@dataclass(frozen=True)
class SourceProbe:
    """What the headers say. Video frame counts are unknown until decoding (`frame_count` None)."""

    format: SourceFormat
    width: int
    height: int
    frame_count: int | None
    frame_durations_ms: tuple[int, ...] = ()
    lossless: bool = False  # the source holds exact pixels (PNG, GIF, lossless WebP)


# Formats people try that we do not take, so the refusal can name what was actually sent.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"OggS", "an Ogg audio/video file"),
    (b"ID3", "an MP3 audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
)
_IMAGE_ONLY_BRANDS = {
    b"heic",
    b"heix",
    b"heim",
    b"heis",
    b"hevc",
    b"hevx",
    b"mif1",
    b"msf1",
    b"avif",
    b"avis",
}

# Durations that browsers (and WhatsApp) treat as "no delay given": shown as 100 ms.
UNSET_FRAME_DELAY_MS = 10
DEFAULT_FRAME_DELAY_MS = 100


def effective_delay_ms(delay_ms: int) -> int:
    return DEFAULT_FRAME_DELAY_MS if delay_ms <= UNSET_FRAME_DELAY_MS else delay_ms


def sniff_format(data: bytes) -> SourceFormat:
    """The format named by the first bytes; never the file name. Refuses anything else helpfully."""
    if not data:
        raise MediaRejected(EMPTY_FILE, f"the file is empty (0 bytes); send a {ACCEPTED} file")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return SourceFormat.PNG
    if data.startswith(b"\xff\xd8\xff"):
        return SourceFormat.JPEG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return SourceFormat.GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return SourceFormat.WEBP
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return SourceFormat.WEBM
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _IMAGE_ONLY_BRANDS:
            raise MediaRejected(
                UNSUPPORTED_FORMAT,
                f"HEIC/AVIF images ({brand.decode('latin-1')}) are not supported; "
                f"export the picture as JPEG or PNG and try again",
            )
        return SourceFormat.MP4
    raise MediaRejected(
        UNSUPPORTED_FORMAT,
        f"this is {_describe_unknown(data)}, not an image or video we can read; send a {ACCEPTED} file",
    )


def _describe_unknown(data: bytes) -> str:
    if data[:4] == b"RIFF":
        kind = data[8:12]
        return {b"AVI ": "an AVI video", b"WAVE": "a WAV audio file"}.get(kind, "a RIFF file")
    for signature, name in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return name
    head = data[:512]
    stripped = head.lstrip()
    if stripped[:5].lower() in (b"<svg ", b"<?xml"):
        return "an SVG/XML document"
    text = head.decode("utf-8", errors="replace")
    # One bad character is allowed: the 512-byte cut can split a multi-byte character.
    if text.count("\ufffd") <= 1 and all(char.isprintable() or char in "\r\n\t\ufffd" for char in text):
        return "a text file"
    return "an unknown format"


def probe_source(data: bytes, limits: IngestLimits) -> SourceProbe:
    """Sniff the format and read the headers, enforcing every limit that can be known before decoding."""
    if len(data) > limits.max_source_bytes:
        raise MediaRejected(
            TOO_LARGE,
            f"the file has {len(data) / 1_048_576:.1f} MB and the limit is "
            f"{limits.max_source_bytes / 1_048_576:.1f} MB; send a smaller or shorter file",
        )
    source_format = sniff_format(data)
    if source_format is SourceFormat.PNG:
        probe = _probe_png(data)
    elif source_format is SourceFormat.JPEG:
        probe = _probe_jpeg(data)
    elif source_format is SourceFormat.GIF:
        probe = _probe_gif(data, limits.max_frames)
    elif source_format is SourceFormat.WEBP:
        probe = _probe_webp(data)
    elif source_format is SourceFormat.MP4:
        probe = _probe_mp4_boxes(data)
    else:
        probe = _probe_ebml(data)
    if probe.format.is_video:
        return probe  # sizes and frames come from the decoder (media.py checks them before decoding)
    check_dimensions(probe.format, probe.width, probe.height, limits)
    if probe.frame_count is not None:
        check_frames(
            probe.format, probe.width, probe.height, probe.frame_durations_ms, probe.frame_count, limits
        )
    return probe


def check_dimensions(source_format: SourceFormat, width: int, height: int, limits: IngestLimits) -> None:
    name = source_format.name
    if width <= 0 or height <= 0:
        raise MediaRejected(CORRUPT_FILE, f"the {name} header declares an empty picture ({width}×{height})")
    if width * height > limits.max_pixels:
        raise MediaRejected(
            DECOMPRESSION_BOMB,
            f"the {name} declares {width}×{height} pixels ({width * height / 1e6:.0f} MP), over the "
            f"{limits.max_pixels / 1e6:.0f} MP limit; scale the picture down before importing it",
        )
    if max(width, height) > limits.max_side:
        raise MediaRejected(
            DIMENSIONS_TOO_LARGE,
            f"the {name} is {width}×{height}; sides over {limits.max_side} px are not accepted, "
            "scale it down before importing it",
        )


def check_frames(
    source_format: SourceFormat,
    width: int,
    height: int,
    durations_ms: Sequence[int],
    frame_count: int,
    limits: IngestLimits,
) -> None:
    """Refuse animations that would cost too much to decode: too many frames, or too many pixels."""
    name = source_format.name
    if frame_count > limits.max_frames:
        raise MediaRejected(
            DECOMPRESSION_BOMB,
            f"the {name} has more than {limits.max_frames} frames; a sticker needs far fewer, "
            "shorten the animation before importing it",
        )
    # Only frames inside the time cut are decoded, so only they count against the pixel budget.
    decoded_frames = 0
    elapsed = 0
    for delay in durations_ms or [DEFAULT_FRAME_DELAY_MS] * frame_count:
        if elapsed >= limits.max_duration_ms:
            break
        decoded_frames += 1
        elapsed += effective_delay_ms(delay)
    if width * height * decoded_frames > limits.animation_pixel_budget:
        raise MediaRejected(
            DECOMPRESSION_BOMB,
            f"the {name} animation decodes to {width * height * decoded_frames / 1e6:.0f} MP "
            f"({decoded_frames} frames of {width}×{height}), over the "
            f"{limits.animation_pixel_budget / 1e6:.0f} MP limit; use fewer or smaller frames",
        )


def _truncated(name: str, detail: str) -> MediaRejected:
    return MediaRejected(
        TRUNCATED_FILE, f"the {name} file is incomplete ({detail}); send the whole file again"
    )


def _corrupt(name: str, detail: str) -> MediaRejected:
    return MediaRejected(CORRUPT_FILE, f"the {name} file is damaged ({detail}); re-export it and try again")


# --- PNG ------------------------------------------------------------------------------------------


def _probe_png(data: bytes) -> SourceProbe:
    position = 8
    width = height = 0
    frame_count = 1
    durations: list[int] = []
    seen_ihdr = False
    while True:
        if position + 8 > len(data):
            raise _truncated("PNG", "it ends before the IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, position)
        if not seen_ihdr and (kind != b"IHDR" or length != 13):
            raise _corrupt("PNG", "it does not start with an image header (IHDR chunk)")
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise _corrupt("PNG", f"chunk {kind!r} is not a valid PNG chunk")
        body = position + 8
        end = body + length + 4  # + CRC
        if end > len(data):
            raise _truncated("PNG", f"it ends inside the {kind.decode('latin-1')} chunk")
        if not seen_ihdr:
            width, height = struct.unpack_from(">II", data, body)
            seen_ihdr = True
        elif kind == b"acTL" and length >= 8:
            frame_count = max(1, struct.unpack_from(">I", data, body)[0])
        elif kind == b"fcTL" and length >= 26:
            numerator, denominator = struct.unpack_from(">HH", data, body + 20)
            durations.append(round(numerator * 1000 / (denominator or 100)))
        elif kind == b"IEND":
            break
        position = end
    return SourceProbe(SourceFormat.PNG, width, height, frame_count, tuple(durations), lossless=True)


# --- JPEG -----------------------------------------------------------------------------------------

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD9)}


def _probe_jpeg(data: bytes) -> SourceProbe:
    position = 2
    while True:
        while position < len(data) and data[position] == 0xFF:
            position += 1  # fill bytes before a marker
        if position >= len(data):
            raise _truncated("JPEG", "it ends before the frame header")
        marker = data[position]
        position += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):
            raise _corrupt("JPEG", "image data starts before any frame header")
        if position + 2 > len(data):
            raise _truncated("JPEG", "it ends inside a header segment")
        (length,) = struct.unpack_from(">H", data, position)
        if length < 2:
            raise _corrupt("JPEG", "a header segment has an impossible length")
        if marker in _SOF_MARKERS:
            if position + 7 > len(data):
                raise _truncated("JPEG", "it ends inside the frame header")
            height, width = struct.unpack_from(">HH", data, position + 3)
            return SourceProbe(SourceFormat.JPEG, width, height, 1)
        position += length
        if position < len(data) and data[position] != 0xFF:
            raise _corrupt("JPEG", "a header segment is not followed by a marker")


# --- GIF ------------------------------------------------------------------------------------------


def _skip_sub_blocks(data: bytes, position: int) -> int:
    """Position after a chain of GIF data sub-blocks (each: size byte, bytes; a 0 size ends it)."""
    while True:
        if position >= len(data):
            raise _truncated("GIF", "it ends inside a frame")
        size = data[position]
        position += 1 + size
        if size == 0:
            return position


def _probe_gif(data: bytes, max_frames: int) -> SourceProbe:
    if len(data) < 13:
        raise _truncated("GIF", "it ends inside the header")
    width, height, packed = struct.unpack_from("<HHB", data, 6)
    position = 13
    if packed & 0x80:
        position += 3 * (2 << (packed & 0x07))  # global colour table
    durations: list[int] = []
    pending_delay = 0
    frame_width = frame_height = 0
    while True:
        if position >= len(data):
            if not durations:
                raise _truncated("GIF", "it ends before the first frame")
            break  # complete frames but no trailer byte: common in the wild, accepted
        block = data[position]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension
            if position + 2 > len(data):
                raise _truncated("GIF", "it ends inside an extension block")
            label = data[position + 1]
            if label == 0xF9 and position + 8 <= len(data) and data[position + 2] == 4:
                pending_delay = struct.unpack_from("<H", data, position + 4)[0] * 10
            position = _skip_sub_blocks(data, position + 2)
        elif block == 0x2C:  # image descriptor
            if position + 10 > len(data):
                raise _truncated("GIF", "it ends inside a frame header")
            left, top, frame_w, frame_h, local = struct.unpack_from("<HHHHB", data, position + 1)
            frame_width = max(frame_width, left + frame_w)
            frame_height = max(frame_height, top + frame_h)
            position += 10
            if local & 0x80:
                position += 3 * (2 << (local & 0x07))
            position = _skip_sub_blocks(data, position + 1)  # +1: LZW minimum code size
            durations.append(pending_delay)
            pending_delay = 0
            if len(durations) > max_frames:
                break  # enough to refuse it; no need to walk the rest
        else:
            if durations:
                break  # junk after complete frames: decoders stop here too
            raise _corrupt("GIF", f"unknown block type 0x{block:02x}")
    # Frames may extend past the declared screen; decoders grow the canvas, so count the larger size.
    return SourceProbe(
        SourceFormat.GIF,
        max(width, frame_width),
        max(height, frame_height),
        len(durations),
        tuple(durations),
        lossless=True,
    )


# --- WebP -----------------------------------------------------------------------------------------


def _probe_webp(data: bytes) -> SourceProbe:
    try:
        info = inspect_webp(data)
    except WebpFormatError as exc:
        if exc.truncated:
            raise _truncated("WebP", str(exc)) from exc
        raise _corrupt("WebP", str(exc)) from exc
    return SourceProbe(
        SourceFormat.WEBP,
        info.width,
        info.height,
        info.frame_count,
        info.frame_durations_ms,
        lossless=info.is_lossless,
    )


# --- video containers -----------------------------------------------------------------------------


def _probe_mp4_boxes(data: bytes) -> SourceProbe:
    """Walk the top-level ISO-BMFF boxes: a box that runs past the end means the upload was cut."""
    position = 0
    kinds: set[bytes] = set()
    while position < len(data):
        if position + 8 > len(data):
            raise _truncated("MP4", "it ends inside a box header")
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1:
            if position + 16 > len(data):
                raise _truncated("MP4", "it ends inside a box header")
            (size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif size == 0:
            size = len(data) - position  # the last box runs to the end of the file
        if size < header:
            raise _corrupt("MP4", f"box {kind!r} declares an impossible size")
        if position + size > len(data):
            raise _truncated("MP4", f"the {kind.decode('latin-1')} box is cut short")
        kinds.add(kind)
        position += size
    if b"moov" not in kinds:
        raise _truncated("MP4", "it has no movie header (moov box)")
    return SourceProbe(SourceFormat.MP4, 0, 0, None)


def _ebml_vint(data: bytes, position: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, length, is_unknown_size) of an EBML variable-length integer."""
    if position >= len(data):
        raise _truncated("WebM", "it ends inside an element header")
    first = data[position]
    if first == 0:
        raise _corrupt("WebM", "an element header is invalid")
    length = 9 - first.bit_length()
    if position + length > len(data):
        raise _truncated("WebM", "it ends inside an element header")
    value = int.from_bytes(data[position : position + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def _probe_ebml(data: bytes) -> SourceProbe:
    position = 0
    seen_segment = False
    while position < len(data):
        element_id, id_length, _ = _ebml_vint(data, position, keep_marker=True)
        size, size_length, unknown = _ebml_vint(data, position + id_length, keep_marker=False)
        body = position + id_length + size_length
        if element_id == 0x18538067:
            seen_segment = True
        if unknown:
            # A live-recorded file (MediaRecorder) leaves segment and cluster sizes open: walk into
            # them, so a block cut off at the end is still found by its own, known size.
            position = body
            continue
        if body + size > len(data):
            raise _truncated("WebM", "the segment is cut short")
        position = body + size
    if not seen_segment:
        raise MediaRejected(NO_FRAMES, "the WebM file has no content segment (no video)")
    return SourceProbe(SourceFormat.WEBM, 0, 0, None)
