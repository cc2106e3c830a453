"""Chat-level commands: the sticker menu, the group auto-sticker, and the chat's prefix and language."""

from __future__ import annotations

from omnizap.chat import store
from omnizap.chat.context import ChatContext
from omnizap.chat.i18n import Translator, normalize_locale

MENU_TOPICS = {"", "figurinhas", "figurinha", "sticker", "stickers"}
PREFIX_MAX = 8


def menu(ctx: ChatContext, args: str) -> None:
    """`/menu figurinhas|sticker|stickers`: what this bot does (only the sticker menu exists)."""
    _ = ctx._
    if args.strip().lower() not in MENU_TOPICS:
        ctx.reply(_("I only have the sticker menu: *{p}menu figurinhas*.", p=ctx.prefix))
        return
    p = ctx.prefix
    lines = [
        _("🎨 *STICKER MENU*"),
        "",
        _(
            "*{p}sticker* or *{p}s* [name/author] — reply to an image, GIF, video "
            "or sticker, or use it as the caption (max {limit} MB).",
            p=p,
            limit=f"{ctx.settings.chat_sticker_input_max_bytes / 1_048_576:.0f}",
        ),
        _("   placeholders: #nome #data #hora #id"),
        _("*{p}st* <text> — text sticker, black letters", p=p),
        _("*{p}stw* <text> — text sticker, white letters", p=p),
        _(
            "*{p}stb* <text> -verde — blinking text sticker (colours: branco, "
            "preto, vermelho, verde, azul, amarelo, rosa, roxo, laranja)",
            p=p,
        ),
        _("*{p}toimg* — static sticker → image; animated sticker → video (also *{p}tovideo*)", p=p),
        "",
        _("📦 *PACKS*"),
        f'*{p}pack create "Meu Pack"*',
        f"*{p}pack add <pack>*",
        f"*{p}pack list*",
        f"*{p}pack send <pack>*",
        _("Full guide: *{p}pack*", p=p),
        "",
        _("⚙️ *GROUP ADMINS*"),
        _("*{p}autosticker on|off|status* — turn every image or video sent in the group into a sticker", p=p),
        _("*{p}prefixo <symbol>* — change this chat's command prefix", p=p),
        _("*{p}idioma pt|en* — reply language of this chat", p=p),
    ]
    ctx.reply("\n".join(lines))


def _may_configure(ctx: ChatContext) -> bool:
    """Groups: admins only. A private chat belongs to the person in it."""
    if not ctx.message.is_group:
        return True
    if not ctx.message.sender_is_group_admin:
        ctx.reply(ctx._("⛔ Only group admins can change this."))
        return False
    return True


def autosticker(ctx: ChatContext, args: str) -> None:
    _ = ctx._
    if not ctx.message.is_group:
        ctx.reply(
            _("ℹ️ The auto-sticker works in groups. Here, just send *{p}s* with the media.", p=ctx.prefix)
        )
        return
    action = args.strip().lower()
    if action in {"", "status"}:
        state = _("on ✅") if ctx.config.autosticker else _("off ⛔")
        ctx.reply(
            _(
                "🤖 Auto-sticker in this group: {state}. Use *{p}autosticker on|off*.",
                state=state,
                p=ctx.prefix,
            )
        )
        return
    if action not in {"on", "off", "ligar", "desligar"}:
        ctx.reply(_("⚠️ Use *{p}autosticker on*, *off* or *status*.", p=ctx.prefix))
        return
    if not _may_configure(ctx):
        return
    enabled = action in {"on", "ligar"}
    store.update_chat_config(ctx.database, ctx.message.network, ctx.message.chat_id, autosticker=enabled)
    ctx.reply(
        _("✅ Auto-sticker turned on: every image or video sent here becomes a sticker.")
        if enabled
        else _("✅ Auto-sticker turned off.")
    )


def set_prefix(ctx: ChatContext, args: str) -> None:
    _ = ctx._
    value = args.strip()
    valid = 1 <= len(value) <= PREFIX_MAX and not any(char.isalnum() or char.isspace() for char in value)
    if not valid:
        ctx.reply(
            _(
                "⚠️ The prefix must be 1 to {max} symbols, without letters, digits or "
                "spaces. Example: *{p}prefixo #*",
                max=PREFIX_MAX,
                p=ctx.prefix,
            )
        )
        return
    if not _may_configure(ctx):
        return
    store.update_chat_config(ctx.database, ctx.message.network, ctx.message.chat_id, command_prefix=value)
    ctx.reply(_("✅ Commands in this chat now start with *{p}* (e.g. *{p}menu*).", p=value))


def set_language(ctx: ChatContext, args: str) -> None:
    locale = normalize_locale(args)
    if locale is None:
        ctx.reply(
            ctx._("⚠️ Languages: *pt* (Português) or *en* (English). Example: *{p}idioma en*", p=ctx.prefix)
        )
        return
    if not _may_configure(ctx):
        return
    store.update_chat_config(ctx.database, ctx.message.network, ctx.message.chat_id, locale=locale)
    _ = Translator(locale)  # answer in the language just chosen
    ctx.reply(_("✅ I will reply in English in this chat."))
