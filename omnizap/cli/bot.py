"""`omnizap bot …`: the console (talk to the sticker bot from a terminal or a script) and the
long-running network connections (`telegram` polling, `whatsapp-web`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from omnizap.cli.common import AppContext, fail, pass_app, require_migrated_database


@click.group("bot")
def bot() -> None:
    """The chat bot (see docs/chat.md)."""


@bot.command("console")
@click.option(
    "--as", "sender", required=True, help="Your sender id, e.g. 5511999999999@s.whatsapp.net or ana."
)
@click.option("--group", "group_id", default=None, help="Talk in this group id instead of a private chat.")
@click.option("--admin", is_flag=True, help="In --group: you are a group admin (for /autosticker, /prefixo).")
@click.option("--name", "sender_name", default="", help="Your display name (push name).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/chat-out"),
    show_default=True,
    help="Where stickers, images, videos and documents the bot sends are saved.",
)
@click.option(
    "--native-packs", is_flag=True, help="Accept /pack send as one native pack (else sticker by sticker)."
)
@click.option(
    "--verbose", is_flag=True, help="Show the server's logs (LOG_LEVEL) on stderr; by default only warnings."
)
@pass_app
def console(
    app: AppContext,
    sender: str,
    group_id: str | None,
    admin: bool,
    sender_name: str,
    out_dir: Path,
    native_packs: bool,
    verbose: bool,
) -> None:
    """Each line is a message: text, `@path` attaches a file, `>@path` replies to a message carrying
    that file. Every message is queued as a chat task (chat_message_live:console) and run here.
    Ends at end of input (Ctrl-D), exit code 0. Files the bot sends are numbered after those already
    in --out (never overwritten); logs below WARNING are shown only with --verbose."""
    from omnizap.chat.console import ConsoleInputError, ConsoleSession
    from omnizap.chat.transports.console import ConsoleTransport
    from omnizap.platform.logging import configure_logging

    settings = app.runtime.settings
    level = logging.getLevelName(settings.log_level.upper())
    if not verbose and (not isinstance(level, int) or level < logging.WARNING):
        # JSON log lines on stderr would drown the conversation for someone trying the bot.
        settings = settings.model_copy(update={"log_level": "WARNING"})
    configure_logging(settings)
    require_migrated_database(app)
    if not sender.strip():
        fail("--as needs a sender id")
    transport = ConsoleTransport(out_dir, echo=click.echo, native_packs=native_packs)
    session = ConsoleSession(
        app.runtime,
        transport,
        sender_id=sender.strip(),
        sender_name=sender_name,
        group_id=group_id,
        group_admin=admin,
    )
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            click.echo("> ", nl=False)
        line = sys.stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        try:
            session.send_line(line.rstrip("\n"))
        except ConsoleInputError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)


def _include_network_commands() -> None:
    """`omnizap bot telegram` and `omnizap bot whatsapp-web` (their network libraries load only when
    the command runs)."""
    from omnizap.cli import bot_telegram, bot_whatsapp_web

    bot_telegram.register(bot)
    bot_whatsapp_web.register(bot)


_include_network_commands()
