"""Stickers made by the real pipeline, for the chat network transport tests."""

from __future__ import annotations

import io

from media_factory import animated_webp, encode_image, graphic_image
from PIL import Image

from omnizap.core.stickers.exif import StickerMetadata
from omnizap.core.stickers.media import convert_to_sticker

METADATA = StickerMetadata.clean("Test pack", "Tester", default_pack_name="Test", default_publisher="Tester")


def static_sticker(seed: int = 3) -> bytes:
    return convert_to_sticker(encode_image(graphic_image(300, 200, seed), "PNG"), metadata=METADATA).data


def animated_sticker(frames: int = 12, duration_ms: int = 100) -> bytes:
    source = animated_webp(frames, (256, 256), duration=duration_ms)
    converted = convert_to_sticker(source, metadata=METADATA)
    assert converted.is_animated
    return converted.data


def webp_size(data: bytes) -> tuple[int, int]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", "not a RIFF/WEBP file"
    with Image.open(io.BytesIO(data)) as image:
        return image.size
