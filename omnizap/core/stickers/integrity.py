"""Check that an image holds as much pixel data as its headers declare, before it is decoded.

Decoders are lenient on purpose: libjpeg fills the rows a JPEG does not hold with grey, and zlib
stops quietly when a PNG's compressed stream ends before the last row. A file whose header claims
6000×6000 pixels but whose data covers 400×300 would then become a mostly grey sticker. These
checks find such short data and refuse it with TRUNCATED_FILE; container-level cuts (a chunk or box
that runs past the end) are already caught by `formats.probe_source`.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator

from PIL import Image

from omnizap.core.stickers.errors import CORRUPT_FILE, TRUNCATED_FILE, MediaRejected
from omnizap.core.stickers.formats import effective_delay_ms
from omnizap.core.stickers.limits import IngestLimits


def _short(name: str, detail: str) -> MediaRejected:
    return MediaRejected(
        TRUNCATED_FILE,
        f"the {name} file is incomplete ({detail}); send the whole file again or re-export it",
    )


# --- JPEG -----------------------------------------------------------------------------------------

# Huffman-coded baseline, extended and progressive frames: the ones ffmpeg's decoder reads fully.
# Lossless, hierarchical and arithmetic-coded JPEGs (rare) are left to Pillow alone.
_CHECKED_SOF = {0xC0, 0xC1, 0xC2}
_UNSET_GREY = 128  # what a block without coefficients decodes to


def _jpeg_frame_marker(data: bytes) -> tuple[int, int] | None:
    """(SOF marker, sample precision) of the first frame header, or None if none is found."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1  # fill byte
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker, data[position + 4] if position + 4 < len(data) else 0
        position += 2 + length
    return None


def jpeg_may_be_short(image: Image.Image) -> bool:
    """Whether a JPEG Pillow decoded may hold less data than its header declares (then check it).

    When libjpeg runs out of data it leaves every remaining block's coefficients at zero, which
    decodes to flat mid-grey; in a sequential JPEG the last block (bottom right of the stored
    raster) is always among them. A picture whose last pixel is not that grey is complete, so the
    costly check runs only for the rest: that grey, progressive files (whose later scans only
    refine), and colour models where zero is not grey.
    """
    if image.info.get("progressive") or image.info.get("progression"):
        return True
    if image.mode not in ("L", "RGB"):
        return True
    last = image.getpixel((image.width - 1, image.height - 1))
    return last == (_UNSET_GREY if image.mode == "L" else (_UNSET_GREY,) * 3)


def check_jpeg_complete(data: bytes, width: int, height: int) -> None:
    """Refuse a JPEG whose entropy-coded data ends before every block its frame header declares.

    libjpeg (Pillow) only warns and paints the missing blocks grey; ffmpeg's JPEG decoder with
    `err_detect=explode` fails instead, so it serves as the check. It decodes at 1/8 scale
    (`lowres`): every coefficient is still read, but little memory or time is spent.
    """
    frame = _jpeg_frame_marker(data)
    if frame is None or frame[0] not in _CHECKED_SOF or frame[1] != 8:
        return
    import av  # loaded on first JPEG only: importing PyAV costs ~150 ms
    import av.error

    context = av.CodecContext.create("mjpeg", "r")
    context.options = {"err_detect": "explode", "lowres": "3"}
    try:
        context.decode(av.Packet(data))
        context.decode(None)
    except av.error.InvalidDataError as exc:
        raise _short(
            "JPEG",
            f"its header declares {width}×{height} pixels but the image data ends early or breaks off",
        ) from exc
    except av.error.FFmpegError:
        return  # a feature ffmpeg lacks: Pillow decides alone


# --- PNG ------------------------------------------------------------------------------------------

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_STEP = 1 << 18


def png_raw_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines (one filter byte per row) a PNG image of this shape inflates to."""

    def rows(pass_width: int, pass_height: int) -> int:
        if pass_width <= 0 or pass_height <= 0:
            return 0
        return pass_height * (1 + math.ceil(pass_width * bits_per_pixel / 8))

    if not interlaced:
        return rows(width, height)
    return sum(rows(math.ceil((width - x0) / dx), math.ceil((height - y0) / dy)) for x0, y0, dx, dy in _ADAM7)


def _inflated_size(compressed: bytes, wanted: int) -> int:
    """Bytes `compressed` inflates to, counting no further than `wanted` (a bomb costs nothing more).

    The input is fed in slices, so no call copies the whole remaining stream.
    """
    inflater = zlib.decompressobj()
    produced = 0
    view = memoryview(compressed)
    try:
        for start in range(0, len(view), _INFLATE_STEP):
            pending: bytes | memoryview = view[start : start + _INFLATE_STEP]
            while pending and produced < wanted and not inflater.eof:
                produced += len(inflater.decompress(pending, _INFLATE_STEP))
                pending = inflater.unconsumed_tail
            if produced >= wanted or inflater.eof:
                break
    except zlib.error as exc:
        raise MediaRejected(
            CORRUPT_FILE, f"the PNG image data is damaged ({exc}); re-export it and try again"
        ) from exc
    return produced


def _png_frames(data: bytes) -> Iterator[tuple[int, int, int, int, bytes]]:
    """(frame index, width, height, delay ms, compressed bytes) of the default image and APNG frames.

    The default image (IDAT) has the header's size, and is the first frame when an fcTL precedes it;
    every later frame's fdAT chunks (minus their sequence numbers) form its own zlib stream.
    """
    position = 8
    width, height = struct.unpack_from(">II", data, 16)
    control: tuple[int, int, int] = (width, height, 0)  # size and delay of the next stream
    streams: list[tuple[tuple[int, int, int], bytearray]] = []
    last_kind = b""
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        body = data[position + 8 : position + 8 + length]
        if kind == b"fcTL" and length >= 26:
            frame_width, frame_height = struct.unpack_from(">II", body, 4)
            numerator, denominator = struct.unpack_from(">HH", body, 20)
            control = (frame_width, frame_height, round(numerator * 1000 / (denominator or 100)))
        elif kind in (b"IDAT", b"fdAT"):
            if kind != last_kind:
                size = control if kind == b"fdAT" else (width, height, control[2])
                streams.append((size, bytearray()))
            streams[-1][1].extend(body if kind == b"IDAT" else body[4:])
        elif kind == b"IEND":
            break
        last_kind = kind
        position += 12 + length
    for index, ((frame_width, frame_height, delay), stream) in enumerate(streams):
        yield index, frame_width, frame_height, delay, bytes(stream)


def check_png_complete(data: bytes, limits: IngestLimits) -> None:
    """Refuse a PNG (or APNG frame) whose compressed data inflates to fewer rows than declared.

    Only frames inside the time cut are checked: later ones are never decoded. The chunk walk was
    already validated by `formats.probe_source`, and inflating stops at the declared size.
    """
    bit_depth, colour_type, _, _, interlace = struct.unpack_from(">BBBBB", data, 24)
    bits_per_pixel = _CHANNELS.get(colour_type, 4) * bit_depth
    elapsed = 0
    for index, width, height, delay, compressed in _png_frames(data):
        if elapsed >= limits.max_duration_ms:
            break
        wanted = png_raw_size(width, height, bits_per_pixel, bool(interlace))
        found = _inflated_size(compressed, wanted)
        if found < wanted:
            where = "its image data" if index == 0 else f"the data of frame {index + 1}"
            raise _short(
                "PNG", f"{where} holds {found} of the {wanted} bytes that {width}×{height} pixels need"
            )
        elapsed += effective_delay_ms(delay)
