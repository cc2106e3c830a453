"""`omnizap bot telegram`: receive Telegram messages by long polling (no public URL needed).

Each message is queued as a `chat_message` task; a worker runs the command and replies through the
Telegram transport. The `bot` group includes this command through `register(group)`.
"""

from __future__ import annotations

import asyncio
import signal

import click

from omnizap.cli.common import AppContext, fail, pass_app, require_migrated_database


@click.command("telegram")
@click.option(
    "--delete-webhook",
    is_flag=True,
    help="Remove the bot's webhook first (Telegram refuses polling while one is set).",
)
@click.option(
    "--poll-timeout",
    type=click.IntRange(0, 50),
    default=30,
    show_default=True,
    help="Seconds Telegram holds each getUpdates call open waiting for messages.",
)
@pass_app
def telegram_bot(app: AppContext, delete_webhook: bool, poll_timeout: int) -> None:
    """Receive Telegram messages by long polling and queue them for the workers."""
    settings = app.runtime.settings
    if not settings.telegram_bot_token:
        fail("TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token there")
    require_migrated_database(app)
    from telegram.error import Conflict, InvalidToken

    from omnizap.chat.transports.telegram import run_polling
    from omnizap.chat.transports.webhooks import inbox_accept

    accept = inbox_accept(app.runtime.database)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        click.echo("polling Telegram for messages (Ctrl+C stops)")
        await run_polling(
            settings, accept, stop=stop, delete_webhook=delete_webhook, poll_timeout=poll_timeout
        )

    try:
        asyncio.run(main())
    except InvalidToken:
        fail("Telegram rejected TELEGRAM_BOT_TOKEN: copy the token @BotFather gave you")
    except Conflict:
        fail(
            "Telegram refuses polling while the bot has a webhook or another poller runs: "
            "run with --delete-webhook, or stop the other `omnizap bot telegram`"
        )


def register(group: click.Group) -> None:
    group.add_command(telegram_bot)
