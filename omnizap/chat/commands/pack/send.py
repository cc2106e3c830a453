"""`/pack send`: the native pack, else the compatible-mode fallback, then the `.zip` export offer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from omnizap.chat import layout
from omnizap.chat.commands.errors import ChatPackError
from omnizap.chat.commands.pack.common import cmd, invalid_input, resolve_for_send
from omnizap.chat.context import ChatContext
from omnizap.chat.messages import NativePack, PackSticker, Reply, ReplyKind, ReplyNotSupported
from omnizap.chat.parsing import strip_quotes
from omnizap.core.errors import StickerPackError, StorageFailure

if TYPE_CHECKING:
    from omnizap.core.packs.models import Pack, PackItem

logger = logging.getLogger(__name__)


def send(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    pack = resolve_for_send(ctx, strip_quotes(rest))
    items = ctx.packs.items(pack.id)
    if not items:
        raise invalid_input(_("Pack has no stickers to send."))
    assets = ctx.stickers.get_many(item.sticker_id for item in items)
    readable: list[tuple[PackItem, bytes, bool]] = []
    for item in items:
        asset = assets.get(item.sticker_id)
        if asset is None:
            continue
        try:
            readable.append((item, ctx.stickers.read_bytes(asset), asset.is_animated))
        except StorageFailure:
            logger.warning("pack %s: sticker %s is unreadable; left out of the send", pack.id, asset.id)
    if not readable:
        raise ChatPackError("STORAGE_ERROR", _("None of the pack's stickers is available for sending."))
    cover = next(
        (data for item, data, _a in readable if item.sticker_id == pack.cover_sticker_id), readable[0][1]
    )
    native = NativePack(
        pack_key=pack.pack_key,
        name=pack.name,
        publisher=pack.publisher,
        stickers=tuple(
            PackSticker(data, tuple(item.emojis), animated, item.accessibility_label or "")
            for item, data, animated in readable
        ),
        cover=cover,
        description=pack.description or "",
        version=pack.version,
    )
    key = pack.pack_key
    try:
        sent = ctx.send(Reply(ReplyKind.STICKER_PACK, pack=native))
    except ReplyNotSupported as exc:
        _send_fallback(ctx, pack, readable, cover, str(exc))
    else:
        details = [
            _("📦 Pack: *{name}*", name=pack.name),
            _("🆔 ID: `{key}`", key=key),
            _("Sent: {count} sticker(s)", count=len(readable)),
        ]
        if sent is not None and sent.link:
            details.append(_("🔗 Link: {link}", link=sent.link))
        ctx.reply(
            layout.success(
                _,
                _("📤 *Pack sent!*"),
                _("I sent it in native format (best experience and compatibility)."),
                details,
                [
                    cmd(ctx, f"info {key}"),
                    _(
                        "Edit with {add} or {remove}",
                        add=cmd(ctx, f"add {key}"),
                        remove=cmd(ctx, f"remove {key} <item>"),
                    ),
                ],
            )
        )
    _offer_export(ctx, pack)


def _send_fallback(
    ctx: ChatContext, pack: Pack, readable: list[tuple[PackItem, bytes, bool]], cover: bytes, reason: str
) -> None:
    """Preview text, the cover (only when it is not among the items sent anyway), then the items."""
    _ = ctx._
    limit = ctx.settings.sticker_pack_fallback_send_limit
    chosen = readable[:limit]
    lines = []
    for index, (item, _data, _animated) in enumerate(readable[: ctx.settings.sticker_pack_preview_lines], 1):
        line = f"{index}. #{item.position}"
        if item.emojis:
            line += " " + " ".join(item.emojis)
        if item.accessibility_label:
            line += f" — {item.accessibility_label}"
        lines.append(line)
    hidden = len(readable) - len(lines)
    if hidden > 0:
        lines.append(_("... and {count} more sticker(s).", count=hidden))
    total = len(readable)
    closing = (
        _(
            "⚠️ For compatibility, I sent {sent}/{total} sticker(s) in this fallback.",
            sent=len(chosen),
            total=total,
        )
        if len(chosen) < total
        else _("✅ Complete send in fallback: {sent}/{total} sticker(s).", sent=len(chosen), total=total)
    )
    preview = "\n".join(
        [
            _("📦 *STICKER PACK MANAGER*"),
            "",
            _("📤 *SENDING IN COMPATIBILITY MODE*"),
            _("Your client didn't accept the native pack, so I sent preview + individual stickers."),
            "",
            layout.DIVIDER,
            _("📌 *PACK SUMMARY*"),
            _("📦 Name: *{name}*", name=pack.name),
            _("👤 Publisher: {publisher}", publisher=pack.publisher),
            _("🆔 ID: `{key}`", key=pack.pack_key),
            _("Available stickers: {count}", count=total),
            "",
            layout.DIVIDER,
            _("🖼 *STICKER PREVIEW*"),
            *lines,
            "",
            layout.DIVIDER,
            closing,
        ]
    )
    ctx.reply(preview)
    if all(data != cover for _item, data, _a in chosen):
        ctx.send(Reply(ReplyKind.STICKER, data=cover, mimetype="image/webp"))
    for _item, data, _animated in chosen:
        ctx.send(Reply(ReplyKind.STICKER, data=data, mimetype="image/webp"))
    key = pack.pack_key
    ctx.reply(
        layout.success(
            _,
            _("ℹ️ *Pack sent in compatible mode.*"),
            _(
                "The client did not accept the native format for *{name}*; I sent it in compatible mode "
                "(preview + individual stickers).",
                name=pack.name,
            ),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("Progress: {sent}/{total}", sent=len(chosen), total=total),
                _("🛠 Technical detail: {reason}", reason=reason[:200] or "-"),
            ],
            [
                cmd(ctx, f"info {key}"),
                _("Retry {command} later for native format", command=cmd(ctx, f"send {key}")),
            ],
        )
    )


def _offer_export(ctx: ChatContext, pack: Pack) -> None:
    """The WhatsApp sticker-app `.zip` of the pack, as a document, when WhatsApp's rules allow it."""
    from omnizap.core.errors import ExportRefused
    from omnizap.core.packs.export import WhatsAppExporter

    _ = ctx._
    try:
        export = WhatsAppExporter(ctx.database, ctx.storage, ctx.settings).export(pack)
    except ExportRefused:
        ctx.reply(
            _(
                "📎 No .zip for sticker apps this time: WhatsApp asks for 3 to 30 stickers that follow its "
                "rules, and this pack does not yet."
            )
        )
        return
    except StickerPackError:
        logger.warning("export of pack %s failed", pack.id, exc_info=True)
        return
    try:
        ctx.send(
            Reply(
                ReplyKind.DOCUMENT,
                text=_("📎 The pack as a .zip, to import in sticker apps."),
                data=export.data,
                mimetype=export.content_type,
                filename=export.filename,
            )
        )
    except ReplyNotSupported:  # a network without documents: the pack itself was sent already
        logger.info("%s cannot send documents; pack %s sent without its .zip", ctx.message.network, pack.id)
