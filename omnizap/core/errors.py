"""Errors of the sticker and pack domain, with the original's codes (chat §6) and a fix in the text."""

from __future__ import annotations

from typing import Any


class StickerPackError(Exception):
    """A domain rule refused the operation. `code` is stable; `message` tells the user what to do.

    `message` and `details` may name what only an operator can act on (a CLI command, a setting);
    `public_message` and `public_details` are what anonymous HTTP clients get instead, and default to
    them. The web layer answers only with the public pair (omnizap.web.api.errors).
    """

    code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        public_message: str | None = None,
        public_details: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details or {}
        self.public_message = message if public_message is None else public_message
        self.public_details = self.details if public_details is None else public_details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class InvalidInput(StickerPackError):
    code = "INVALID_INPUT"
    http_status = 400


class PackNotFound(StickerPackError):
    code = "PACK_NOT_FOUND"
    http_status = 404


class StickerNotFound(StickerPackError):
    code = "STICKER_NOT_FOUND"
    http_status = 404


class NotAllowed(StickerPackError):
    code = "NOT_ALLOWED"
    http_status = 403


class PackLimitReached(StickerPackError):
    code = "PACK_LIMIT_REACHED"
    http_status = 409


class DuplicateSticker(StickerPackError):
    code = "DUPLICATE_STICKER"
    http_status = 409


class StorageFailure(StickerPackError):
    code = "STORAGE_ERROR"
    http_status = 500


class ExportRefused(StickerPackError):
    """The pack breaks one of WhatsApp's rules; the message names the rule."""

    code = "EXPORT_INVALID"
    http_status = 422
