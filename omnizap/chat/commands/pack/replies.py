"""The `/pack` guide (`help_text`) and the replies for refused or failed commands (chat §2.5)."""

from __future__ import annotations

from omnizap.chat import layout
from omnizap.chat.commands.errors import ChatPackError
from omnizap.chat.commands.media import rejection_text
from omnizap.chat.commands.pack.common import pack_limit_text
from omnizap.chat.context import ChatContext
from omnizap.chat.layout import PackMessage, Section
from omnizap.core.errors import StickerPackError
from omnizap.core.stickers.errors import MediaRejected


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
                pack_limit_text(ctx)
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
