"""The sticker metadata chat apps read from a WebP's EXIF chunk (pack id, name, publisher, emojis).

Payload (chat §4.3): a 22-byte little-endian TIFF header — `II*\\0`, IFD offset 8, one entry with
tag 0x5741, type 7 (UNDEFINED), count = JSON length, value offset 22 — followed by UTF-8 JSON.

Unlike the original (a random `sticker-pack-id` per sticker, which defeated dedupe), the id here is
derived from the encoded image, so the same source with the same metadata gives identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omnizap.core import text_policy
from omnizap.core.stickers.webp import WebpFormatError, split_chunks, with_exif
from omnizap.core.text_policy import PACK_NAME, PUBLISHER

STICKER_EXIF_TAG = 0x5741
EXIF_TYPE_UNDEFINED = 7
JSON_OFFSET = 22
PACK_ID_PREFIX = "com.omnizap."


@dataclass(frozen=True)
class StickerMetadata:
    """Clean metadata, ready to embed. Build it with `StickerMetadata.clean(...)`."""

    pack_name: str
    publisher: str
    emojis: tuple[str, ...] = ()

    @classmethod
    def clean(
        cls,
        pack_name: str | None,
        publisher: str | None,
        emojis: Sequence[str] | str = (),
        *,
        default_pack_name: str,
        default_publisher: str,
    ) -> StickerMetadata:
        """Metadata under the text policy (omnizap.core.text_policy): given text that breaks it is
        refused (INVALID_INPUT, naming the field); the configured defaults are made to fit."""
        return cls(
            pack_name=text_policy.optional(PACK_NAME, pack_name)
            or text_policy.fit(PACK_NAME, default_pack_name)
            or "OmniZap Stickers",
            publisher=text_policy.optional(PUBLISHER, publisher)
            or text_policy.fit(PUBLISHER, default_publisher)
            or "OmniZap",
            emojis=tuple(text_policy.emoji_list(emojis)),
        )


def sticker_pack_id(webp_bytes: bytes) -> str:
    """`com.omnizap.<hash>` of the image chunks (EXIF excluded), so the id never depends on chance."""
    digest = hashlib.sha256()
    for chunk in split_chunks(webp_bytes):
        if chunk.fourcc not in (b"EXIF", b"VP8X"):
            digest.update(chunk.fourcc)
            digest.update(len(chunk.payload).to_bytes(4, "little"))
            digest.update(chunk.payload)
    return PACK_ID_PREFIX + digest.hexdigest()[:32]


def build_sticker_exif(pack_id: str, metadata: StickerMetadata) -> bytes:
    """The EXIF payload: TIFF header with the single 0x5741 entry, then compact UTF-8 JSON."""
    document: dict[str, Any] = {
        "sticker-pack-id": pack_id,
        "sticker-pack-name": metadata.pack_name,
        "sticker-pack-publisher": metadata.publisher,
        "emojis": list(metadata.emojis),
    }
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    header = b"II*\x00" + struct.pack(
        "<IHHHII", 8, 1, STICKER_EXIF_TAG, EXIF_TYPE_UNDEFINED, len(body), JSON_OFFSET
    )
    return header + body


def parse_sticker_exif(payload: bytes) -> dict[str, Any]:
    """The JSON object under tag 0x5741 of a TIFF/EXIF payload; ValueError if there is none."""
    if payload.startswith(b"Exif\x00\x00"):
        payload = payload[6:]
    if payload[:4] == b"II*\x00":
        order = "<"
    elif payload[:4] == b"MM\x00*":
        order = ">"
    else:
        raise ValueError("EXIF payload has no TIFF header")
    (ifd_offset,) = struct.unpack_from(order + "I", payload, 4)
    if ifd_offset + 2 > len(payload):
        raise ValueError("EXIF IFD offset points past the payload")
    (entry_count,) = struct.unpack_from(order + "H", payload, ifd_offset)
    for index in range(entry_count):
        entry = ifd_offset + 2 + index * 12
        if entry + 12 > len(payload):
            raise ValueError("EXIF IFD is cut short")
        tag, _type, count = struct.unpack_from(order + "HHI", payload, entry)
        if tag != STICKER_EXIF_TAG:
            continue
        if count <= 4:
            value = payload[entry + 8 : entry + 8 + count]
        else:
            (value_offset,) = struct.unpack_from(order + "I", payload, entry + 8)
            value = payload[value_offset : value_offset + count]
            if len(value) != count:
                raise ValueError("sticker metadata runs past the EXIF payload")
        document = json.loads(value.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("sticker metadata is not a JSON object")
        return document
    raise ValueError("EXIF payload has no sticker metadata tag 0x5741")


def embed_sticker_metadata(webp_bytes: bytes, metadata: StickerMetadata) -> bytes:
    """Put the metadata into an encoded WebP (replacing any EXIF). Deterministic for equal inputs."""
    return with_exif(webp_bytes, build_sticker_exif(sticker_pack_id(webp_bytes), metadata))


def sticker_exif_size(metadata: StickerMetadata) -> int:
    """Length of the EXIF payload `embed_sticker_metadata` will write (the pack id has a fixed length)."""
    return len(build_sticker_exif(PACK_ID_PREFIX + "0" * 32, metadata))


def read_sticker_metadata(webp_bytes: bytes) -> dict[str, Any]:
    """The sticker metadata JSON of a WebP file, or {} when it has none or it cannot be read."""
    try:
        chunks = split_chunks(webp_bytes)
    except WebpFormatError:
        return {}
    for chunk in chunks:
        if chunk.fourcc == b"EXIF":
            try:
                return parse_sticker_exif(chunk.payload)
            except (ValueError, struct.error, UnicodeDecodeError):
                return {}
    return {}
