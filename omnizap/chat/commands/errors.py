"""Errors the chat layer raises itself, already in the chat's language."""

from __future__ import annotations

from omnizap.core.errors import StickerPackError


class ChatPackError(StickerPackError):
    """A refusal worded for the person in the chat (localised); `code` is one of chat §6's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)
