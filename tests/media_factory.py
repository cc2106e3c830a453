"""Real media files for tests and benchmarks, generated with Pillow and PyAV (no binary fixtures).

Everything is deterministic (seeded), small by default so the suite stays fast, and encoded by real
encoders so the sticker pipeline sees what users upload. Hostile inputs (bombs, truncated files) are
written byte by byte where an encoder would refuse to produce them.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Sequence

import av
from PIL import Image, ImageDraw, ImageFilter

# --- pictures -------------------------------------------------------------------------------------


def solid_image(width: int, height: int, color: tuple[int, ...] = (255, 0, 0, 255)) -> Image.Image:
    return Image.new("RGBA", (width, height), color)


def noise_image(width: int, height: int, seed: int = 1) -> Image.Image:
    """Independent random pixels: the hardest possible input for any image codec."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def photo_like_image(width: int, height: int, seed: int = 2) -> Image.Image:
    """Smooth colour gradients, soft shapes and grain: compresses like a real photo."""
    gradient = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    base = Image.merge("RGB", (gradient, radial, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    draw = ImageDraw.Draw(base)
    rng = random.Random(seed)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randrange(max(2, width // 20), max(3, width // 5))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(max(1, width // 200)))
    grain = noise_image(width, height, seed).filter(ImageFilter.GaussianBlur(1))
    return Image.blend(base, grain, 0.12)


def graphic_image(width: int, height: int, seed: int = 3) -> Image.Image:
    """A sticker-like drawing: flat colours, outlines and a transparent background."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    rng = random.Random(seed)
    margin = width // 10
    draw.ellipse(
        (margin, margin, width - margin, height - margin),
        fill=(255, 214, 0, 255),
        outline="black",
        width=max(2, width // 60),
    )
    for _ in range(8):
        x, y = rng.randrange(margin, width - margin), rng.randrange(margin, height - margin)
        size = rng.randrange(width // 20, width // 8)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256), 255)
        draw.rectangle((x, y, x + size, y + size), fill=colour, outline="black")
    draw.text((width // 3, height // 2), "omnizap", fill=(0, 0, 0, 255))
    return image


def encode_image(image: Image.Image, image_format: str, **options: object) -> bytes:
    """Encode with Pillow. JPEG drops alpha (converted to RGB first)."""
    if image_format == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def png_bytes(width: int = 64, height: int = 64, color: tuple[int, ...] = (255, 0, 0, 255)) -> bytes:
    return encode_image(solid_image(width, height, color), "PNG")


# --- animations -----------------------------------------------------------------------------------


def animation_frames(
    count: int, size: tuple[int, int] = (64, 64), *, alpha: bool = True
) -> list[Image.Image]:
    """A ball moving across the picture; every frame differs, so encoders cannot merge them."""
    width, height = size
    frames = []
    for index in range(count):
        background = (0, 0, 0, 0) if alpha else (30, 60, 200, 255)
        frame = Image.new("RGBA", size, background)
        draw = ImageDraw.Draw(frame)
        x = (index * width // max(1, count)) % width
        draw.ellipse((x, height // 4, x + width // 3, height // 4 + height // 3), fill=(255, 40, 40, 255))
        draw.rectangle((0, height - 4, (index + 1) * width // count, height - 1), fill=(0, 200, 0, 255))
        frames.append(frame)
    return frames


def animated_gif(
    count: int = 6, size: tuple[int, int] = (64, 64), duration: int | Sequence[int] = 100
) -> bytes:
    frames = [
        frame.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
        for frame in animation_frames(count, size, alpha=False)
    ]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, "GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0, disposal=1
    )
    return buffer.getvalue()


def animated_webp(
    count: int = 6, size: tuple[int, int] = (64, 64), duration: int | Sequence[int] = 100, **options: object
) -> bytes:
    frames = animation_frames(count, size)
    buffer = io.BytesIO()
    frames[0].save(
        buffer, "WEBP", save_all=True, append_images=frames[1:], duration=duration, loop=0, **options
    )
    return buffer.getvalue()


def animated_png(count: int = 6, size: tuple[int, int] = (64, 64), duration: int = 100) -> bytes:
    frames = animation_frames(count, size)
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=duration, loop=0)
    return buffer.getvalue()


# --- video ----------------------------------------------------------------------------------------


def video(
    container_format: str = "mp4",
    *,
    seconds: float = 1.0,
    fps: int = 10,
    size: tuple[int, int] = (96, 64),
    rotation: int = 0,
    frame_maker: object = None,
) -> bytes:
    """An H.264 MP4 or VP8 WebM of a moving ball. `rotation` sets the container's display matrix."""
    codec = {"mp4": "libx264", "webm": "libvpx"}[container_format]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        count = max(1, round(seconds * fps))
        frames = (
            frame_maker(count, size) if callable(frame_maker) else animation_frames(count, size, alpha=False)
        )
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame.convert("RGB"))):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def split_colour_frames(count: int, size: tuple[int, int]) -> list[Image.Image]:
    """Left half red, right half blue: shows which way a picture was rotated."""
    width, height = size
    frames = []
    for _ in range(count):
        frame = Image.new("RGB", size, (0, 0, 255))
        frame.paste((255, 0, 0), (0, 0, width // 2, height))
        frames.append(frame)
    return frames


def video_without_frames() -> bytes:
    """A complete MP4 container into which no frame was ever written."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = 64, 64
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    return buffer.getvalue()


# --- hostile inputs -------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG that claims `width`×`height` pixels in a few dozen bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def gif_with_frames(count: int, *, delay_cs: int = 2) -> bytes:
    """A 1×1 GIF with `count` frames, written directly (about 16 bytes per frame)."""
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = (
        b"\x21\xf9\x04\x04"
        + struct.pack("<H", delay_cs)
        + b"\x00\x00"  # graphic control: delay
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # image descriptor, 1×1
        + b"\x02\x02\x44\x01\x00"  # LZW: clear, pixel 0, end
    )
    return header + loop + frame * count + b"\x3b"


def gif_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A one-frame GIF whose screen claims `width`×`height` pixels."""
    data = bytearray(gif_with_frames(1))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


# --- short image data inside a whole-looking file ---------------------------------------------------


def jpeg_claiming_size(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF) is rewritten to claim `width`×`height` pixels."""
    out = bytearray(data)
    position = 2
    while position + 4 <= len(out):
        marker = out[position + 1]
        (length,) = struct.unpack_from(">H", out, position + 2)
        if marker in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", out, position + 5, height, width)
            return bytes(out)
        position += 2 + length
    raise ValueError("no frame header found")


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 8
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        chunks.append((kind, data[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def png_cut_in_idat(data: bytes, keep: float = 0.5) -> bytes:
    """The PNG cut inside its image data, then closed again with valid chunk lengths, CRCs and IEND."""
    chunks = _png_chunks(data)
    image_data = b"".join(body for kind, body in chunks if kind == b"IDAT")
    header = [(kind, body) for kind, body in chunks if kind not in (b"IDAT", b"IEND")]
    kept = image_data[: int(len(image_data) * keep)]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _png_chunk(kind, body) for kind, body in [*header, (b"IDAT", kept), (b"IEND", b"")]
    )


def png_with_short_rows(data: bytes, keep: float = 0.5) -> bytes:
    """The PNG's scanlines cut to a fraction and re-compressed as a complete zlib stream."""
    chunks = _png_chunks(data)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    header = [(kind, body) for kind, body in chunks if kind not in (b"IDAT", b"IEND")]
    short = zlib.compress(raw[: int(len(raw) * keep)])
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _png_chunk(kind, body) for kind, body in [*header, (b"IDAT", short), (b"IEND", b"")]
    )


def _gif_frames(data: bytes) -> list[tuple[int, list[int]]]:
    """(descriptor offset, offsets of its LZW sub-blocks) of every frame of a GIF."""
    position = 13
    if data[10] & 0x80:
        position += 3 * (2 << (data[10] & 0x07))
    frames = []
    while data[position] != 0x3B:
        if data[position] == 0x21:
            position += 2
            while data[position]:
                position += 1 + data[position]
            position += 1
            continue
        local = data[position + 9]
        blocks, cursor = [], position + 10 + (3 * (2 << (local & 0x07)) if local & 0x80 else 0) + 1
        while data[cursor]:
            blocks.append(cursor)
            cursor += 1 + data[cursor]
        frames.append((position, blocks))
        position = cursor + 1
    return frames


def gif_cut_mid_frame(data: bytes, *, closed: bool) -> bytes:
    """The GIF cut in the middle of its last frame's LZW data; `closed` ends the frame and file there."""
    _, blocks = _gif_frames(data)[-1]
    middle = blocks[len(blocks) // 2]
    if len(blocks) > 1:
        cut = data[:middle]
    else:
        size = data[middle] // 2
        cut = data[:middle] + bytes([size]) + data[middle + 1 : middle + 1 + size]
    return cut + b"\x00\x3b" if closed else cut


def webp_cut_mid_frame(data: bytes, frame: int = -1) -> bytes:
    """An (animated) WebP whose frame's bitstream is cut in half, with every RIFF size made to fit."""
    from omnizap.core.stickers.webp import Chunk, join_chunks, split_chunks

    chunks = split_chunks(data)
    frames = [index for index, chunk in enumerate(chunks) if chunk.fourcc in (b"ANMF", b"VP8 ", b"VP8L")]
    index = frames[frame]
    chunk = chunks[index]
    if chunk.fourcc != b"ANMF":
        chunks[index] = Chunk(chunk.fourcc, chunk.payload[: len(chunk.payload) // 2])
        return join_chunks(chunks)
    body, subchunks, offset = chunk.payload[16:], [], 0
    while offset < len(body):
        size = struct.unpack_from("<I", body, offset + 4)[0]
        subchunks.append([body[offset : offset + 4], body[offset + 8 : offset + 8 + size]])
        offset += 8 + size + (size & 1)
    subchunks[-1][1] = subchunks[-1][1][: len(subchunks[-1][1]) // 2]
    rebuilt = b"".join(
        kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)
        for kind, payload in subchunks
    )
    chunks[index] = Chunk(b"ANMF", chunk.payload[:16] + rebuilt)
    return join_chunks(chunks)


def _boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    boxes, position = {}, 0
    while position < len(data):
        size, kind = struct.unpack_from(">I4s", data, position)
        boxes[kind] = (position, size)
        position += size
    return boxes


def mp4_stream_cut_short(path: object, *, keep: float = 0.5) -> bytes:
    """A fast-start MP4 (index first) whose media data is cut, its box size rewritten to match.

    The index still lists every frame, so only the missing packets show the cut. `path` is a
    scratch file: ffmpeg's fast-start pass needs a real file.
    """
    source = video("mp4", seconds=2, fps=10)
    with (
        av.open(io.BytesIO(source)) as original,
        av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        template = original.streams.video[0]
        stream = out.add_stream_from_template(template)
        for packet in original.demux(template):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)
    with open(str(path), "rb") as handle:
        data = bytearray(handle.read())
    boxes = _boxes(bytes(data))
    assert boxes[b"moov"][0] < boxes[b"mdat"][0], "fast start did not move the index first"
    start, size = boxes[b"mdat"]
    end = start + int(size * keep)
    struct.pack_into(">I", data, start, end - start)
    return bytes(data[:end])


def live_webm(count: int = 20, size: tuple[int, int] = (96, 64)) -> bytes:
    """A VP8 WebM as browsers record it (MediaRecorder): segment and cluster sizes left open."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm", options={"live": "1"}) as container:
        stream = container.add_stream("libvpx", rate=10)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in animation_frames(count, size, alpha=False):
            for packet in stream.encode(av.VideoFrame.from_image(frame.convert("RGB"))):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
