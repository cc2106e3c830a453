"""Shareable, expiring links to a sticker file, signed with HMAC (no object store needed).

`{api}/{packKey}/stickers/{stickerId}.webp?expires=<unix seconds>&signature=<43 chars>` opens the
sticker while the link lasts, even when its pack is private or a draft (never when deleted), so an
owner can share one sticker without publishing the pack. The signature is
HMAC-SHA256(key, "v1\\n<pack key>\\n<sticker id>\\n<expires>") in unpadded base64url; the key is
derived from STICKER_ASSET_URL_SIGNING_SECRET, which every process of an installation shares.
With the secret empty, signed links are off and any request carrying one is refused by name.

Changing the secret revokes every link made with the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from omnizap.core.errors import NotAllowed
from omnizap.core.packs.rules import public_pack_key
from omnizap.delivery.stickers import parse_sticker_id

MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 7 * 24 * 3600
EXPIRES_PARAMETER = "expires"
SIGNATURE_PARAMETER = "signature"
_KEY_LABEL = b"omnizap-asset-link-v1\n"
_EXPIRES_TEXT = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE_TEXT = re.compile(r"^[A-Za-z0-9_-]{43}$")


class LinkInvalid(NotAllowed):
    code = "LINK_INVALID"


class LinkExpired(NotAllowed):
    code = "LINK_EXPIRED"


class SignedLinksDisabled(NotAllowed):
    code = "SIGNED_LINKS_DISABLED"


@dataclass(frozen=True)
class SignedLink:
    pack_key: str
    sticker_id: str
    expires: int
    signature: str

    def query(self) -> str:
        return f"{EXPIRES_PARAMETER}={self.expires}&{SIGNATURE_PARAMETER}={self.signature}"


class SignedLinks:
    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(_KEY_LABEL + secret.encode("utf-8")).digest() if secret else None
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def _signature(self, pack_key: str, sticker_id: str, expires: int) -> str:
        assert self._key is not None
        message = f"v1\n{pack_key}\n{sticker_id}\n{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, pack_key: str, sticker_id: str, ttl_seconds: int) -> SignedLink:
        """A link valid for `ttl_seconds` (60 s to 7 days) from now."""
        if self._key is None:
            raise SignedLinksDisabled(
                "Signed links are off: set STICKER_ASSET_URL_SIGNING_SECRET (the same on every server)."
            )
        if not MIN_TTL_SECONDS <= int(ttl_seconds) <= MAX_TTL_SECONDS:
            raise ValueError(
                f"a signed link lasts {MIN_TTL_SECONDS} s to {MAX_TTL_SECONDS} s (7 days), got {ttl_seconds}"
            )
        key, sticker = public_pack_key(pack_key), parse_sticker_id(sticker_id)
        expires = int(self._clock()) + int(ttl_seconds)
        return SignedLink(key, sticker, expires, self._signature(key, sticker, expires))

    def check(self, pack_key: str, sticker_ref: str, expires_text: str | None, signature: str | None) -> int:
        """The link's expiry (unix seconds) when it is genuine and current; else LinkInvalid,
        LinkExpired or SignedLinksDisabled. Nothing here touches the database."""
        if self._key is None:
            raise SignedLinksDisabled("This server does not accept signed links; ask for a public link.")
        if (
            expires_text is None
            or signature is None
            or not _EXPIRES_TEXT.match(expires_text)
            or not _SIGNATURE_TEXT.match(signature)
        ):
            raise LinkInvalid(
                f"This link is damaged: it needs both `{EXPIRES_PARAMETER}` (unix seconds) and "
                f"`{SIGNATURE_PARAMETER}`, exactly as they were issued."
            )
        key, sticker = public_pack_key(pack_key), parse_sticker_id(sticker_ref)
        expires = int(expires_text)
        expected = self._signature(key, sticker, expires)
        # Compared before the expiry, so a forged link never learns whether its time would be valid.
        if not hmac.compare_digest(expected, signature):
            raise LinkInvalid("This link's signature does not match; use the link exactly as it was shared.")
        if expires <= int(self._clock()):
            raise LinkExpired("This link has expired; ask whoever shared it for a new one.")
        return expires
