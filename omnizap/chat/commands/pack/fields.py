"""`/pack setdesc`, `setpub`, `rename`, `publish`, `clone` and `delete`: a pack's own fields."""

from __future__ import annotations

from omnizap.chat import layout
from omnizap.chat.commands.errors import ChatPackError
from omnizap.chat.commands.pack.common import (
    cmd,
    pack_limit_text,
    parse_description,
    parse_visibility,
    require_reference,
    resolve_pack,
    text_field,
)
from omnizap.chat.context import ChatContext
from omnizap.chat.layout import PackMessage, Section
from omnizap.chat.parsing import identifier_and_value, strip_quotes
from omnizap.core.errors import PackLimitReached
from omnizap.core.packs.rules import NAME_MAX, PUBLISHER_MAX

CONFIRM_WORDS = {"confirm", "confirmar"}


def setdesc(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, value = identifier_and_value(rest)
    require_reference(ctx, reference)
    description = parse_description(ctx, value)
    pack = resolve_pack(ctx, reference)
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
    require_reference(ctx, reference)
    publisher = text_field(value, PUBLISHER_MAX, _("Invalid publisher."), _("Invalid publisher."))
    pack = resolve_pack(ctx, reference)
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
            [cmd(ctx, f'setdesc {key} "Nova descrição"')],
        )
    )


def rename(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, value = identifier_and_value(rest)
    require_reference(ctx, reference)
    name = text_field(
        value,
        NAME_MAX,
        _("New pack name is required."),
        _("Pack name too long: {count} characters (max {max})."),
    )
    pack = resolve_pack(ctx, reference)
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
    require_reference(ctx, reference)
    visibility = parse_visibility(ctx, value)
    pack = resolve_pack(ctx, reference)
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
    require_reference(ctx, reference)
    name = text_field(
        value,
        NAME_MAX,
        _("New clone name is required."),
        _("Pack name too long: {count} characters (max {max})."),
    )
    source = resolve_pack(ctx, reference)
    try:
        pack = ctx.packs.clone(ctx.owner, source.id, name)
    except PackLimitReached as exc:
        raise ChatPackError("PACK_LIMIT_REACHED", pack_limit_text(ctx)) from exc
    ctx.reply(
        layout.success(
            _,
            _("🧬 *Clone created!*"),
            _("The pack was duplicated with the same stickers and settings."),
            [_("📦 New pack: *{name}*", name=pack.name), _("🆔 ID: `{key}`", key=pack.pack_key)],
            [cmd(ctx, f"info {pack.pack_key}")],
        )
    )


def delete(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    text = rest.strip()
    words = text.split()
    confirmed = len(words) > 1 and words[-1].lower() in CONFIRM_WORDS
    reference = strip_quotes(text[: text.rfind(words[-1])].strip()) if confirmed else strip_quotes(text)
    pack = resolve_pack(ctx, reference)
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
                                    command=cmd(ctx, f"delete {pack.pack_key} confirm"),
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
