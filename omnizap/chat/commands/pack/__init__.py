"""`/pack` and its subcommands (chat §2, §3) over the pack service.

Deliberate differences from the original (docs/chat.md "Differences"): `setpublisher` is an alias of
`setpub`; an invalid visibility is refused instead of becoming public; `list` shows the collector
packs, marked automatic; `reorder` accepts the short ids `info` prints; `clone` obeys the pack
limit; `delete` asks for confirmation; replying to something that is not a sticker is refused
instead of silently using the last sticker; the STICKER_NOT_FOUND reply says what was not found.

The subcommands live in the modules of this package; here is only the dispatch table and `handle`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from omnizap.chat.commands.pack.browse import create, info, list_packs
from omnizap.chat.commands.pack.common import sticker_in_context
from omnizap.chat.commands.pack.fields import clone, delete, publish, rename, setdesc, setpub
from omnizap.chat.commands.pack.items import add, remove, reorder, setcover
from omnizap.chat.commands.pack.replies import error_text, help_text, show_help, unexpected_error_text
from omnizap.chat.commands.pack.send import send
from omnizap.chat.context import ChatContext, SendFailed
from omnizap.chat.parsing import split_subcommand
from omnizap.core.errors import StickerPackError

logger = logging.getLogger(__name__)

__all__ = [
    "SUBCOMMANDS",
    "Handler",
    "error_text",
    "handle",
    "help_text",
    "sticker_in_context",
    "unexpected_error_text",
]


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
