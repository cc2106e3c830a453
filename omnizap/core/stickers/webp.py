"""The WebP container (RIFF) read and rewritten at chunk level, without decoding any pixels.

Used to validate stickers against WhatsApp's rules (size, frame timing) from the headers alone and to
put the EXIF metadata chunk into an already encoded file, so metadata never costs a second encode.
Layout reference: the WebP container specification (RIFF header, `VP8 `/`VP8L`/`VP8X` chunks).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RIFF_HEADER_SIZE = 12
CHUNK_HEADER_SIZE = 8
VP8X_PAYLOAD_SIZE = 10

# VP8X feature flags (first payload byte).
FLAG_ICC = 0x20
FLAG_ALPHA = 0x10
FLAG_EXIF = 0x08
FLAG_XMP = 0x04
FLAG_ANIMATION = 0x02

# Chunks that belong before EXIF in a well-formed file; EXIF goes after the image data.
_IMAGE_CHUNKS = {b"VP8X", b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"}


class WebpFormatError(ValueError):
    """The bytes are not a well-formed WebP file. `truncated` tells a cut-off file from a corrupt one."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


@dataclass(frozen=True)
class Chunk:
    fourcc: bytes
    payload: bytes


@dataclass(frozen=True)
class WebpInfo:
    """What the headers of a WebP file say; no pixel was decoded to learn it."""

    width: int
    height: int
    is_animated: bool
    has_alpha: bool
    is_lossless: bool
    frame_durations_ms: tuple[int, ...]
    exif: bytes | None
    chunk_names: tuple[str, ...]

    @property
    def frame_count(self) -> int:
        return len(self.frame_durations_ms) if self.is_animated else 1

    @property
    def duration_ms(self) -> int:
        return sum(self.frame_durations_ms) if self.is_animated else 0


def is_webp(data: bytes) -> bool:
    return len(data) >= RIFF_HEADER_SIZE and data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def split_chunks(data: bytes) -> list[Chunk]:
    """The top-level chunks of a WebP file, checking every declared size against the real length."""
    if not is_webp(data):
        raise WebpFormatError("not a WebP file (no RIFF/WEBP header)")
    declared_end = struct.unpack_from("<I", data, 4)[0] + 8
    if declared_end > len(data):
        raise WebpFormatError(
            f"file is cut short: the RIFF header declares {declared_end} bytes but only {len(data)} arrived",
            truncated=True,
        )
    chunks: list[Chunk] = []
    offset = RIFF_HEADER_SIZE
    while offset < declared_end:
        if offset + CHUNK_HEADER_SIZE > declared_end:
            raise WebpFormatError("file ends inside a chunk header", truncated=True)
        fourcc = data[offset : offset + 4]
        size = struct.unpack_from("<I", data, offset + 4)[0]
        start = offset + CHUNK_HEADER_SIZE
        end = start + size
        if end > declared_end:
            raise WebpFormatError(f"chunk {fourcc!r} runs past the end of the file", truncated=True)
        chunks.append(Chunk(fourcc, data[start:end]))
        offset = end + (size & 1)  # chunks are padded to an even length
    if not chunks:
        raise WebpFormatError("WebP file has no chunks")
    return chunks


def _u24(payload: bytes, offset: int) -> int:
    return payload[offset] | payload[offset + 1] << 8 | payload[offset + 2] << 16


def _vp8_size(payload: bytes) -> tuple[int, int]:
    if len(payload) < 10 or payload[3:6] != b"\x9d\x01\x2a":
        raise WebpFormatError("VP8 chunk has no valid frame header")
    width, height = struct.unpack_from("<HH", payload, 6)
    return width & 0x3FFF, height & 0x3FFF


def _vp8l_header(payload: bytes) -> tuple[int, int, bool]:
    if len(payload) < 5 or payload[0] != 0x2F:
        raise WebpFormatError("VP8L chunk has no valid signature")
    bits = struct.unpack_from("<I", payload, 1)[0]
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)


def inspect_webp(data: bytes) -> WebpInfo:
    """Dimensions, animation, alpha, frame durations and EXIF of a WebP file, from its chunks."""
    chunks = split_chunks(data)
    first = chunks[0]
    names = tuple(chunk.fourcc.decode("latin-1") for chunk in chunks)
    exif = next((chunk.payload for chunk in chunks if chunk.fourcc == b"EXIF"), None)
    if first.fourcc == b"VP8 ":
        width, height = _vp8_size(first.payload)
        return WebpInfo(width, height, False, False, False, (), exif, names)
    if first.fourcc == b"VP8L":
        width, height, alpha = _vp8l_header(first.payload)
        return WebpInfo(width, height, False, alpha, True, (), exif, names)
    if first.fourcc != b"VP8X" or len(first.payload) < VP8X_PAYLOAD_SIZE:
        raise WebpFormatError(f"unexpected first chunk {first.fourcc!r}; expected VP8, VP8L or VP8X")
    flags = first.payload[0]
    width = _u24(first.payload, 4) + 1
    height = _u24(first.payload, 7) + 1
    animated = bool(flags & FLAG_ANIMATION)
    durations: list[int] = []
    lossless = False
    for chunk in chunks[1:]:
        if chunk.fourcc == b"ANMF":
            if len(chunk.payload) < 16:
                raise WebpFormatError("ANMF chunk is too short")
            durations.append(_u24(chunk.payload, 12))
            lossless = lossless or chunk.payload[16:20] == b"VP8L"
        elif chunk.fourcc == b"VP8L":
            lossless = True
    if animated and not durations:
        raise WebpFormatError("animated WebP has no frames")
    if not animated and not any(chunk.fourcc in (b"VP8 ", b"VP8L") for chunk in chunks):
        raise WebpFormatError("WebP file has no image data")
    return WebpInfo(
        width, height, animated, bool(flags & FLAG_ALPHA), lossless, tuple(durations), exif, names
    )


def join_chunks(chunks: list[Chunk]) -> bytes:
    body = bytearray(b"WEBP")
    for chunk in chunks:
        body += chunk.fourcc + struct.pack("<I", len(chunk.payload)) + chunk.payload
        if len(chunk.payload) & 1:
            body += b"\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + bytes(body)


def _vp8x_payload(flags: int, width: int, height: int) -> bytes:
    return bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


def with_exif(data: bytes, exif: bytes | None) -> bytes:
    """Return `data` with its EXIF chunk replaced by `exif` (or removed when None). Pixels are untouched.

    A simple (VP8/VP8L-only) file is promoted to the extended format, because only that format can
    carry metadata chunks.
    """
    info = inspect_webp(data)
    chunks = [chunk for chunk in split_chunks(data) if chunk.fourcc != b"EXIF"]
    if chunks[0].fourcc == b"VP8X":
        flags = chunks[0].payload[0]
    else:
        flags = FLAG_ALPHA if info.has_alpha else 0
        chunks.insert(0, Chunk(b"VP8X", _vp8x_payload(0, info.width, info.height)))
    flags = (flags | FLAG_EXIF) if exif else (flags & ~FLAG_EXIF)
    chunks[0] = Chunk(b"VP8X", bytes([flags]) + chunks[0].payload[1:])
    if exif:
        position = next(
            (index for index, chunk in enumerate(chunks) if chunk.fourcc not in _IMAGE_CHUNKS), len(chunks)
        )
        chunks.insert(position, Chunk(b"EXIF", exif))
    return join_chunks(chunks)


def exif_overhead(exif_size: int, *, simple_format: bool) -> int:
    """Bytes that `with_exif` adds to a file without EXIF: the chunk, its padding, maybe a VP8X chunk."""
    overhead = CHUNK_HEADER_SIZE + exif_size + (exif_size & 1)
    if simple_format:
        overhead += CHUNK_HEADER_SIZE + VP8X_PAYLOAD_SIZE
    return overhead
