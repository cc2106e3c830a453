"""Owner identities: a WhatsApp JID or any operator-chosen handle, normalised one way everywhere."""

from __future__ import annotations

import re

from omnizap.core.errors import InvalidInput

_DEVICE_SUFFIX = re.compile(r":\d+(?=@)")
_ALLOWED = re.compile(r"^[a-z0-9._+@-]{1,255}$")
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def normalize_owner_jid(value: str) -> str:
    """`5511999:3@c.us` → `5511999@s.whatsapp.net`; plain handles are lowercased and trimmed.

    Rejects anything with spaces, control characters or other symbols, so an owner can never smuggle
    markup or path separators into storage keys and pages.
    """
    owner = (value or "").strip().lower()
    owner = _DEVICE_SUFFIX.sub("", owner)
    if owner.endswith("@c.us"):
        owner = owner[: -len("@c.us")] + "@s.whatsapp.net"
    if not _ALLOWED.match(owner):
        raise InvalidInput(
            f"invalid owner {value!r}: use a WhatsApp JID like 5511999999999@s.whatsapp.net or a handle "
            "of letters, digits and . _ + @ - (at most 255 characters)"
        )
    return owner


def owner_token(owner_jid: str) -> str:
    """Filesystem/object-key safe form of an owner (chat §1.1)."""
    return _TOKEN_UNSAFE.sub("_", owner_jid)[:100] or "unknown"
