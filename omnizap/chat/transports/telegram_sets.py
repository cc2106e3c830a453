"""`/pack send` on Telegram: the pack becomes (or updates) a real Telegram sticker set.

The set is named `<slug of the pack key>_by_<bot username>` (Telegram's rule for sets a bot makes)
and recorded in `chat_telegram_sticker_set`, with the sticker each set entry came from, so a later
send of a changed pack adds the new stickers, deletes the removed ones and fixes the order instead
of starting over. Static stickers go in as 512 px WEBP, animated ones as VP9 WEBM video stickers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from telegram import Bot, InputSticker, StickerSet
from telegram.error import BadRequest, Forbidden

from omnizap.chat.messages import NativePack, PackSticker, ReplyNotSupported, SentPack
from omnizap.chat.transports.telegram_media import StickerFormatError, telegram_sticker
from omnizap.config import Settings
from omnizap.platform.db.schema import chat_telegram_sticker_set

logger = logging.getLogger(__name__)

MAX_NAME = 64
MAX_TITLE = 64
MAX_STICKERS = 120  # a regular sticker set's limit
MAX_INITIAL = 50  # createNewStickerSet takes 1-50 stickers; the rest are added one by one
MAX_EMOJIS = 20
ADD_LINK = "https://t.me/addstickers/"


def set_name_for(pack_key: str, bot_username: str) -> str:
    """Telegram's rules: 1-64 of [a-z0-9_], starts with a letter, no `__`, ends `_by_<bot>`."""
    suffix = f"_by_{bot_username}"
    folded = unicodedata.normalize("NFKD", pack_key).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", folded)).strip("_")
    if not slug or not slug[0].isalpha():
        slug = f"p_{slug}".rstrip("_")
    slug = slug[: MAX_NAME - len(suffix)].rstrip("_")
    return f"{slug}{suffix}"


@dataclass(frozen=True)
class SetEntry:
    sha256: str  # of the pack sticker's WebP
    file_unique_id: str  # Telegram's stable id of the set's sticker


@dataclass(frozen=True)
class SetRecord:
    pack_key: str
    set_name: str
    owner_user_id: int
    synced_version: int
    entries: tuple[SetEntry, ...]


class StickerSetRepository:
    def __init__(self, database: Any) -> None:
        self.database = database

    def get(self, pack_key: str) -> SetRecord | None:
        table = chat_telegram_sticker_set
        with self.database.read() as connection:
            row = connection.execute(sa.select(table).where(table.c.pack_key == pack_key)).mappings().first()
        if row is None:
            return None
        entries = tuple(
            SetEntry(str(item["sha256"]), str(item["file_unique_id"])) for item in json.loads(row["stickers"])
        )
        return SetRecord(
            row["pack_key"], row["set_name"], int(row["owner_user_id"]), int(row["synced_version"]), entries
        )

    def get_by_name(self, set_name: str) -> SetRecord | None:
        table = chat_telegram_sticker_set
        with self.database.read() as connection:
            key = connection.execute(sa.select(table.c.pack_key).where(table.c.set_name == set_name)).scalar()
        return self.get(key) if key else None

    def save(self, record: SetRecord, *, pack_id: str = "") -> None:
        stickers = json.dumps(
            [{"sha256": e.sha256, "file_unique_id": e.file_unique_id} for e in record.entries]
        )
        values = {
            "pack_key": record.pack_key,
            "pack_id": pack_id or None,
            "set_name": record.set_name,
            "owner_user_id": record.owner_user_id,
            "synced_version": record.synced_version,
            "stickers": stickers,
        }
        update = {name: value for name, value in values.items() if name != "pack_key"}
        with self.database.transaction() as connection:
            connection.execute(
                self.database.upsert(
                    chat_telegram_sticker_set, values, conflict_columns=["pack_key"], update=update
                )
            )


def _sha256(sticker: PackSticker) -> str:
    return hashlib.sha256(sticker.data).hexdigest()


class StickerSetSync:
    def __init__(self, bot: Bot, database: Any, settings: Settings) -> None:
        self.bot = bot
        self.repository = StickerSetRepository(database)
        self.default_emoji = settings.sticker_export_default_emoji or "🙂"

    def _input(self, sticker: PackSticker) -> InputSticker:
        try:
            converted = telegram_sticker(sticker.data, animated=sticker.animated)
        except StickerFormatError as exc:
            raise ReplyNotSupported(f"a sticker cannot be made into a Telegram sticker: {exc}") from exc
        emojis = [emoji for emoji in sticker.emojis if emoji][:MAX_EMOJIS] or [self.default_emoji]
        return InputSticker(converted.data, emoji_list=emojis, format=converted.format)

    async def _current(self, name: str) -> StickerSet | None:
        try:
            return await self.bot.get_sticker_set(name)
        except BadRequest as exc:
            if "invalid" in exc.message.lower() or "not found" in exc.message.lower():
                return None
            raise

    async def sync(self, pack: NativePack, *, owner_user_id: int) -> SentPack:
        try:
            return await self._sync(pack, owner_user_id)
        except (BadRequest, Forbidden) as exc:
            # The core falls back to sticker-by-sticker messages.
            raise ReplyNotSupported(f"Telegram refused the sticker set: {exc.message}") from exc

    async def _sync(self, pack: NativePack, owner_user_id: int) -> SentPack:
        record = self.repository.get(pack.pack_key)
        name = record.set_name if record else set_name_for(pack.pack_key, self.bot.username)
        owner = record.owner_user_id if record else owner_user_id
        title = (pack.name.strip() or "Stickers")[:MAX_TITLE]
        wanted: list[tuple[str, PackSticker]] = []
        for sticker in pack.stickers:
            digest = _sha256(sticker)
            if digest not in {seen for seen, _ in wanted}:
                wanted.append((digest, sticker))
        if len(wanted) > MAX_STICKERS:
            logger.warning(
                "pack %s has %d stickers; Telegram sets hold %d", pack.pack_key, len(wanted), MAX_STICKERS
            )
            wanted = wanted[:MAX_STICKERS]
        if not wanted:
            raise ReplyNotSupported("an empty pack cannot become a Telegram sticker set")

        current = await self._current(name)
        if current is None:
            entries = await self._create(name, title, owner, wanted)
        else:
            known = {entry.file_unique_id: entry.sha256 for entry in (record.entries if record else ())}
            entries = await self._update(current, title, owner, wanted, known)
        self.repository.save(
            SetRecord(pack.pack_key, name, owner, pack.version, tuple(entries)), pack_id=pack.pack_id
        )
        return SentPack(link=ADD_LINK + name, set_name=name)

    async def _create(
        self, name: str, title: str, owner: int, wanted: list[tuple[str, PackSticker]]
    ) -> list[SetEntry]:
        first = wanted[:MAX_INITIAL]
        await self.bot.create_new_sticker_set(
            owner, name, title, [self._input(sticker) for _, sticker in first], sticker_type="regular"
        )
        for _, sticker in wanted[MAX_INITIAL:]:
            await self.bot.add_sticker_to_set(owner, name, self._input(sticker))
        created = await self.bot.get_sticker_set(name)
        return [
            SetEntry(digest, s.file_unique_id)
            for (digest, _), s in zip(wanted, created.stickers, strict=True)
        ]

    async def _update(
        self,
        current: StickerSet,
        title: str,
        owner: int,
        wanted: list[tuple[str, PackSticker]],
        known: dict[str, str],
    ) -> list[SetEntry]:
        name = current.name
        if current.title != title:
            await self.bot.set_sticker_set_title(name, title)
        present = {known[s.file_unique_id] for s in current.stickers if s.file_unique_id in known}
        missing = [(digest, sticker) for digest, sticker in wanted if digest not in present]
        # Add first, delete after: a set may never be empty.
        for _, sticker in missing:
            await self.bot.add_sticker_to_set(owner, name, self._input(sticker))
        after_adds = await self.bot.get_sticker_set(name)
        shas = dict(known)
        added = after_adds.stickers[len(after_adds.stickers) - len(missing) :] if missing else ()
        for (digest, _), sticker in zip(missing, added, strict=True):
            shas[sticker.file_unique_id] = digest
        wanted_shas = {digest for digest, _ in wanted}
        kept = []
        for sticker in after_adds.stickers:
            digest = shas.get(sticker.file_unique_id)
            if digest is None or digest not in wanted_shas or digest in {d for d, _ in kept}:
                await self.bot.delete_sticker_from_set(sticker.file_id)
            else:
                kept.append((digest, sticker))
        # Reorder: move each sticker to its place, front to back.
        order = [digest for digest, _ in wanted]
        for position, digest in enumerate(order):
            index = next(i for i, (d, _) in enumerate(kept) if d == digest)
            if index != position:
                moving = kept.pop(index)
                await self.bot.set_sticker_position_in_set(moving[1].file_id, position)
                kept.insert(position, moving)
        return [SetEntry(digest, sticker.file_unique_id) for digest, sticker in kept]
