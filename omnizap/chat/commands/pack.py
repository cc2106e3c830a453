"""`/pack` and its subcommands (chat §2, §3) over the pack service.

Deliberate differences from the original (docs/chat.md "Differences"): `setpublisher` is an alias of
`setpub`; an invalid visibility is refused instead of becoming public; `list` shows the collector
packs, marked automatic; `reorder` accepts the short ids `info` prints; `clone` obeys the pack
limit; `delete` asks for confirmation; replying to something that is not a sticker is refused
instead of silently using the last sticker; the STICKER_NOT_FOUND reply says what was not found.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from omnizap.chat import layout, store
from omnizap.chat.commands.errors import ChatPackError
from omnizap.chat.commands.media import is_sticker, rejection_text
from omnizap.chat.context import ChatContext, SendFailed
from omnizap.chat.layout import PackMessage, Section
from omnizap.chat.messages import (
    MediaUnavailable,
    NativePack,
    PackSticker,
    Reply,
    ReplyKind,
    ReplyNotSupported,
)
from omnizap.chat.parsing import (
    first_token,
    identifier_and_value,
    pipe_options,
    split_subcommand,
    strip_quotes,
)
from omnizap.core.errors import PackLimitReached, PackNotFound, StickerPackError, StorageFailure
from omnizap.core.packs.rules import (
    DESCRIPTION_MAX,
    LABEL_MAX,
    NAME_MAX,
    PUBLISHER_MAX,
    is_valid_pack_key,
    reference_candidates,
    sanitize_text,
)
from omnizap.core.stickers.errors import INVALID_STICKER, MediaRejected

if TYPE_CHECKING:
    from omnizap.core.packs.models import Pack, PackItem

logger = logging.getLogger(__name__)

LIST_LIMIT = 100
PREVIEW_ITEMS = 12
SHORT_ID = 10
SHORT_ID_MIN = 4  # shortest prefix `reorder` accepts for a sticker id
CONFIRM_WORDS = {"confirm", "confirmar"}
SHAREABLE = {"public", "unlisted"}
_ORDER_SPLIT = re.compile(r"[\s,]+")
_UNBOUNDED = 1_000_000


# --- shared helpers ---------------------------------------------------------------------------------
def _cmd(ctx: ChatContext, text: str) -> str:
    return f"`{ctx.prefix}pack {text}`"


def _items_label(ctx: ChatContext, pack: Pack) -> str:
    return f"{pack.sticker_count}/{ctx.settings.sticker_pack_max_items}"


def _invalid(message: str) -> ChatPackError:
    return ChatPackError("INVALID_INPUT", message)


def _text_field(value: str, max_len: int, missing: str, too_long: str) -> str:
    """Sanitised text for a required field; refuses empty and over-long input with a clear message."""
    cleaned = sanitize_text(value, _UNBOUNDED)
    if cleaned is None:
        raise _invalid(missing)
    if len(cleaned) > max_len:
        raise _invalid(too_long.format(count=len(cleaned), max=max_len))
    return cleaned


def _require_reference(ctx: ChatContext, reference: str) -> str:
    if not sanitize_text(reference, _UNBOUNDED):
        raise _invalid(ctx._("Inform the pack to continue."))
    return reference


def _resolve(ctx: ChatContext, reference: str) -> Pack:
    return ctx.packs.resolve(ctx.owner, _require_reference(ctx, reference))


def _resolve_for_send(ctx: ChatContext, reference: str) -> Pack:
    """The sender's own pack, else anyone's public or unlisted pack by key or link (chat §1.2)."""
    try:
        return _resolve(ctx, reference)
    except PackNotFound:
        pass
    for candidate in reference_candidates(reference):
        if not is_valid_pack_key(candidate):
            continue
        try:
            pack = ctx.packs.get_by_key(candidate)
        except PackNotFound:
            continue
        if pack.visibility in SHAREABLE and not pack.is_deleted:
            return pack
    raise PackNotFound("no shareable pack matches")


def sticker_in_context(ctx: ChatContext, purpose: str) -> str:
    """The sticker `add`/`setcover` use (chat §2.2): the message's or quoted sticker, stored now;
    else the sender's last sticker. `purpose` is "add" or "cover" (for the refusal's wording)."""
    _ = ctx._
    media = ctx.message.media or ctx.message.quoted_media
    if media is not None:
        if not is_sticker(media):
            raise ChatPackError(
                "STICKER_NOT_FOUND",
                _("That message is not a sticker. Reply to a sticker (not a photo or video)."),
            )
        limit = ctx.settings.sticker_pack_max_sticker_bytes
        if media.declared_size is not None and media.declared_size > limit:
            raise _invalid(_("Sticker exceeds the limit of {size} MB.", size=f"{limit / 1_048_576:.1f}"))
        try:
            data = ctx.download(media, max_bytes=limit)
        except MediaUnavailable as exc:
            raise ChatPackError("STORAGE_ERROR", _("Could not download the sticker for storage.")) from exc
        if len(data) > limit:
            raise _invalid(_("Sticker exceeds the limit of {size} MB.", size=f"{limit / 1_048_576:.1f}"))
        try:
            try:
                asset = ctx.stickers.ingest_webp_sticker(data, owner_jid=ctx.owner).asset
            except MediaRejected as exc:
                if exc.code != INVALID_STICKER:
                    raise
                # A WebP sticker another app made outside WhatsApp's limits: re-encode it instead.
                asset = ctx.stickers.ingest(data, owner_jid=ctx.owner).asset
        except MediaRejected as exc:
            raise _invalid(rejection_text(ctx, exc)) from exc
        store.remember_last_sticker(ctx.database, ctx.owner, asset.id)
        return asset.id
    remembered = store.last_sticker(ctx.database, ctx.owner)
    if remembered is None:
        if purpose == "cover":
            raise ChatPackError("STICKER_NOT_FOUND", _("I did not find a sticker to set as cover."))
        raise ChatPackError("STICKER_NOT_FOUND", _("I did not find a sticker to add."))
    return remembered


# --- help ---------------------------------------------------------------------------------------------
def help_text(ctx: ChatContext) -> str:
    _ = ctx._
    p = ctx.prefix
    main = [
        _('`{p}pack create "Meus memes 😂" | publisher="Seu Nome" | desc="Descrição"`', p=p),
        _("   free name: spaces and emojis allowed"),
        f"`{p}pack list`",
        f"`{p}pack info <pack>`",
        f"`{p}pack add <pack>`",
        _("   reply to a sticker, or the last one sent is used"),
        f"`{p}pack setcover <pack>`",
        _('`{p}pack send "<pack name>"` or `{p}pack send <pack_id>`', p=p),
    ]
    extra = [
        "rename • setpub • setdesc • remove • reorder • clone • publish • delete",
        _("`{p}pack delete <pack> confirm` deletes for good.", p=p),
    ]
    return layout.render(
        _,
        PackMessage(
            [
                _("📦 *STICKER PACKS — QUICK GUIDE*"),
                _(
                    "Every sticker you create is automatically saved to your *Main Pack*. Besides that, "
                    "you can create extra packs to organize by theme and send faster."
                ),
            ],
            [Section(_("🧭 *MAIN COMMANDS*"), main), Section(_("🧰 *EXTRA COMMANDS*"), extra)],
            [_("✅ Done! Tell me what you want to do (create, organize, send) and I'll guide you.")],
        ),
    )


def show_help(ctx: ChatContext, _rest: str) -> None:
    ctx.reply(help_text(ctx))


# --- create, list, info ------------------------------------------------------------------------------
def _option(options: dict[str, str], *names: str) -> str | None:
    for name in names:
        if name in options:
            return options[name]
    return None


def _visibility(ctx: ChatContext, value: str) -> str:
    visibility = (value or "").strip().lower()
    if visibility not in {"private", "public", "unlisted"}:
        raise _invalid(ctx._("Invalid visibility. Use: private, public or unlisted."))
    return visibility


def _description(ctx: ChatContext, value: str | None) -> str | None:
    cleaned = sanitize_text(value, _UNBOUNDED)
    if cleaned is None or cleaned.lower() in {"-", "clear"}:
        return None
    if len(cleaned) > DESCRIPTION_MAX:
        raise _invalid(
            ctx._(
                "Description too long: {count} characters (max {max}).",
                count=len(cleaned),
                max=DESCRIPTION_MAX,
            )
        )
    return cleaned


def create(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    raw_name, options = pipe_options(rest)
    name = _text_field(
        raw_name,
        NAME_MAX,
        _("Pack name is required."),
        _("Pack name too long: {count} characters (max {max})."),
    )
    given_publisher = _option(options, "publisher", "pub", "autor")
    if given_publisher is not None:
        publisher = _text_field(
            given_publisher,
            PUBLISHER_MAX,
            _("Pack publisher is required."),
            _("Publisher too long: {count} characters (max {max})."),
        )
    else:
        publisher = sanitize_text(ctx.sender_name, PUBLISHER_MAX) or "OmniZap"
    description = _description(ctx, _option(options, "desc", "description"))
    given_visibility = _option(options, "visibility", "vis")
    visibility = _visibility(ctx, given_visibility) if given_visibility is not None else "public"
    pack = ctx.packs.create_pack(
        ctx.owner, name, publisher=publisher, description=description, visibility=visibility
    )
    key = pack.pack_key
    ctx.reply(
        layout.render(
            _,
            PackMessage(
                [_("✅ *Pack created!*"), _("Your pack is already available and ready to receive stickers.")],
                [
                    Section(
                        _("📌 *DETAILS*"),
                        [
                            _("📦 Name: *{name}*", name=pack.name),
                            _("🆔 ID: `{key}`", key=key),
                            _("👤 Publisher: {publisher}", publisher=pack.publisher),
                            _("👁️ Visibility: {label}", label=layout.visibility_label(_, pack.visibility)),
                        ],
                    ),
                    Section(
                        _("➡️ *NEXT ACTIONS*"),
                        [
                            _("Reply to a sticker and use {command}", command=_cmd(ctx, f"add {key}")),
                            _("To check: {command}", command=_cmd(ctx, f"info {key}")),
                        ],
                    ),
                ],
                [_("💡 Tip: use packs by theme to organize and send faster.")],
            ),
        )
    )


def list_packs(ctx: ChatContext, _rest: str) -> None:
    from omnizap.core.packs.service import pack_kind

    _ = ctx._
    base = ctx.packs.auto_pack_base
    packs = [pack for pack in ctx.packs.list_packs(ctx.owner) if pack_kind(pack, base) != "theme"][
        :LIST_LIMIT
    ]
    if not packs:
        ctx.reply(
            layout.render(
                _,
                PackMessage(
                    [
                        _("📭 *No extra pack found.*"),
                        _("The stickers you create keep being saved automatically in your *Main Pack*."),
                    ],
                    [
                        Section(
                            _("🆕 *START IN 3 STEPS*"),
                            [
                                _("1. Create: {command}", command=_cmd(ctx, 'create "Meu Pack"')),
                                _(
                                    "2. Reply to a sticker and add: {command}",
                                    command=_cmd(ctx, 'add "Meu Pack"'),
                                ),
                                _("3. Check: {command}", command=_cmd(ctx, 'info "Meu Pack"')),
                            ],
                        )
                    ],
                    [_("💡 Tip: create packs by theme (memes, animes, reactions) to find them fast.")],
                ),
            )
        )
        return
    blocks: list[str] = []
    for index, pack in enumerate(packs, 1):
        automatic = _(" _(automatic)_") if pack_kind(pack, base) == "collector" else ""
        blocks += [
            f"{index}. *{pack.name}*{automatic}",
            "   " + _("🆔 ID: `{key}`", key=pack.pack_key),
            "   " + _("🧩 Items: {count}", count=_items_label(ctx, pack)),
            "   " + _("👁️ Visibility: {label}", label=layout.visibility_label(_, pack.visibility)),
        ]
    ctx.reply(
        layout.render(
            _,
            PackMessage(
                [
                    _("📋 *Packs found: {count}*", count=len(packs)),
                    _("You can use the pack's *name* or *ID* to see details, edit or send."),
                ],
                [
                    Section(_("📦 *YOUR PACKS*"), blocks),
                    Section(
                        _("🛠 *SHORTCUTS*"),
                        [_cmd(ctx, "info <pack>"), _cmd(ctx, "send <pack>"), _cmd(ctx, 'create "Novo pack"')],
                    ),
                ],
                [_("✅ All set — choose a pack and keep managing.")],
            ),
        )
    )


def _preview_line(ctx: ChatContext, pack: Pack, item: PackItem) -> str:
    line = f"{item.position}. `{item.sticker_id[:SHORT_ID]}`"
    if item.emojis:
        line += " " + " ".join(item.emojis)
    if pack.cover_sticker_id == item.sticker_id:
        line += " " + ctx._("🖼️ *Cover*")
    return line


def info(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    pack = _resolve(ctx, strip_quotes(rest))
    items = ctx.packs.items(pack.id)
    cover = next((item.position for item in items if item.sticker_id == pack.cover_sticker_id), None)
    data = [
        _("📦 Name: *{name}*", name=pack.name),
        _("🆔 ID: `{key}`", key=pack.pack_key),
        _("👤 Publisher: {publisher}", publisher=pack.publisher),
        _("👁️ Visibility: {label}", label=layout.visibility_label(_, pack.visibility)),
        _("🧩 Items: {count}", count=_items_label(ctx, pack)),
        _("🖼️ Cover: sticker #{position}", position=cover) if cover else _("🖼️ Cover: not set"),
        _('📝 Description: "{text}"', text=pack.description)
        if pack.description
        else _("📝 Description: not set"),
    ]
    preview = [_preview_line(ctx, pack, item) for item in items[:PREVIEW_ITEMS]]
    if len(items) > PREVIEW_ITEMS:
        preview.append(_("… and {count} more sticker(s).", count=len(items) - PREVIEW_ITEMS))
    if not items:
        preview = [_("No sticker registered in this pack yet.")]
    key = pack.pack_key
    ctx.reply(
        layout.render(
            _,
            PackMessage(
                [_('ℹ️ *Pack info: "{name}"*', name=pack.name)],
                [
                    Section(_("📌 *PACK DATA*"), data),
                    Section(_("🖼️ *PREVIEW (UP TO 12 ITEMS)*"), preview),
                    Section(
                        _("⚙️ *AVAILABLE ACTIONS*"),
                        [
                            _cmd(ctx, f"add {key}"),
                            _cmd(ctx, f"setcover {key}"),
                            _cmd(ctx, f"reorder {key} 1 2 3 ..."),
                            _cmd(ctx, f"send {key}"),
                        ],
                    ),
                ],
            ),
        )
    )


# --- items ------------------------------------------------------------------------------------------
def add(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, options = pipe_options(rest)
    pack = _resolve(ctx, reference)
    emojis = _option(options, "emojis", "emoji")
    label = _option(options, "label", "accessibility")
    if label is not None and len(sanitize_text(label, _UNBOUNDED) or "") > LABEL_MAX:
        raise _invalid(_("Label too long (max {max} characters).", max=LABEL_MAX))
    sticker_id = sticker_in_context(ctx, "add")
    try:
        ctx.packs.add_sticker(ctx.owner, pack.id, sticker_id, emojis=emojis, accessibility_label=label)
    except PackLimitReached as exc:
        raise ChatPackError(
            "PACK_LIMIT_REACHED",
            _("The pack reached the limit of {max} stickers.", max=ctx.settings.sticker_pack_max_items),
        ) from exc
    pack = ctx.packs.resolve(ctx.owner, pack.id)
    key = pack.pack_key
    ctx.reply(
        layout.success(
            _,
            _("➕ *Sticker added!*"),
            _("Item added successfully to the selected pack."),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("🧩 Items: {count}", count=_items_label(ctx, pack)),
                _("🆔 ID: `{key}`", key=key),
            ],
            [
                _(
                    "Set as cover: reply to the sticker and use {command}",
                    command=_cmd(ctx, f"setcover {key}"),
                ),
                _("See the pack: {command}", command=_cmd(ctx, f"info {key}")),
            ],
        )
    )


def setcover(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    pack = _resolve(ctx, strip_quotes(rest))
    sticker_id = sticker_in_context(ctx, "cover")
    if sticker_id not in {item.sticker_id for item in ctx.packs.items(pack.id)}:
        raise ChatPackError("STICKER_NOT_FOUND", _("That sticker is not in the pack."))
    pack = ctx.packs.set_fields(ctx.owner, pack.id, cover=sticker_id)
    ctx.reply(
        layout.success(
            _,
            _("🖼️ *Cover set!*"),
            _("The selected sticker is now this pack's cover."),
            [_("📦 Pack: *{name}*", name=pack.name), _("🆔 ID: `{key}`", key=pack.pack_key)],
        )
    )


def remove(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, tail = first_token(rest)
    _require_reference(ctx, reference)
    selector, _ignored = first_token(tail)
    if not selector:
        raise _invalid(_("Provide the sticker's index or ID."))
    pack = _resolve(ctx, reference)
    items = ctx.packs.items(pack.id)
    target = _match_item(items, selector)
    if target is None:
        raise ChatPackError("STICKER_NOT_FOUND", _("Sticker not found in the pack."))
    removed = ctx.packs.remove_sticker(ctx.owner, pack.id, target.sticker_id)
    pack = ctx.packs.resolve(ctx.owner, pack.id)
    ctx.reply(
        layout.success(
            _,
            _("🗑️ *Sticker removed!*"),
            _("Removal done and the pack was reordered automatically."),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("Removed item: sticker #{position}", position=removed.position),
                _("🧩 Items: {count}", count=_items_label(ctx, pack)),
            ],
        )
    )


def _match_item(items: list[PackItem], token: str) -> PackItem | None:
    """A position (1..n), a full sticker id, or a unique prefix of one (the short id `info` prints)."""
    token = token.strip()
    if token.isascii() and token.isdigit():
        found = next((item for item in items if item.position == int(token)), None)
        if found is not None:
            return found
    exact = next((item for item in items if item.sticker_id == token), None)
    if exact is not None or len(token) < SHORT_ID_MIN:
        return exact
    matches = [item for item in items if item.sticker_id.startswith(token.lower())]
    return matches[0] if len(matches) == 1 else None


def reorder(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, tail = first_token(rest)
    _require_reference(ctx, reference)
    tokens = [token for token in _ORDER_SPLIT.split(tail) if token][:500]
    if not tokens:
        raise _invalid(_("Send the new sticker order."))
    pack = _resolve(ctx, reference)
    items = ctx.packs.items(pack.id)
    if len(items) < 2:
        raise _invalid(_("The pack needs 2+ stickers to reorder."))
    if all(token.isascii() and token.isdigit() for token in tokens):
        wanted = [items[int(token) - 1].sticker_id for token in tokens if 1 <= int(token) <= len(items)]
    else:
        found = [_match_item(items, token) for token in tokens]
        wanted = [item.sticker_id for item in found if item is not None]
    if not wanted:
        raise _invalid(_("The order sent does not match the pack's stickers."))
    pack = ctx.packs.reorder(ctx.owner, pack.id, wanted)
    ctx.reply(
        layout.success(
            _,
            _("🔀 *Order updated!*"),
            _("The new sequence was applied to the pack."),
            [_("📦 Pack: *{name}*", name=pack.name), _("🆔 ID: `{key}`", key=pack.pack_key)],
            [_("See the new order: {command}", command=_cmd(ctx, f"info {pack.pack_key}"))],
        )
    )


# --- pack fields ------------------------------------------------------------------------------------
def setdesc(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, value = identifier_and_value(rest)
    _require_reference(ctx, reference)
    description = _description(ctx, value)
    pack = _resolve(ctx, reference)
    pack = ctx.packs.set_fields(ctx.owner, pack.id, description=description)
    shown = (
        _('📝 Description: "{text}"', text=pack.description)
        if pack.description
        else _("🧹 Description removed.")
    )
    ctx.reply(
        layout.success(
            _,
            _("📝 *Description updated!*"),
            _("The description helps identify the pack's theme."),
            [_("📦 Pack: *{name}*", name=pack.name), shown],
        )
    )


def setpub(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, value = identifier_and_value(rest)
    _require_reference(ctx, reference)
    publisher = _text_field(value, PUBLISHER_MAX, _("Invalid publisher."), _("Invalid publisher."))
    pack = _resolve(ctx, reference)
    pack = ctx.packs.set_fields(ctx.owner, pack.id, publisher=publisher)
    key = pack.pack_key
    ctx.reply(
        layout.success(
            _,
            _("👤 *Publisher updated!*"),
            _("This pack's publisher was adjusted and already shows in the info."),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("👤 Publisher: {publisher}", publisher=pack.publisher),
                _("🆔 ID: `{key}`", key=key),
            ],
            [_cmd(ctx, f'setdesc {key} "Nova descrição"')],
        )
    )


def rename(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, value = identifier_and_value(rest)
    _require_reference(ctx, reference)
    name = _text_field(
        value,
        NAME_MAX,
        _("New pack name is required."),
        _("Pack name too long: {count} characters (max {max})."),
    )
    pack = _resolve(ctx, reference)
    pack = ctx.packs.rename(ctx.owner, pack.id, name)
    ctx.reply(
        layout.success(
            _,
            _("✏️ *Name updated!*"),
            _("Change saved successfully."),
            [_("📦 New name: *{name}*", name=pack.name), _("🆔 ID: `{key}`", key=pack.pack_key)],
        )
    )


def publish(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, value = identifier_and_value(rest)
    _require_reference(ctx, reference)
    visibility = _visibility(ctx, value)
    pack = _resolve(ctx, reference)
    pack = ctx.packs.publish(ctx.owner, pack.id, visibility)
    ctx.reply(
        layout.success(
            _,
            _("🌐 *Visibility updated!*"),
            _("The privacy setting was applied to the pack."),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("👁️ Visibility: {label}", label=layout.visibility_label(_, pack.visibility)),
                _("🆔 ID: `{key}`", key=pack.pack_key),
            ],
        )
    )


def clone(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, value = identifier_and_value(rest)
    _require_reference(ctx, reference)
    name = _text_field(
        value,
        NAME_MAX,
        _("New clone name is required."),
        _("Pack name too long: {count} characters (max {max})."),
    )
    source = _resolve(ctx, reference)
    try:
        pack = ctx.packs.clone(ctx.owner, source.id, name)
    except PackLimitReached as exc:
        raise ChatPackError("PACK_LIMIT_REACHED", _pack_limit_text(ctx)) from exc
    ctx.reply(
        layout.success(
            _,
            _("🧬 *Clone created!*"),
            _("The pack was duplicated with the same stickers and settings."),
            [_("📦 New pack: *{name}*", name=pack.name), _("🆔 ID: `{key}`", key=pack.pack_key)],
            [_cmd(ctx, f"info {pack.pack_key}")],
        )
    )


def _pack_limit_text(ctx: ChatContext) -> str:
    limit = ctx.settings.sticker_pack_max_packs_per_owner
    return ctx._("Pack limit reached ({limit}).", limit=limit)


def delete(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    text = rest.strip()
    words = text.split()
    confirmed = len(words) > 1 and words[-1].lower() in CONFIRM_WORDS
    reference = strip_quotes(text[: text.rfind(words[-1])].strip()) if confirmed else strip_quotes(text)
    pack = _resolve(ctx, reference)
    if not confirmed:
        ctx.reply(
            layout.render(
                _,
                PackMessage(
                    [
                        _("⚠️ *Confirm the deletion*"),
                        _("The pack *{name}* and its list of stickers will be deleted.", name=pack.name),
                    ],
                    [
                        Section(
                            _("➡️ *NEXT ACTIONS*"),
                            [
                                _(
                                    "To delete, send: {command}",
                                    command=_cmd(ctx, f"delete {pack.pack_key} confirm"),
                                )
                            ],
                        )
                    ],
                ),
            )
        )
        return
    ctx.packs.delete(ctx.owner, pack.id)
    ctx.reply(
        layout.success(
            _,
            _("🗑️ *Pack removed!*"),
            _("The pack was deleted and will no longer appear in your list."),
            [_("📦 Removed pack: *{name}*", name=pack.name)],
        )
    )


# --- send ---------------------------------------------------------------------------------------------
def send(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    pack = _resolve_for_send(ctx, strip_quotes(rest))
    items = ctx.packs.items(pack.id)
    if not items:
        raise _invalid(_("Pack has no stickers to send."))
    assets = ctx.stickers.get_many(item.sticker_id for item in items)
    readable: list[tuple[PackItem, bytes, bool]] = []
    for item in items:
        asset = assets.get(item.sticker_id)
        if asset is None:
            continue
        try:
            readable.append((item, ctx.stickers.read_bytes(asset), asset.is_animated))
        except StorageFailure:
            logger.warning("pack %s: sticker %s is unreadable; left out of the send", pack.id, asset.id)
    if not readable:
        raise ChatPackError("STORAGE_ERROR", _("None of the pack's stickers is available for sending."))
    cover = next(
        (data for item, data, _a in readable if item.sticker_id == pack.cover_sticker_id), readable[0][1]
    )
    native = NativePack(
        pack_key=pack.pack_key,
        name=pack.name,
        publisher=pack.publisher,
        stickers=tuple(
            PackSticker(data, tuple(item.emojis), animated, item.accessibility_label or "")
            for item, data, animated in readable
        ),
        cover=cover,
        description=pack.description or "",
        version=pack.version,
    )
    key = pack.pack_key
    try:
        sent = ctx.send(Reply(ReplyKind.STICKER_PACK, pack=native))
    except ReplyNotSupported as exc:
        _send_fallback(ctx, pack, readable, cover, str(exc))
    else:
        details = [
            _("📦 Pack: *{name}*", name=pack.name),
            _("🆔 ID: `{key}`", key=key),
            _("Sent: {count} sticker(s)", count=len(readable)),
        ]
        if sent is not None and sent.link:
            details.append(_("🔗 Link: {link}", link=sent.link))
        ctx.reply(
            layout.success(
                _,
                _("📤 *Pack sent!*"),
                _("I sent it in native format (best experience and compatibility)."),
                details,
                [
                    _cmd(ctx, f"info {key}"),
                    _(
                        "Edit with {add} or {remove}",
                        add=_cmd(ctx, f"add {key}"),
                        remove=_cmd(ctx, f"remove {key} <item>"),
                    ),
                ],
            )
        )
    _offer_export(ctx, pack)


def _send_fallback(
    ctx: ChatContext, pack: Pack, readable: list[tuple[PackItem, bytes, bool]], cover: bytes, reason: str
) -> None:
    """Preview text, the cover (only when it is not among the items sent anyway), then the items."""
    _ = ctx._
    limit = ctx.settings.sticker_pack_fallback_send_limit
    chosen = readable[:limit]
    lines = []
    for index, (item, _data, _animated) in enumerate(readable[: ctx.settings.sticker_pack_preview_lines], 1):
        line = f"{index}. #{item.position}"
        if item.emojis:
            line += " " + " ".join(item.emojis)
        if item.accessibility_label:
            line += f" — {item.accessibility_label}"
        lines.append(line)
    hidden = len(readable) - len(lines)
    if hidden > 0:
        lines.append(_("... and {count} more sticker(s).", count=hidden))
    total = len(readable)
    closing = (
        _(
            "⚠️ For compatibility, I sent {sent}/{total} sticker(s) in this fallback.",
            sent=len(chosen),
            total=total,
        )
        if len(chosen) < total
        else _("✅ Complete send in fallback: {sent}/{total} sticker(s).", sent=len(chosen), total=total)
    )
    preview = "\n".join(
        [
            _("📦 *STICKER PACK MANAGER*"),
            "",
            _("📤 *SENDING IN COMPATIBILITY MODE*"),
            _("Your client didn't accept the native pack, so I sent preview + individual stickers."),
            "",
            layout.DIVIDER,
            _("📌 *PACK SUMMARY*"),
            _("📦 Name: *{name}*", name=pack.name),
            _("👤 Publisher: {publisher}", publisher=pack.publisher),
            _("🆔 ID: `{key}`", key=pack.pack_key),
            _("Available stickers: {count}", count=total),
            "",
            layout.DIVIDER,
            _("🖼 *STICKER PREVIEW*"),
            *lines,
            "",
            layout.DIVIDER,
            closing,
        ]
    )
    ctx.reply(preview)
    if all(data != cover for _item, data, _a in chosen):
        ctx.send(Reply(ReplyKind.STICKER, data=cover, mimetype="image/webp"))
    for _item, data, _animated in chosen:
        ctx.send(Reply(ReplyKind.STICKER, data=data, mimetype="image/webp"))
    key = pack.pack_key
    ctx.reply(
        layout.success(
            _,
            _("ℹ️ *Pack sent in compatible mode.*"),
            _(
                "The client did not accept the native format for *{name}*; I sent it in compatible mode "
                "(preview + individual stickers).",
                name=pack.name,
            ),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("Progress: {sent}/{total}", sent=len(chosen), total=total),
                _("🛠 Technical detail: {reason}", reason=reason[:200] or "-"),
            ],
            [
                _cmd(ctx, f"info {key}"),
                _("Retry {command} later for native format", command=_cmd(ctx, f"send {key}")),
            ],
        )
    )


def _offer_export(ctx: ChatContext, pack: Pack) -> None:
    """The WhatsApp sticker-app `.zip` of the pack, as a document, when WhatsApp's rules allow it."""
    from omnizap.core.errors import ExportRefused
    from omnizap.core.packs.export import WhatsAppExporter

    _ = ctx._
    try:
        export = WhatsAppExporter(ctx.database, ctx.storage, ctx.settings).export(pack)
    except ExportRefused:
        ctx.reply(
            _(
                "📎 No .zip for sticker apps this time: WhatsApp asks for 3 to 30 stickers that follow its "
                "rules, and this pack does not yet."
            )
        )
        return
    except StickerPackError:
        logger.warning("export of pack %s failed", pack.id, exc_info=True)
        return
    try:
        ctx.send(
            Reply(
                ReplyKind.DOCUMENT,
                text=_("📎 The pack as a .zip, to import in sticker apps."),
                data=export.data,
                mimetype=export.content_type,
                filename=export.filename,
            )
        )
    except ReplyNotSupported:  # a network without documents: the pack itself was sent already
        logger.info("%s cannot send documents; pack %s sent without its .zip", ctx.message.network, pack.id)


# --- dispatch -------------------------------------------------------------------------------------------
Handler = Callable[[ChatContext, str], None]

SUBCOMMANDS: dict[str, Handler] = {
    "help": show_help,
    "create": create,
    "list": list_packs,
    "info": info,
    "add": add,
    "setcover": setcover,
    "setdesc": setdesc,
    "setpub": setpub,
    "setpublisher": setpub,
    "rename": rename,
    "remove": remove,
    "reorder": reorder,
    "clone": clone,
    "publish": publish,
    "delete": delete,
    "send": send,
}


def handle(ctx: ChatContext, args: str) -> None:
    """`/pack <subcommand> …`: an unknown or missing subcommand shows the guide."""
    subcommand, rest = split_subcommand(args)
    handler = SUBCOMMANDS.get(subcommand, show_help)
    try:
        handler(ctx, rest)
    except SendFailed:
        raise
    except StickerPackError as exc:
        ctx.reply(error_text(ctx, exc, subcommand))
    except Exception:
        logger.exception("/pack %s failed", subcommand)
        ctx.reply(unexpected_error_text(ctx))


def unexpected_error_text(ctx: ChatContext) -> str:
    _ = ctx._
    return layout.error(
        _,
        _("❌ *I couldn't complete your request.*"),
        _("An unexpected error occurred while processing the command."),
        [_("Wait a few seconds and try again.")],
        ctx.prefix,
    )


def error_text(ctx: ChatContext, exc: StickerPackError, subcommand: str) -> str:
    """The reply for a refused `/pack` command, chosen by the error's code (chat §2.5)."""
    _ = ctx._
    own = exc.message if isinstance(exc, ChatPackError) else None
    code = "INVALID_INPUT" if isinstance(exc, MediaRejected) else exc.code
    if isinstance(exc, MediaRejected) and own is None:
        own = rejection_text(ctx, exc)
    p = ctx.prefix
    if code == "PACK_NOT_FOUND":
        return layout.error(
            _,
            _("🔎 *Pack not found.*"),
            _("I didn't find a pack with that name or ID."),
            [
                _("See the list with `{p}pack list`.", p=p),
                _("Copy the ID exactly as shown."),
                _("Then try again (e.g. `{p}pack info <pack>`).", p=p),
            ],
            p,
        )
    if code == "DUPLICATE_STICKER":
        return layout.error(
            _,
            _("⚠️ *That sticker is already in the pack.*"),
            _("To keep the pack organized, I don't add duplicates."),
            [_("See items with `{p}pack info <pack>`.", p=p), _("To reorganize, use `reorder`.")],
            p,
        )
    if code == "PACK_LIMIT_REACHED":
        if own is None:
            own = (
                _pack_limit_text(ctx)
                if subcommand in {"create", "clone"}
                else _("This pack is at the limit and doesn't accept new items right now.")
            )
        return layout.error(
            _,
            _("⚠️ *Limit reached.*"),
            own,
            [
                _("Create another pack: `{p}pack create novopack`.", p=p),
                _("Or delete a pack you no longer use: `{p}pack delete <pack> confirm`.", p=p),
            ],
            p,
        )
    if code == "STICKER_NOT_FOUND":
        return layout.error(
            _,
            _("🧩 *I couldn't find a valid sticker to use.*"),
            own or _("For this command you need to reply to a sticker or have a recent sticker in context."),
            [
                _("Reply directly to the sticker you want to use."),
                _("Or send a sticker and run the command again."),
            ],
            p,
        )
    if code == "INVALID_INPUT":
        return layout.error(
            _,
            _("⚠️ *Invalid command format.*"),
            own or _("Check the command's arguments."),
            [_("Open the examples: `{p}pack`.", p=p)],
            p,
        )
    if code == "STORAGE_ERROR":
        return layout.error(
            _,
            _("💾 *Failed to access the pack data.*"),
            own or _("The files weren't available now."),
            [_("Try again shortly. If it persists, send the command you used so I can analyze it.")],
            p,
        )
    return layout.error(
        _,
        _("❌ *Error managing packs.*"),
        own or _("An internal error occurred during the operation."),
        [_("Try again and, if it continues, share the command used for analysis.")],
        p,
    )
