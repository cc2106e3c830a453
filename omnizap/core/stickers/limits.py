"""The limits an ingest enforces: hostile-input guards from settings and WhatsApp's sticker rules."""

from __future__ import annotations

from dataclasses import dataclass

from omnizap.config import Settings

STICKER_SIDE = 512  # WhatsApp stickers are exactly 512×512
WHATSAPP_STATIC_MAX_BYTES = 100 * 1024  # the validator counts KB as 1024 bytes
WHATSAPP_ANIMATED_MAX_BYTES = 500 * 1024
WHATSAPP_MIN_FRAME_MS = 8
WHATSAPP_MAX_DURATION_MS = 10_000
MAX_SOURCE_SIDE = 16_384  # WebP itself stops at 16383; no sticker source needs more
ANIMATION_PIXEL_BUDGET_FACTOR = 10  # decoded pixels of a whole animation, in units of max_pixels


@dataclass(frozen=True)
class IngestLimits:
    max_source_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_frames: int = 1_000
    max_video_seconds: float = 10.0
    static_max_bytes: int = WHATSAPP_STATIC_MAX_BYTES
    animated_max_bytes: int = WHATSAPP_ANIMATED_MAX_BYTES
    max_side: int = MAX_SOURCE_SIDE

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        # A pack's byte limit can be stricter than WhatsApp's; the encoder aims for the smaller one.
        stored_max = settings.sticker_pack_max_sticker_bytes
        return cls(
            max_source_bytes=settings.sticker_ingest_max_source_bytes,
            max_pixels=settings.sticker_ingest_max_pixels,
            max_frames=settings.sticker_ingest_max_frames,
            max_video_seconds=settings.sticker_ingest_max_video_seconds,
            static_max_bytes=min(WHATSAPP_STATIC_MAX_BYTES, stored_max),
            animated_max_bytes=min(WHATSAPP_ANIMATED_MAX_BYTES, stored_max),
        )

    @property
    def max_duration_ms(self) -> int:
        return min(WHATSAPP_MAX_DURATION_MS, round(self.max_video_seconds * 1000))

    @property
    def animation_pixel_budget(self) -> int:
        return self.max_pixels * ANIMATION_PIXEL_BUDGET_FACTOR
