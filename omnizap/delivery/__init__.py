"""Delivery of sticker bytes to clients: sticker files and their previews, WhatsApp pack downloads.

Today every byte comes from the local storage backend through the API process. S3-compatible object
storage with signed URLs (behind `enable_object_storage_delivery`, local fallback) joins this part
later; callers already go through `StickerDelivery` and `WhatsAppDownloads`, so only this folder
changes then. Nothing here imports the web layer.
"""

from omnizap.delivery.downloads import PackDownload, WhatsAppDownloads
from omnizap.delivery.previews import PREVIEW_SIZES, preview_key, render_preview
from omnizap.delivery.stickers import (
    IMMUTABLE_CACHE_CONTROL,
    StickerDelivery,
    StickerFileMissing,
    StickerLocation,
    parse_preview_size,
    parse_sticker_id,
)

__all__ = [
    "IMMUTABLE_CACHE_CONTROL",
    "PREVIEW_SIZES",
    "PackDownload",
    "StickerDelivery",
    "StickerFileMissing",
    "StickerLocation",
    "WhatsAppDownloads",
    "parse_preview_size",
    "parse_sticker_id",
    "preview_key",
    "render_preview",
]
