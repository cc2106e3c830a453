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
