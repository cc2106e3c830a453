"""The chat networks' webhook routes that `omnizap serve` mounts, and the transports' registration.

A network's webhook is mounted only when every setting it needs is present (a webhook without its
signature secret would let anyone inject messages). Its modules load only then, so a server with no
chat network configured never imports pywa or python-telegram-bot.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from omnizap.chat.messages import IncomingMessage, Transport
from omnizap.config import Settings

logger = logging.getLogger(__name__)

Accept = Callable[[IncomingMessage], bool]
TransportFactory = Callable[[Settings], Transport]
# network -> module with `create(settings)`; whatsapp_web needs the bot process's live client and is
# registered by `omnizap bot whatsapp-web` itself.
HTTP_TRANSPORTS = {
    "whatsapp_cloud": "omnizap.chat.transports.whatsapp_cloud",
    "telegram": "omnizap.chat.transports.telegram",
}
WHATSAPP_CLOUD_SETTINGS = (
    "whatsapp_cloud_phone_number_id",
    "whatsapp_cloud_token",
    "whatsapp_cloud_app_secret",
    "whatsapp_cloud_verify_token",
)


def inbox_accept(database: Any) -> Accept:
    """`omnizap.chat.inbox.accept` bound to `database` (imported on first use)."""

    def accept(message: IncomingMessage) -> bool:
        from omnizap.chat.inbox import accept as enqueue

        return enqueue(database, message)

    return accept


def build_webhook_routers(settings: Settings, accept: Accept) -> list[APIRouter]:
    routers: list[APIRouter] = []
    present = [name for name in WHATSAPP_CLOUD_SETTINGS if getattr(settings, name)]
    if len(present) == len(WHATSAPP_CLOUD_SETTINGS):
        from omnizap.chat.transports import whatsapp_cloud

        routers.append(whatsapp_cloud.build_router(settings, accept))
        logger.info("chat: WhatsApp Cloud API webhook at %s", settings.whatsapp_webhook_path)
    elif present:
        missing = ", ".join(name.upper() for name in WHATSAPP_CLOUD_SETTINGS if name not in present)
        logger.warning("chat: WhatsApp Cloud API webhook not mounted: %s not set", missing)
    if settings.telegram_bot_token and settings.telegram_webhook_secret:
        from omnizap.chat.transports import telegram

        routers.append(telegram.build_router(settings, accept))
        logger.info("chat: Telegram webhook at %s", settings.telegram_webhook_path)
    elif settings.telegram_bot_token:
        logger.info(
            "chat: Telegram webhook not mounted (no TELEGRAM_WEBHOOK_SECRET); `omnizap bot telegram` polls"
        )
    return routers


def _factory(module_name: str) -> TransportFactory:
    def create(settings: Settings) -> Transport:
        return importlib.import_module(module_name).create(settings)  # type: ignore[no-any-return]

    return create


def register_network_transports(register: Callable[[str, TransportFactory], None] | None = None) -> None:
    """Register the HTTP networks' transports with the chat registry (loaded on first build)."""
    if register is None:
        from omnizap.chat.transports.registry import register as registry_register

        register = registry_register
    for network, module_name in HTTP_TRANSPORTS.items():
        register(network, _factory(module_name))
