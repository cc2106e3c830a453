"""`omnizap bot whatsapp-web`: the bot as a linked device of a WhatsApp account (neonize).

Pairing: a QR code in the terminal (WhatsApp → Linked devices → Link a device), or with
`--pair-phone <number>` an 8-character code to type in WhatsApp (Link with phone number instead).
The session is kept in WHATSAPP_WEB_SESSION_DIR (default <data dir>/whatsapp-web), so later starts
reconnect without pairing. The `bot` group includes this command through `register(group)`.

Replies need this process's connection, so the process also runs the worker of WhatsApp Web's
messages (`chat_message_live:whatsapp_web` tasks); `omnizap serve` and `omnizap worker chat` never
claim them. Messages that arrive while it is down wait in the queue for its next start.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import click

from omnizap.cli.common import AppContext, fail, pass_app, require_migrated_database

logger = logging.getLogger(__name__)


def pairing_phone(value: str) -> str:
    """Digits only, with the country code: 10-15 digits, like WhatsApp numbers."""
    digits = re.sub(r"[\s()+.-]", "", value)
    if not digits.isdigit() or not 10 <= len(digits) <= 15:
        raise click.BadParameter(
            "give the phone number with country code, digits only (e.g. 5511999999999)",
            param_hint="--pair-phone",
        )
    return digits


@click.command("whatsapp-web")
@click.option(
    "--pair-phone", help="Pair with a code for this number (country code + number) instead of a QR code."
)
@pass_app
def whatsapp_web_bot(app: AppContext, pair_phone: str | None) -> None:
    """Run the bot as a linked WhatsApp device and queue its messages for the workers."""
    phone = pairing_phone(pair_phone) if pair_phone else None
    try:
        from neonize.client import NewClient
        from neonize.events import ConnectedEv, LoggedOutEv, MessageEv, PairStatusEv
    except ImportError:
        fail("WhatsApp Web needs the optional extra: pip install 'omnizap[whatsapp-web]'")
    require_migrated_database(app)
    from omnizap.chat.transports.webhooks import inbox_accept
    from omnizap.chat.transports.whatsapp_web import WhatsAppWebTransport, map_message_event

    settings = app.runtime.settings
    session_dir = settings.whatsapp_web_session_path
    session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    client = NewClient(str(session_dir / "session.sqlite3"))
    transport = WhatsAppWebTransport(client)
    try:
        from omnizap.chat.transports.registry import register

        # Downloads and replies need this process's connection: workers in this process use it.
        register("whatsapp_web", lambda _settings: transport)
    except ImportError:  # pragma: no cover - the chat core provides the registry
        logger.warning("chat registry not available; replies for whatsapp_web cannot be sent")
    accept = inbox_accept(app.runtime.database)
    paired = {"asked": False}

    def on_qr(bot: Any, data: bytes) -> None:
        if phone is None:
            import segno

            click.echo("Scan with WhatsApp → Linked devices → Link a device:")
            segno.make_qr(data).terminal(compact=True)
        elif not paired["asked"]:
            paired["asked"] = True
            code = bot.PairPhone(phone, show_push_notification=True)
            click.echo(f"Pairing code: {code}  (WhatsApp → Linked devices → Link with phone number)")

    client.event.qr(on_qr)

    @client.event(ConnectedEv)
    def on_connected(_bot: Any, _event: Any) -> None:
        click.echo("connected to WhatsApp; waiting for messages (Ctrl+C stops)")

    @client.event(PairStatusEv)
    def on_paired(_bot: Any, event: Any) -> None:
        click.echo(f"paired as {event.ID.User}")

    @client.event(LoggedOutEv)
    def on_logged_out(_bot: Any, _event: Any) -> None:
        click.echo("logged out by WhatsApp: run this command again to pair", err=True)

    @client.event(MessageEv)
    def on_message(_bot: Any, event: Any) -> None:
        message = map_message_event(event)
        if message is None:
            return
        try:
            accept(message)
        except Exception:  # one bad message must not stop the bot; the next ones still queue
            logger.exception("could not queue WhatsApp message %s", message.message_id)

    worker = start_live_worker(app.runtime)
    try:
        client.connect()
    finally:
        worker.stop()


class LiveChatWorker:
    """This process's worker of a live network's chat tasks, in a daemon thread."""

    def __init__(self, runtime: Any, network: str) -> None:
        from omnizap.pipeline import live_chat_worker

        self.worker = live_chat_worker(runtime, network)
        self.thread = threading.Thread(target=self.worker.run, name=f"chat-{network}", daemon=True)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking tasks and let the running one finish (its reply needs the connection, so call
        this before disconnecting); past `timeout` the task's lease expires and it runs again later."""
        self.worker.stop()
        self.thread.join(timeout)
        if self.thread.is_alive():
            logger.warning("a WhatsApp Web chat task was still running at shutdown; it will run again")


def start_live_worker(runtime: Any, network: str = "whatsapp_web") -> LiveChatWorker:
    """Run this process's live chat worker in a daemon thread; `.stop()` ends it."""
    live = LiveChatWorker(runtime, network)
    live.thread.start()
    return live


def register(group: click.Group) -> None:
    group.add_command(whatsapp_web_bot)
