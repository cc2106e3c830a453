"""Delivery of sticker bytes to clients: sticker files and their previews, WhatsApp pack downloads.

Bytes come from the local storage backend through the API process, or — for viewers in the
`enable_object_storage_delivery` rollout — straight from an S3-compatible store after a redirect to
a presigned URL (`objects`), with local disk as the fallback. `sync` copies files to the store
(worker task in `tasks`, `omnizap storage backfill|verify`); `links` signs shareable expiring links.
Nothing here imports the web layer. See docs/delivery.md.
"""

from omnizap.delivery.downloads import PackDownload, WhatsAppDownloads
from omnizap.delivery.links import LinkExpired, LinkInvalid, SignedLinks, SignedLinksDisabled
from omnizap.delivery.objects import REDIRECT_FLAG, DeliveryMetrics, ObjectDelivery, Redirect
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
    "REDIRECT_FLAG",
    "DeliveryMetrics",
    "LinkExpired",
    "LinkInvalid",
    "ObjectDelivery",
    "PackDownload",
    "Redirect",
    "SignedLinks",
    "SignedLinksDisabled",
    "StickerDelivery",
    "StickerFileMissing",
    "StickerLocation",
    "WhatsAppDownloads",
    "parse_preview_size",
    "parse_sticker_id",
    "preview_key",
    "render_preview",
]
