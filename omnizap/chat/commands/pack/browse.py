"""`/pack create`, `list` and `info`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnizap.chat import layout
from omnizap.chat.commands.pack.common import (
    cmd,
    items_label,
    parse_description,
    parse_visibility,
    pick_option,
    resolve_pack,
    text_field,
)
from omnizap.chat.context import ChatContext
from omnizap.chat.layout import PackMessage, Section
from omnizap.chat.links import is_on_the_web, pack_link
from omnizap.chat.parsing import pipe_options, strip_quotes
from omnizap.core.packs.rules import NAME_MAX, PUBLISHER_MAX, sanitize_text

if TYPE_CHECKING:
    from omnizap.core.packs.models import Pack, PackItem


LIST_LIMIT = 100
PREVIEW_ITEMS = 12
SHORT_ID = 10


def create(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    raw_name, options = pipe_options(rest)
    name = text_field(
        raw_name,
        NAME_MAX,
        _("Pack name is required."),
        _("Pack name too long: {count} characters (max {max})."),
    )
    given_publisher = pick_option(options, "publisher", "pub", "autor")
    if given_publisher is not None:
        publisher = text_field(
            given_publisher,
            PUBLISHER_MAX,
            _("Pack publisher is required."),
            _("Publisher too long: {count} characters (max {max})."),
        )
    else:
        publisher = sanitize_text(ctx.sender_name, PUBLISHER_MAX) or "OmniZap"
    description = parse_description(ctx, pick_option(options, "desc", "description"))
    given_visibility = pick_option(options, "visibility", "vis")
    visibility = parse_visibility(ctx, given_visibility) if given_visibility is not None else "public"
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
                            _("Reply to a sticker and use {command}", command=cmd(ctx, f"add {key}")),
                            _("To check: {command}", command=cmd(ctx, f"info {key}")),
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
                                _("1. Create: {command}", command=cmd(ctx, 'create "Meu Pack"')),
                                _(
                                    "2. Reply to a sticker and add: {command}",
                                    command=cmd(ctx, 'add "Meu Pack"'),
                                ),
                                _("3. Check: {command}", command=cmd(ctx, 'info "Meu Pack"')),
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
            "   " + _("🧩 Items: {count}", count=items_label(ctx, pack)),
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
                        [cmd(ctx, "info <pack>"), cmd(ctx, "send <pack>"), cmd(ctx, 'create "Novo pack"')],
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
    pack = resolve_pack(ctx, strip_quotes(rest))
    items = ctx.packs.items(pack.id)
    cover = next((item.position for item in items if item.sticker_id == pack.cover_sticker_id), None)
    data = [
        _("📦 Name: *{name}*", name=pack.name),
        _("🆔 ID: `{key}`", key=pack.pack_key),
        _("👤 Publisher: {publisher}", publisher=pack.publisher),
        _("👁️ Visibility: {label}", label=layout.visibility_label(_, pack.visibility)),
        _("🧩 Items: {count}", count=items_label(ctx, pack)),
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
    if is_on_the_web(pack):
        data.append(_("🌐 Page: {url}", url=pack_link(ctx.settings, pack.pack_key)))
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
                            cmd(ctx, f"add {key}"),
                            cmd(ctx, f"setcover {key}"),
                            cmd(ctx, f"reorder {key} 1 2 3 ..."),
                            cmd(ctx, f"send {key}"),
                        ],
                    ),
                ],
            ),
        )
    )
