"""Stickers: ingest from images, GIFs and videos into WhatsApp-valid WebP, dedupe, storage.

Kept light on purpose: the service is in `omnizap.core.stickers.service`, conversion in `media`
(Pillow; PyAV loads only when a video arrives), metadata in `exif`, header checks in `formats`.
"""

from omnizap.core.stickers.errors import MediaRejected
from omnizap.core.stickers.exif import StickerMetadata, read_sticker_metadata
from omnizap.core.stickers.limits import IngestLimits

__all__ = [
    "IngestLimits",
    "MediaRejected",
    "StickerMetadata",
    "read_sticker_metadata",
]
