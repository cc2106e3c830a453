"""Export a pack in WhatsApp's sticker-pack format, checked against WhatsApp's own validator rules.

The output is a zip in the layout of WhatsApp's sample app (`contents.json`, a PNG tray icon, the
WebP stickers) plus `title.txt` and `author.txt` for `.wastickers` importer apps. Sticker files are
the stored bytes, unchanged. The zip depends only on the pack's state at one version (and on the
export settings), never on the clock, so the same version always gives the same bytes and the
catalog can use `sha256` as an ETag.

Rules (peers-and-anchors §A2, WhatsApp's StickerPackValidator): 3–30 stickers; every sticker a
512×512 WebP; static ≤ 100 KB, animated ≤ 500 KB (KB = 1024 B); animated frames ≥ 8 ms and ≤ 10 s in
total; a pack is all static or all animated; 1–3 emojis per sticker; tray PNG 24–512 px, ≤ 50 KB;
identifier < 128 characters of [a-zA-Z0-9_-. ] without ".."; name and publisher ≤ 128; website
fields empty or http(s) URLs. `problems()` lists every rule a pack breaks; `export()` refuses with
the first one (ExportRefused, code EXPORT_INVALID), each message naming the sticker and the fix.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import urllib.parse
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from omnizap.config import Settings
from omnizap.core.errors import ExportRefused, PackNotFound, StickerPackError, StorageFailure
from omnizap.core.packs import repository as pack_repo
from omnizap.core.packs.models import Pack, PackItem
from omnizap.core.packs.rules import sanitize_text
from omnizap.core.stickers import repository as sticker_repo
from omnizap.core.stickers.exif import read_sticker_metadata
from omnizap.core.stickers.limits import (
    STICKER_SIDE,
    WHATSAPP_ANIMATED_MAX_BYTES,
    WHATSAPP_MAX_DURATION_MS,
    WHATSAPP_MIN_FRAME_MS,
    WHATSAPP_STATIC_MAX_BYTES,
)
from omnizap.core.stickers.webp import WebpFormatError, WebpInfo, inspect_webp
from omnizap.platform.db import Database
from omnizap.platform.storage import ObjectNotFound, Storage, StorageError

# WhatsApp's validator (peers-and-anchors §A2).
STICKERS_MIN = 3
STICKERS_MAX = 30
EMOJIS_MIN = 1
EMOJIS_MAX = 3
TEXT_MAX = 128  # name and publisher
IDENTIFIER_MAX = 127  # "< 128 characters"
ACCESSIBILITY_STATIC_MAX = 125
ACCESSIBILITY_ANIMATED_MAX = 255
TRAY_SIDE = 96  # recommended; the validator accepts 24–512
TRAY_SIDE_MIN = 24
TRAY_SIDE_MAX = 512
TRAY_MAX_BYTES = 50 * 1024
PLAY_STORE_HOST = "play.google.com"
APP_STORE_HOST = "itunes.apple.com"

CONTENTS_FILE = "contents.json"
TRAY_FILE = "tray.png"
TITLE_FILE = "title.txt"
AUTHOR_FILE = "author.txt"
ZIP_CONTENT_TYPE = "application/zip"
FILENAME_SUFFIX = ".wastickers.zip"
# Every entry gets this timestamp (the earliest a zip can hold), so bytes never depend on the clock.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ZIP_FILE_MODE = 0o644 << 16
_ZIP_UNIX = 3
_SNAPSHOT_ATTEMPTS = 5

_IDENTIFIER_DISALLOWED = re.compile(r"[^A-Za-z0-9_\-. ]")
_FILENAME_DISALLOWED = re.compile(r"[^a-z0-9_-]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


@dataclass(frozen=True)
class WhatsAppExport:
    """A ready-to-serve WhatsApp sticker pack zip and what it holds."""

    data: bytes
    filename: str  # `<pack_key>.wastickers.zip`, safe for Content-Disposition and file systems
    sticker_count: int
    animated: bool
    identifier: str
    version: int  # the pack version the zip was made from
    image_data_version: str  # what contents.json tells WhatsApp; changes whenever `version` does
    pack_id: str
    pack_key: str
    sha256: str  # of `data`; a strong ETag
    content_type: str = ZIP_CONTENT_TYPE

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ExportProblem:
    """One broken rule. `position` is the sticker's 1-based place in the pack, None for pack-wide rules.

    `message` is for the pack's owner and the operator: it names the command or setting that fixes
    the problem. `public_message` says only what is wrong, for anonymous downloaders: no command,
    setting, storage detail or decoder output.
    """

    rule: str
    message: str
    position: int | None = None
    public_message: str = field(kw_only=True)


@dataclass(frozen=True)
class _Snapshot:
    """The pack row, its items and their assets, all from the same pack version."""

    pack: Pack
    items: list[PackItem]
    assets: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class _Sticker:
    item: PackItem
    data: bytes
    info: WebpInfo

    @property
    def position(self) -> int:
        return self.item.position

    @property
    def animated(self) -> bool:
        # WhatsApp counts frames: a one-frame animation is a static sticker to its validator.
        return self.info.is_animated and self.info.frame_count > 1


@dataclass(frozen=True)
class _Plan:
    snapshot: _Snapshot
    stickers: list[_Sticker]
    tray_png: bytes | None
    problems: list[ExportProblem]


def whatsapp_identifier(pack_key: str, fallback: str) -> str:
    """The pack's contents.json identifier: its key, limited to WhatsApp's characters and length."""
    text = _IDENTIFIER_DISALLOWED.sub("_", pack_key or "")
    while ".." in text:
        text = text.replace("..", ".")
    text = text.strip()[:IDENTIFIER_MAX].strip()
    return text or fallback


def export_filename(identifier: str) -> str:
    stem = _FILENAME_DISALLOWED.sub("-", identifier.lower()).strip("-") or "pack"
    return stem + FILENAME_SUFFIX


def cut_on_word_boundary(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters, at the last space that fits when there is one."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    shortened = cut[:space] if space > 0 else text[:limit]
    return shortened.rstrip(" ,;:.-")[:limit] or text[:limit]


def clean_emoji_list(values: object, limit: int = EMOJIS_MAX) -> list[str]:
    """The first `limit` distinct, non-blank, single-token strings of `values` (a list, else nothing)."""
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        return []
    emojis: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        emoji = value.strip()
        if not emoji or len(emoji) > 32 or any(char.isspace() or ord(char) < 32 for char in emoji):
            continue
        if emoji not in emojis:
            emojis.append(emoji)
        if len(emojis) == limit:
            break
    return emojis


def website_problem(value: str, setting: str, required_host: str | None = None) -> str | None:
    """Why `value` is not usable as a WhatsApp link field (None when it is empty or fine)."""
    if not value:
        return None
    fix = f"set {setting} to a full link such as https://example.org/… or leave it empty."
    if any(char.isspace() or ord(char) < 32 for char in value):
        return f"{setting} contains spaces or control characters — {fix}"
    try:
        parts = urllib.parse.urlsplit(value)
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        return f"{setting} is not a valid URL — {fix}"
    if parts.scheme not in ("http", "https"):
        return f"{setting} must start with http:// or https:// — {fix}"
    if not _HOSTNAME.match(host):
        return f"{setting} has no valid host name — {fix}"
    if required_host is not None and host != required_host:
        return f"WhatsApp accepts {setting} only on {required_host} — use a https://{required_host}/… link."
    return None


# Settings problems are the operator's to fix; a visitor learns only that the server is at fault.
SERVER_SETTINGS_PROBLEM = "This server's WhatsApp export settings are invalid; its operator has to fix them."


class WhatsAppExporter:
    """Builds WhatsApp sticker-pack zips of packs, or says exactly which WhatsApp rule a pack breaks."""

    def __init__(self, database: Database, storage: Storage, settings: Settings) -> None:
        self.database = database
        self.storage = storage
        self.settings = settings

    def export(self, pack: Pack) -> WhatsAppExport:
        """The pack's current state as a WhatsApp zip. Raises ExportRefused naming the first broken
        rule and its fix, PackNotFound if the pack is gone, StorageFailure if storage cannot be read."""
        plan = self._plan(pack)
        if plan.problems:
            first = plan.problems[0]
            raise ExportRefused(
                first.message,
                details={
                    "rule": first.rule,
                    "position": first.position,
                    "problems": [problem.message for problem in plan.problems],
                },
                public_message=first.public_message,
                public_details={
                    "rule": first.rule,
                    "position": first.position,
                    "problems": [problem.public_message for problem in plan.problems],
                },
            )
        if plan.tray_png is None:  # unreachable: a pack with 3+ readable stickers always gets a tray
            raise StickerPackError("The tray icon could not be made; try the export again.")
        return self._build(plan.snapshot, plan.stickers, plan.tray_png)

    def problems(self, pack: Pack) -> list[str]:
        """Every WhatsApp rule the pack breaks, in the order `export` reports them; empty: exportable."""
        return [problem.message for problem in self.check(pack)]

    def check(self, pack: Pack) -> list[ExportProblem]:
        """`problems`, with each rule's name and sticker position kept apart from the message."""
        return self._plan(pack).problems

    # --- reading ------------------------------------------------------------------------------
    def _snapshot(self, pack_id: str) -> _Snapshot:
        """Pack, items and assets of one version. Every item change bumps the version, so an equal
        version before and after the reads proves the items belong to it (READ COMMITTED included)."""
        for _ in range(_SNAPSHOT_ATTEMPTS):
            with self.database.read() as connection:
                found = pack_repo.pack_with_count(connection, pack_id)
                if found is None:
                    raise PackNotFound(f"Pack {pack_id} does not exist; list packs with `omnizap pack list`.")
                items = [PackItem.from_row(row) for row in pack_repo.item_rows(connection, pack_id)]
                rows = sticker_repo.find_many(connection, [item.sticker_id for item in items])
                again = pack_repo.pack_with_count(connection, pack_id)
            if again is not None and int(again[0]["version"]) == int(found[0]["version"]):
                assets = {row["id"]: row for row in rows}
                return _Snapshot(Pack.from_row(*found), items, assets)
        raise StickerPackError("The pack kept changing while it was read; try the export again.")

    def _read_file(self, asset: Mapping[str, Any]) -> bytes | None:
        """The stored bytes, or None when storage holds nothing under the asset's key."""
        try:
            return self.storage.get(str(asset["storage_path"]))
        except ObjectNotFound:
            return None
        except ValueError:  # a legacy server path that is not a storage key: nothing to read there
            return None
        except StorageError as exc:
            raise StorageFailure(
                f"could not read sticker {asset['id']} from storage ({exc}); check the storage and retry"
            ) from exc

    # --- checking -----------------------------------------------------------------------------
    def _plan(self, pack: Pack) -> _Plan:
        snapshot = self._snapshot(pack.id)
        current = snapshot.pack
        key = current.pack_key
        if current.is_deleted:
            problem = ExportProblem(
                "pack_deleted",
                f"Pack {key!r} was deleted, and WhatsApp export needs a live pack — its stickers are still "
                "stored: add them to a new pack (`omnizap pack create`, `omnizap pack add`) and export that.",
                public_message="The pack was deleted.",
            )
            return _Plan(snapshot, [], None, [problem])
        problems: list[ExportProblem] = []
        problems.extend(self._count_problems(snapshot))
        stickers: list[_Sticker] = []
        broken: set[int] = set()
        for item in snapshot.items:
            sticker, sticker_problems = self._load_sticker(key, item, snapshot.assets.get(item.sticker_id))
            problems.extend(sticker_problems)
            if sticker_problems:
                broken.add(item.position)
            if sticker is not None:
                stickers.append(sticker)
        problems.extend(self._mixing_problems(key, stickers))
        for sticker in stickers:
            emojis = self._emojis(sticker)
            if len(emojis) < EMOJIS_MIN:
                problems.append(
                    ExportProblem(
                        "emojis",
                        f"Sticker #{sticker.position} has no emoji, and WhatsApp needs 1 to 3 per sticker — "
                        f"give it some with `omnizap pack set {key} --owner OWNER --item {sticker.position} "
                        "--emojis 😀`, or set STICKER_EXPORT_DEFAULT_EMOJI.",
                        sticker.position,
                        public_message=f"Sticker #{sticker.position} has no emoji, and WhatsApp needs 1 to 3 "
                        "per sticker.",
                    )
                )
        tray_png, tray_problems = self._tray(current, snapshot.items, stickers, broken)
        problems.extend(tray_problems)
        problems.extend(self._settings_problems())
        return _Plan(snapshot, stickers, tray_png, problems)

    @staticmethod
    def _count_problems(snapshot: _Snapshot) -> list[ExportProblem]:
        count = len(snapshot.items)
        key = snapshot.pack.pack_key
        if count < STICKERS_MIN:
            missing = STICKERS_MIN - count
            return [
                ExportProblem(
                    "sticker_count",
                    f"WhatsApp needs {STICKERS_MIN} to {STICKERS_MAX} stickers in a pack; this pack has "
                    f"{count} — add {missing} more with `omnizap pack add {key} STICKER_ID --owner OWNER`.",
                    public_message=f"WhatsApp needs {STICKERS_MIN} to {STICKERS_MAX} stickers in a pack; "
                    f"this pack has {count}.",
                )
            ]
        if count > STICKERS_MAX:
            extra = count - STICKERS_MAX
            return [
                ExportProblem(
                    "sticker_count",
                    f"WhatsApp needs {STICKERS_MIN} to {STICKERS_MAX} stickers in a pack; this pack has "
                    f"{count} — take {extra} out with `omnizap pack remove {key} POSITION --owner OWNER` "
                    "(clone the pack first to keep them in a second pack).",
                    public_message=f"WhatsApp needs {STICKERS_MIN} to {STICKERS_MAX} stickers in a pack; "
                    f"this pack has {count}.",
                )
            ]
        return []

    def _load_sticker(
        self, key: str, item: PackItem, asset: Mapping[str, Any] | None
    ) -> tuple[_Sticker | None, list[ExportProblem]]:
        position = item.position
        replace = (
            f"re-import its source with `omnizap sticker import` (which makes valid stickers), add the "
            f"new sticker and take this one out with `omnizap pack remove {key} {position} --owner OWNER`"
        )
        if asset is None:
            message = f"Sticker #{position} ({item.sticker_id}) has no stored sticker record — {replace}."
            unavailable = f"Sticker #{position} is not available."
            return None, [ExportProblem("sticker_missing", message, position, public_message=unavailable)]
        data = self._read_file(asset)
        if data is None:
            message = (
                f"Sticker #{position} ({item.sticker_id}): its file is missing from storage, so it cannot "
                "go into the zip — import its source again with `omnizap sticker import` (that restores the "
                f"file), or take it out with `omnizap pack remove {key} {position} --owner OWNER`."
            )
            unavailable = f"Sticker #{position} is not available."
            problem = ExportProblem("sticker_file_missing", message, position, public_message=unavailable)
            return None, [problem]
        if hashlib.sha256(data).hexdigest() != asset["sha256"]:
            message = (
                f"Sticker #{position} ({item.sticker_id}): its stored file does not match its recorded "
                f"checksum (damaged or replaced) — {replace}."
            )
            damaged = f"Sticker #{position} is damaged."
            return None, [ExportProblem("sticker_checksum", message, position, public_message=damaged)]
        try:
            info = inspect_webp(data)
        except WebpFormatError as exc:
            message = (
                f"Sticker #{position} ({item.sticker_id}) is not a readable WebP file ({exc}), and WhatsApp "
                f"takes only WebP stickers — {replace}."
            )
            not_webp = f"Sticker #{position} is not a readable WebP file; WhatsApp takes only WebP stickers."
            return None, [ExportProblem("sticker_format", message, position, public_message=not_webp)]
        sticker = _Sticker(item, data, info)
        problems: list[ExportProblem] = []
        if (info.width, info.height) != (STICKER_SIDE, STICKER_SIDE):
            problems.append(
                ExportProblem(
                    "sticker_dimensions",
                    f"Sticker #{position} is {info.width}×{info.height}, and WhatsApp needs every sticker "
                    f"to be exactly {STICKER_SIDE}×{STICKER_SIDE} — {replace}.",
                    position,
                    public_message=f"Sticker #{position} is {info.width}×{info.height}, and WhatsApp needs "
                    f"every sticker to be exactly {STICKER_SIDE}×{STICKER_SIDE}.",
                )
            )
        kind, limit = (
            ("animated", WHATSAPP_ANIMATED_MAX_BYTES)
            if sticker.animated
            else ("static", WHATSAPP_STATIC_MAX_BYTES)
        )
        if len(data) > limit:
            problems.append(
                ExportProblem(
                    "sticker_file_size",
                    f"Sticker #{position} has {len(data):,} bytes ({len(data) / 1024:.1f} KB), and WhatsApp "
                    f"allows a {kind} sticker at most {limit // 1024} KB ({limit:,} bytes) — {replace}.",
                    position,
                    public_message=f"Sticker #{position} has {len(data) / 1024:.1f} KB, and WhatsApp "
                    f"allows a {kind} sticker at most {limit // 1024} KB.",
                )
            )
        if sticker.animated:
            short = [
                (index, duration)
                for index, duration in enumerate(info.frame_durations_ms, 1)
                if duration < WHATSAPP_MIN_FRAME_MS
            ]
            if short:
                index, duration = short[0]
                problems.append(
                    ExportProblem(
                        "frame_duration",
                        f"Sticker #{position}: frame {index} lasts {duration} ms, and WhatsApp needs every "
                        f"frame to last at least {WHATSAPP_MIN_FRAME_MS} ms ({len(short)} of "
                        f"{len(info.frame_durations_ms)} frames are shorter) — {replace}.",
                        position,
                        public_message=f"Sticker #{position}: frame {index} lasts {duration} ms, and "
                        f"WhatsApp needs every frame to last at least {WHATSAPP_MIN_FRAME_MS} ms.",
                    )
                )
            if info.duration_ms > WHATSAPP_MAX_DURATION_MS:
                problems.append(
                    ExportProblem(
                        "animation_duration",
                        f"Sticker #{position} lasts {info.duration_ms / 1000:.2f} s, and WhatsApp allows "
                        f"animated stickers at most {WHATSAPP_MAX_DURATION_MS // 1000} s — {replace} "
                        "(import cuts videos to 10 s).",
                        position,
                        public_message=f"Sticker #{position} lasts {info.duration_ms / 1000:.2f} s, and "
                        f"WhatsApp allows animated stickers at most {WHATSAPP_MAX_DURATION_MS // 1000} s.",
                    )
                )
        return sticker, problems

    @staticmethod
    def _mixing_problems(key: str, stickers: Sequence[_Sticker]) -> list[ExportProblem]:
        animated = [sticker.position for sticker in stickers if sticker.animated]
        static = [sticker.position for sticker in stickers if not sticker.animated]
        if not animated or not static:
            return []
        smaller, kind = (animated, "animated") if len(animated) <= len(static) else (static, "static")
        shown = ", ".join(f"#{position}" for position in smaller[:10]) + (" …" if len(smaller) > 10 else "")
        message = (
            f"WhatsApp packs are all static or all animated; this pack mixes {len(animated)} animated and "
            f"{len(static)} static stickers — move the {kind} one(s) ({shown}) to a pack of their own "
            f"(`omnizap pack remove {key} POSITION --owner OWNER`, then `omnizap pack add`)."
        )
        public = (
            f"WhatsApp packs are all static or all animated; this pack mixes {len(animated)} animated and "
            f"{len(static)} static stickers."
        )
        return [ExportProblem("mixed_pack", message, smaller[0], public_message=public)]

    def _emojis(self, sticker: _Sticker) -> list[str]:
        """The item's first 3 emojis; else those embedded in the sticker; else the default emoji."""
        emojis = clean_emoji_list(sticker.item.emojis)
        if not emojis:
            emojis = clean_emoji_list(read_sticker_metadata(sticker.data).get("emojis"))
        if not emojis:
            emojis = clean_emoji_list([self.settings.sticker_export_default_emoji])
        return emojis

    def _tray(
        self, pack: Pack, items: Sequence[PackItem], stickers: Sequence[_Sticker], broken: set[int]
    ) -> tuple[bytes | None, list[ExportProblem]]:
        """The tray PNG from the cover (else the first sticker). A cover with its own problem blocks the
        tray silently: that problem is already reported, and fixing it fixes the tray."""
        if not items:
            return None, []
        cover_item = next((item for item in items if item.sticker_id == pack.cover_sticker_id), items[0])
        cover = next((sticker for sticker in stickers if sticker.item.id == cover_item.id), None)
        if cover is None or cover.position in broken:
            return None, []
        fix = f"choose another cover with `omnizap pack set {pack.pack_key} --owner OWNER --cover POSITION`"
        try:
            png = make_tray_png(cover.data)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            message = (
                f"The tray icon is made from sticker #{cover.position}, which cannot be decoded ({exc}) — "
                f"{fix}, or replace that sticker."
            )
            public = f"The tray icon cannot be made from sticker #{cover.position}."
            return None, [ExportProblem("tray_image", message, cover.position, public_message=public)]
        if len(png) > TRAY_MAX_BYTES:
            message = (
                f"The tray icon made from sticker #{cover.position} has {len(png) / 1024:.1f} KB, and "
                f"WhatsApp allows at most {TRAY_MAX_BYTES // 1024} KB — {fix}."
            )
            public = f"The tray icon cannot be made from sticker #{cover.position}."
            return None, [ExportProblem("tray_image", message, cover.position, public_message=public)]
        return png, []

    def _settings_problems(self) -> list[ExportProblem]:
        settings = self.settings
        checks = [
            (settings.sticker_export_publisher_website, "STICKER_EXPORT_PUBLISHER_WEBSITE", None),
            (settings.sticker_export_privacy_policy_website, "STICKER_EXPORT_PRIVACY_POLICY_WEBSITE", None),
            (
                settings.sticker_export_license_agreement_website,
                "STICKER_EXPORT_LICENSE_AGREEMENT_WEBSITE",
                None,
            ),
            (
                settings.sticker_export_android_play_store_link,
                "STICKER_EXPORT_ANDROID_PLAY_STORE_LINK",
                PLAY_STORE_HOST,
            ),
            (settings.sticker_export_ios_app_store_link, "STICKER_EXPORT_IOS_APP_STORE_LINK", APP_STORE_HOST),
        ]
        problems = [
            ExportProblem("website", message, public_message=SERVER_SETTINGS_PROBLEM)
            for value, name, host in checks
            if (message := website_problem(value.strip(), name, host)) is not None
        ]
        email = settings.sticker_export_publisher_email.strip()
        if email and not _EMAIL.match(email):
            problems.append(
                ExportProblem(
                    "publisher_email",
                    "STICKER_EXPORT_PUBLISHER_EMAIL is not an email address — set it to one such as "
                    "stickers@example.org, or leave it empty.",
                    public_message=SERVER_SETTINGS_PROBLEM,
                )
            )
        return problems

    # --- writing ------------------------------------------------------------------------------
    def _build(self, snapshot: _Snapshot, stickers: Sequence[_Sticker], tray_png: bytes) -> WhatsAppExport:
        pack = snapshot.pack
        identifier = whatsapp_identifier(pack.pack_key, fallback=pack.id)
        name = sanitize_text(pack.name, TEXT_MAX) or identifier
        publisher = (
            sanitize_text(pack.publisher, TEXT_MAX)
            or sanitize_text(self.settings.sticker_default_publisher, TEXT_MAX)
            or "OmniZap"
        )
        animated = any(sticker.animated for sticker in stickers)
        label_limit = ACCESSIBILITY_ANIMATED_MAX if animated else ACCESSIBILITY_STATIC_MAX
        image_data_version = str(pack.version)
        files: list[tuple[str, bytes]] = []
        entries = []
        width = max(2, len(str(len(stickers))))
        for index, sticker in enumerate(stickers, 1):
            file_name = f"sticker_{index:0{width}d}.webp"
            files.append((file_name, sticker.data))
            label = sanitize_text(sticker.item.accessibility_label, ACCESSIBILITY_ANIMATED_MAX) or ""
            entries.append(
                {
                    "image_file": file_name,
                    "emojis": self._emojis(sticker),
                    "accessibility_text": cut_on_word_boundary(label, label_limit),
                }
            )
        settings = self.settings
        contents = {
            "android_play_store_link": settings.sticker_export_android_play_store_link.strip(),
            "ios_app_store_link": settings.sticker_export_ios_app_store_link.strip(),
            "sticker_packs": [
                {
                    "identifier": identifier,
                    "name": name,
                    "publisher": publisher,
                    "tray_image_file": TRAY_FILE,
                    "image_data_version": image_data_version,
                    "avoid_cache": False,
                    "publisher_email": settings.sticker_export_publisher_email.strip(),
                    "publisher_website": settings.sticker_export_publisher_website.strip(),
                    "privacy_policy_website": settings.sticker_export_privacy_policy_website.strip(),
                    "license_agreement_website": settings.sticker_export_license_agreement_website.strip(),
                    "animated_sticker_pack": animated,
                    "stickers": entries,
                }
            ],
        }
        document = json.dumps(contents, ensure_ascii=False, indent=2) + "\n"
        archive = _deterministic_zip(
            [
                (CONTENTS_FILE, document.encode("utf-8"), True),
                (TITLE_FILE, name.encode("utf-8"), True),
                (AUTHOR_FILE, publisher.encode("utf-8"), True),
                (TRAY_FILE, tray_png, False),
                *((file_name, data, False) for file_name, data in files),
            ]
        )
        return WhatsAppExport(
            data=archive,
            filename=export_filename(identifier),
            sticker_count=len(stickers),
            animated=animated,
            identifier=identifier,
            version=pack.version,
            image_data_version=image_data_version,
            pack_id=pack.id,
            pack_key=pack.pack_key,
            sha256=hashlib.sha256(archive).hexdigest(),
        )


def make_tray_png(webp: bytes) -> bytes:
    """A 96×96 RGBA PNG of the sticker's first frame. Pillow's PNG writer adds no timestamps, so equal
    input gives equal bytes; a palette version is the fallback if the full-colour one is over 50 KB."""
    with Image.open(io.BytesIO(webp)) as image:
        if (image.width, image.height) != (STICKER_SIDE, STICKER_SIDE):
            raise ValueError(f"the sticker is {image.width}×{image.height}, not 512×512")
        image.seek(0)
        frame = image.convert("RGBA")
    tray = frame.resize((TRAY_SIDE, TRAY_SIDE), Image.Resampling.LANCZOS)
    png = _png_bytes(tray)
    if len(png) > TRAY_MAX_BYTES:
        png = _png_bytes(tray.quantize(colors=256, method=Image.Quantize.FASTOCTREE))
    return png


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _deterministic_zip(entries: Sequence[tuple[str, bytes, bool]]) -> bytes:
    """A zip of (name, data, compress) entries in the given order, with fixed times and attributes.

    Already-compressed images are stored as they are; text is deflated at a fixed level.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, compress in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = _ZIP_UNIX
            info.external_attr = _ZIP_FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            archive.writestr(
                info, data, compress_type=info.compress_type, compresslevel=9 if compress else None
            )
    return buffer.getvalue()


__all__ = [
    "ExportProblem",
    "WhatsAppExport",
    "WhatsAppExporter",
    "clean_emoji_list",
    "cut_on_word_boundary",
    "export_filename",
    "make_tray_png",
    "whatsapp_identifier",
]
