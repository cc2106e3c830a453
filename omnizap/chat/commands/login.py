"""The login trigger (chat §7): `iniciar` in private answers with a one-time signed link."""

from __future__ import annotations

from omnizap.accounts.login_link import issue_login_link
from omnizap.chat.context import ChatContext
from omnizap.chat.parsing import fold


def is_login_trigger(ctx: ChatContext) -> bool:
    trigger = fold(ctx.settings.whatsapp_login_trigger)
    return bool(trigger) and fold(ctx.message.text) == trigger


def login(ctx: ChatContext) -> None:
    _ = ctx._
    trigger = ctx.settings.whatsapp_login_trigger
    if ctx.message.is_group:
        ctx.reply(
            _(
                "For security, send *{trigger}* in the bot's private chat to receive your login link.",
                trigger=trigger,
            )
        )
        return
    link = issue_login_link(ctx.database, ctx.settings, ctx.owner)
    minutes = max(1, ctx.settings.whatsapp_login_link_ttl_seconds // 60)
    ctx.reply(
        _(
            "Hi, *{name}*! To continue on OmniZap, open this link: {url}\n"
            "It works once, for {minutes} minutes. Your WhatsApp number will be "
            "linked to the signed-in account.",
            name=ctx.sender_name or _("there"),
            url=link.url,
            minutes=minutes,
        )
    )
