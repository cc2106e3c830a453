"""One incoming message → the right handler: login trigger, command (with its prefix and aliases),
group auto-sticker, or the passive capture of a sent sticker.

Every command counts against the sender's rate limit (STICKER_PACK_RATE_MAX_ACTIONS per
STICKER_PACK_RATE_WINDOW_MS, in the database). The original limited `/pack` only; the converters
cost more CPU than any pack command, so here every command counts (docs/chat.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from omnizap.chat.commands import chat as chat_commands
from omnizap.chat.commands import pack as pack_commands
from omnizap.chat.commands import stickers as sticker_commands
from omnizap.chat.commands.login import is_login_trigger, login
from omnizap.chat.context import ChatContext, SendFailed
from omnizap.chat.messages import MediaKind
from omnizap.chat.parsing import parse_command
from omnizap.chat.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

COMMAND_TEXT_MAX = 4096  # longer command messages are refused before any parsing
Handler = Callable[[ChatContext, str], None]

COMMANDS: dict[str, Handler] = {
    "sticker": sticker_commands.make_sticker,
    "s": sticker_commands.make_sticker,
    "stickertext": partial(sticker_commands.text_sticker, colour="black", blink=False),
    "st": partial(sticker_commands.text_sticker, colour="black", blink=False),
    "stickertextwhite": partial(sticker_commands.text_sticker, colour="white", blink=False),
    "stw": partial(sticker_commands.text_sticker, colour="white", blink=False),
    "stickertextblink": partial(sticker_commands.text_sticker, colour="white", blink=True),
    "stb": partial(sticker_commands.text_sticker, colour="white", blink=True),
    "toimg": sticker_commands.convert_sticker,
    "tovideo": sticker_commands.convert_sticker,
    "tovid": sticker_commands.convert_sticker,
    "pack": pack_commands.handle,
    "packs": pack_commands.handle,
    "menu": chat_commands.menu,
    "autosticker": chat_commands.autosticker,
    "prefixo": chat_commands.set_prefix,
    "prefix": chat_commands.set_prefix,
    "idioma": chat_commands.set_language,
    "lang": chat_commands.set_language,
}
AUTO_STICKER_KINDS = {MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.GIF}


def rate_limiter(ctx: ChatContext) -> RateLimiter:
    return RateLimiter(
        ctx.database,
        max_actions=ctx.settings.sticker_pack_rate_max_actions,
        window_seconds=ctx.settings.sticker_pack_rate_window_ms / 1000,
    )


def _within_rate(ctx: ChatContext, limiter: RateLimiter | None) -> bool:
    """Count one action of the sender; when over the limit, say how long to wait and return False."""
    decision = (limiter or rate_limiter(ctx)).hit(f"{ctx.message.network}:{ctx.owner}")
    if decision.allowed:
        return True
    _ = ctx._
    ctx.reply(
        "\n".join(
            [
                _(
                    "⏳ Too many actions in a row. To keep the system stable, "
                    "I enabled a quick pause before the next command."
                ),
                _("⏱️ You can try again in: *{seconds}s*", seconds=decision.retry_after_seconds),
                _("Wait the time above and repeat the command you want to run."),
            ]
        )
    )
    return False


def route(ctx: ChatContext, *, limiter: RateLimiter | None = None) -> str:
    """Handle one message; returns what it was taken for (for the task's log line)."""
    message = ctx.message
    sticker_commands.capture_sent_sticker(ctx)
    parsed = parse_command(message.text, ctx.prefix)
    if parsed is None:
        if is_login_trigger(ctx):
            # Each link is a stored nonce: the trigger counts like a command.
            if not _within_rate(ctx, limiter):
                return "rate_limited"
            login(ctx)
            return "login"
        media = message.media
        if (
            message.is_group
            and ctx.config.autosticker
            and media is not None
            and media.kind in AUTO_STICKER_KINDS
        ):
            sticker_commands.make_sticker(ctx, "", media=media, notify=False)
            return "autosticker"
        return "ignored"
    if not _within_rate(ctx, limiter):
        return "rate_limited"
    _ = ctx._
    if len(message.text) > COMMAND_TEXT_MAX:
        ctx.reply(
            _(
                "⚠️ Message too long: {count} characters. Commands take at most {max}.",
                count=len(message.text),
                max=COMMAND_TEXT_MAX,
            )
        )
        return "too_long"
    handler = COMMANDS.get(parsed.name)
    if handler is None:
        shown = "".join(char for char in parsed.name if char.isprintable())[:30]
        ctx.reply(
            _(
                "❓ Unknown command *{p}{name}*. See what I do with *{p}menu figurinhas*.",
                p=ctx.prefix,
                name=shown,
            )
        )
        return "unknown"
    try:
        handler(ctx, parsed.args)
    except SendFailed:
        raise
    except Exception:
        logger.exception("command %s failed", parsed.name)
        ctx.reply(_("❌ Could not complete the command. An unexpected error occurred; try again."))
        return f"{parsed.name}:error"
    return parsed.name
