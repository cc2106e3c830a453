"""Shared media steps: which media a message carries, the size checks, and refusal texts."""

from __future__ import annotations

from omnizap.chat.context import ChatContext
from omnizap.chat.messages import MediaKind, MediaRef
from omnizap.core.stickers import errors as media_errors
from omnizap.core.stickers.errors import MediaRejected


def first_media(ctx: ChatContext) -> MediaRef | None:
    """The message's own media, else the quoted message's (chat §4.1 "first binary media")."""
    return ctx.message.media or ctx.message.quoted_media


def megabytes(size: int) -> str:
    return f"{size / 1_048_576:.2f}"


def rejection_text(ctx: ChatContext, exc: MediaRejected) -> str:
    """Why a file cannot become a sticker, in the chat's language, with what to do instead."""
    _ = ctx._
    code = exc.code
    if code == media_errors.EMPTY_FILE:
        return _("❌ The file arrived empty. Send the media again.")
    if code == media_errors.TOO_LARGE:
        return _("❌ The file is too large for a sticker. Send a smaller or shorter file.")
    if code in (media_errors.DECOMPRESSION_BOMB, media_errors.DIMENSIONS_TOO_LARGE):
        return _(
            "❌ The image is too large once opened (too many pixels). Send a smaller image, "
            "at most a few thousand pixels per side."
        )
    if code == media_errors.UNSUPPORTED_FORMAT:
        return _(
            "❌ This file is not an image, GIF, video or sticker I can read. "
            "Accepted: JPEG, PNG, WebP, GIF and MP4/WebM videos."
        )
    if code in (media_errors.TRUNCATED_FILE, media_errors.CORRUPT_FILE, media_errors.NO_FRAMES):
        return _("❌ The file is damaged or incomplete. Send it again, or export it again from its app.")
    if code == media_errors.STICKER_TOO_COMPLEX:
        return _("❌ This animation is too long or too detailed for a sticker. Send a shorter clip.")
    return _("❌ This file cannot become a sticker. Try another image or video.")


def is_sticker(media: MediaRef | None) -> bool:
    return media is not None and media.kind is MediaKind.STICKER


def looks_animated(media: MediaRef, data: bytes) -> bool:
    """The network's flag, else the WebP chunks (`ANIM`/`ANMF`) in the bytes."""
    if media.animated is not None:
        return bool(media.animated)
    return b"ANIM" in data or b"ANMF" in data
