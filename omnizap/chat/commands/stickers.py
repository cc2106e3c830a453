"""Sticker creation and conversion: `/sticker` `/s`, `/st` `/stw` `/stb`, `/toimg` `/tovideo` `/tovid`,
the group auto-sticker and the passive capture of stickers people send (chat §4, §5.1, §5.5)."""

from __future__ import annotations

import datetime as dt
import logging
import re

from omnizap.chat import store
from omnizap.chat.commands.media import first_media, is_sticker, looks_animated, megabytes, rejection_text
from omnizap.chat.context import ChatContext, SendFailed
from omnizap.chat.links import is_on_the_web, pack_link
from omnizap.chat.messages import MediaKind, MediaRef, MediaUnavailable, Reply, ReplyKind
from omnizap.core.errors import StickerPackError
from omnizap.core.stickers import text_render
from omnizap.core.stickers.errors import (
    TEXT_CONTROL_CHARACTER,
    TEXT_TOO_LONG,
    TEXT_TOO_MANY_LINES,
    MediaRejected,
)

logger = logging.getLogger(__name__)

ACCEPTED_KINDS = {MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.GIF, MediaKind.STICKER}
METADATA_MAX = 64
_PLACEHOLDER = re.compile(r"#(nome|data|hora|id)", re.IGNORECASE)


# --- metadata ---------------------------------------------------------------------------------------
def fill_placeholders(text: str, ctx: ChatContext, now: dt.datetime) -> str:
    """`#nome #data #hora #id` (any case) → sender name, DD/MM/YYYY, HH:MM, the sender's user part."""
    values = {
        "nome": ctx.sender_name or "OmniZap System",
        "data": now.strftime("%d/%m/%Y"),
        "hora": now.strftime("%H:%M"),
        "id": ctx.message.sender_id.split("@", 1)[0],
    }
    filled = _PLACEHOLDER.sub(lambda match: values[match.group(1).lower()], text)
    return " ".join(filled.split())[:METADATA_MAX].strip()


def sticker_metadata(ctx: ChatContext, args: str) -> tuple[str, str]:
    """(pack name, author) from `/s name/author`: an empty side keeps its default (chat §4.1)."""
    now = (
        dt.datetime.fromtimestamp(ctx.message.timestamp, dt.UTC)
        if ctx.message.timestamp
        else dt.datetime.now(dt.UTC)
    )
    now = now.astimezone()  # the server's local time, like the original
    default_name = ctx.settings.sticker_default_pack_name
    default_author = ctx.sender_name or "OmniZap System"
    text = " ".join((args or "").split())
    if "/" in text:
        name_part, _, author_part = text.partition("/")
    else:
        name_part, author_part = text, ""
    name = (
        fill_placeholders(name_part, ctx, now)
        or fill_placeholders(default_name, ctx, now)
        or "OmniZap System"
    )
    author = fill_placeholders(author_part, ctx, now) or default_author[:METADATA_MAX]
    return name, author


# --- auto-collector notice ----------------------------------------------------------------------------
def collect_and_notify(ctx: ChatContext, sticker_id: str, *, notify: bool) -> None:
    """Run the auto-collector for a sticker just made for the sender; tell them where it went."""
    from omnizap.core.packs.autocollect import AutoCollector

    try:
        result = AutoCollector(ctx.packs, ctx.settings).collect(
            ctx.owner, sticker_id, sender_name=ctx.sender_name
        )
    except StickerPackError as exc:  # e.g. the owner's pack limit: the sticker stays stored
        logger.warning("auto-collect of %s for %s refused: %s", sticker_id, ctx.owner, exc)
        return
    if not notify or not ctx.settings.sticker_pack_auto_collect_notify or result.pack is None:
        return
    if result.status not in {"added", "duplicate"}:
        return
    _ = ctx._
    pack = result.pack
    visible = is_on_the_web(pack)
    escaped = pack.name.replace('"', '\\"')
    if result.status == "added":
        count = f" ({pack.sticker_count}/{ctx.settings.sticker_pack_max_items})" if pack.sticker_count else ""
        lines = [
            _("📦 Sticker automatically saved in pack *{name}*{count}.", name=pack.name, count=count),
            "",
            _("Tip: use *{p}pack list* to manage your packs.", p=ctx.prefix),
            _('To send now: *{p}pack send "{name}"*.', p=ctx.prefix, name=escaped),
        ]
    else:
        lines = [
            _("ℹ️ That sticker was already in the pack *{name}*.", name=pack.name),
            _(
                "Use *{p}pack info {key}* to see the pack or *{p}pack send {key}* to send.",
                p=ctx.prefix,
                key=pack.pack_key,
            ),
        ]
    if visible:
        lines.append(_("🌐 Open on the site: {url}", url=pack_link(ctx.settings, pack.pack_key)))
    else:
        lines.append(
            _(
                "🔒 Private pack: only you see it. Change with *{p}pack publish {key} public*.",
                p=ctx.prefix,
                key=pack.pack_key,
            )
        )
    ctx.reply("\n".join(lines))


# --- /sticker ---------------------------------------------------------------------------------------
def make_sticker(ctx: ChatContext, args: str, *, media: MediaRef | None = None, notify: bool = True) -> None:
    """`/sticker [name/author]`: the message's or quoted image, GIF, video or sticker as a sticker."""
    _ = ctx._
    media = media or first_media(ctx)
    if media is None:
        ctx.reply(
            _(
                "Hello {name} — ❌ Could not process your request. You didn't send or tag any media. "
                "Please send or tag a media file of at most {limit} MB. Tip: disable HD mode before sending.",
                name=ctx.sender_name or _("there"),
                limit=megabytes(ctx.settings.chat_sticker_input_max_bytes),
            )
        )
        return
    if media.kind not in ACCEPTED_KINDS:
        ctx.reply(
            _("❌ Media type not supported to create a sticker. Accepted types: image, video or sticker.")
        )
        return
    limit = ctx.settings.chat_sticker_input_max_bytes
    if media.declared_size is not None and media.declared_size > limit:
        ctx.reply(too_large_text(ctx, media, media.declared_size, limit))
        return
    try:
        data = ctx.download(media, max_bytes=limit)
    except MediaUnavailable:
        ctx.reply(
            _("❌ Could not download the media (network instability, expired media or unsupported format).")
        )
        return
    except MediaRejected as exc:  # the transport saw it pass the limit while downloading
        if exc.code == "TOO_LARGE":
            size = exc.details.get("size")
            ctx.reply(too_large_text(ctx, media, size if isinstance(size, int) else limit + 1, limit))
        else:
            ctx.reply(rejection_text(ctx, exc))
        return
    if len(data) > limit:
        ctx.reply(too_large_text(ctx, media, len(data), limit))
        return
    pack_name, author = sticker_metadata(ctx, args)
    try:
        asset = ctx.stickers.ingest(data, owner_jid=ctx.owner, pack_name=pack_name, publisher=author).asset
        sticker = ctx.stickers.read_bytes(asset)
    except MediaRejected as exc:
        ctx.reply(rejection_text(ctx, exc))
        return
    except StickerPackError:
        logger.exception("sticker creation failed for %s", ctx.owner)
        ctx.reply(_("❌ Could not create the sticker. An unexpected error occurred."))
        return
    ctx.send(Reply(ReplyKind.STICKER, data=sticker, mimetype="image/webp"))
    store.remember_last_sticker(ctx.database, ctx.owner, asset.id)
    collect_and_notify(ctx, asset.id, notify=notify)


def too_large_text(ctx: ChatContext, media: MediaRef, size: int, limit: int) -> str:
    _ = ctx._
    text = _(
        "❌ Could not process the media. The file has {size} MB and the limit "
        "is {limit} MB; send a smaller file.",
        size=megabytes(size),
        limit=megabytes(limit),
    )
    if media.kind in (MediaKind.VIDEO, MediaKind.GIF) and media.seconds and media.seconds > 0:
        seconds = int(limit // (size / media.seconds))
        if seconds >= 1:
            text += " " + _("Tip: cut this video to up to {seconds} seconds.", seconds=seconds)
    return text


# --- text stickers ----------------------------------------------------------------------------------
def _text_problem(ctx: ChatContext, text: str, *, blink: bool) -> str | None:
    """The person's reply for text the renderer refuses (text_render.validate_sticker_text is the one
    rule; this only words its refusal codes in the chat's language), or None."""
    _ = ctx._
    try:
        text_render.validate_sticker_text(text)
    except MediaRejected as refusal:
        details = refusal.details or {}
        if refusal.code == TEXT_TOO_LONG:
            return _(
                "❌ Text too long: *{count}* characters. Current limit: *{max}* characters.",
                count=details.get("length"),
                max=details.get("limit"),
            )
        if refusal.code == TEXT_TOO_MANY_LINES:
            return _(
                "❌ Text with too many lines: *{count}*. Current limit: *{max}* lines.",
                count=details.get("lines"),
                max=details.get("limit"),
            )
        if refusal.code == TEXT_CONTROL_CHARACTER:
            return _("❌ The text has invisible control characters. Type it again without them.")
        if blink:
            return _(
                "❌ You need to provide text to create the blinking sticker. Example: "
                "*{p}stb bom dia seus lindos -verde*",
                p=ctx.prefix,
            )
        return _(
            "❌ You need to provide text to create the sticker. Example: *{p}st bom dia seus lindos*",
            p=ctx.prefix,
        )
    return None


def text_sticker(ctx: ChatContext, args: str, *, colour: str, blink: bool) -> None:
    _ = ctx._
    text = (args or "").strip()
    if blink:
        text, colour = text_render.parse_blink_color(text)
    problem = _text_problem(ctx, text, blink=blink)
    if problem:
        ctx.reply(problem)
        return
    failure = (
        _(
            "*❌ Could not create the blinking sticker.* Try again with another "
            "text or use *{p}stb* with a shorter phrase",
            p=ctx.prefix,
        )
        if blink
        else _(
            "*❌ Could not create the text sticker.* Try again with another text or "
            "use *{p}st* with a shorter phrase",
            p=ctx.prefix,
        )
    )
    try:
        render = text_render.render_blink_sticker if blink else text_render.render_text_sticker
        rendered = render(text, color=colour)
        asset = ctx.stickers.ingest_webp_sticker(
            rendered,
            owner_jid=ctx.owner,
            pack_name=ctx.settings.chat_text_sticker_pack_name,
            publisher=ctx.sender_name or ctx.settings.sticker_default_publisher,
        ).asset
        sticker = ctx.stickers.read_bytes(asset)
    except (StickerPackError, ValueError):
        logger.warning("text sticker failed for %s", ctx.owner, exc_info=True)
        ctx.reply(failure)
        return
    ctx.send(Reply(ReplyKind.STICKER, data=sticker, mimetype="image/webp", quote=False))
    store.remember_last_sticker(ctx.database, ctx.owner, asset.id)
    collect_and_notify(ctx, asset.id, notify=True)


# --- /toimg -----------------------------------------------------------------------------------------
def convert_sticker(ctx: ChatContext, _args: str) -> None:
    """A static sticker → PNG image; an animated one → MP4 video (the original only re-sent the WebP).

    With no sticker in the message or quoted, the sender's last sticker is converted (like `/pack add`),
    so `/st bom dia` then `/toimg` works on every network (the original needed a quoted sticker)."""
    _ = ctx._
    carried = [m for m in (ctx.message.media, ctx.message.quoted_media) if m is not None]
    media = next((m for m in carried if is_sticker(m)), None)
    if media is None:
        # A photo or video sent or quoted is what the person meant: refuse it rather than silently
        # convert another sticker (the same rule as `/pack add`).
        data = None if carried else _last_sticker_bytes(ctx)
        if data is None:
            ctx.reply(
                _("❌ Send or reply to a sticker to convert. Tip: use the command replying to a sticker.")
            )
            return
        animated = looks_animated(MediaRef(MediaKind.STICKER, ref=""), data)
    else:
        limit = ctx.settings.chat_convert_input_max_bytes
        if media.declared_size is not None and media.declared_size > limit:
            ctx.reply(
                _(
                    "❌ Sticker too large ({size} MB). Send a smaller one.",
                    size=megabytes(media.declared_size),
                )
            )
            return
        try:
            data = ctx.download(media, max_bytes=limit)
        except (MediaUnavailable, MediaRejected):
            ctx.reply(_("❌ Could not download the sticker. Try again."))
            return
        if len(data) > limit:
            ctx.reply(_("❌ Sticker too large ({size} MB). Send a smaller one.", size=megabytes(len(data))))
            return
        animated = looks_animated(media, data)
    try:
        from omnizap.core.stickers import convert
    except ImportError:
        ctx.reply(_("❌ Could not convert the sticker now. Try again."))
        return
    try:
        if animated:
            video = convert.sticker_to_mp4(data)
            reply = Reply(
                ReplyKind.VIDEO,
                text=_("🎞️ Sticker converted to video."),
                data=video,
                mimetype="video/mp4",
                filename="sticker.mp4",
            )
        else:
            image = convert.sticker_to_png(data)
            reply = Reply(
                ReplyKind.IMAGE,
                text=_("🖼️ Sticker converted to image."),
                data=image,
                mimetype="image/png",
                filename="sticker.png",
            )
    except MediaRejected as exc:
        ctx.reply(rejection_text(ctx, exc))
        return
    except Exception:
        logger.exception("sticker conversion failed")
        ctx.reply(_("❌ Could not convert the sticker now. Try again."))
        return
    ctx.send(reply)


def _last_sticker_bytes(ctx: ChatContext) -> bytes | None:
    """The stored file of the sender's last sticker (made, sent or added last), or None."""
    sticker_id = store.last_sticker(ctx.database, ctx.owner)
    if sticker_id is None:
        return None
    try:
        return ctx.stickers.read_bytes(ctx.stickers.get(sticker_id))
    except StickerPackError:  # deleted meanwhile, or its file is unreadable
        logger.warning("last sticker %s of %s is unreadable", sticker_id, ctx.owner, exc_info=True)
        return None


# --- passive capture ----------------------------------------------------------------------------------
def capture_sent_sticker(ctx: ChatContext) -> None:
    """A sticker someone sends is stored as theirs and becomes their last sticker; never added to a
    pack, never answered (chat §5.1). Failures are only logged."""
    media = ctx.message.media
    if media is None or media.kind is not MediaKind.STICKER:
        return
    limit = ctx.settings.sticker_pack_max_sticker_bytes
    if media.declared_size is not None and media.declared_size > limit:
        return
    try:
        data = ctx.download(media, max_bytes=limit)
        if len(data) > limit:
            return
        try:
            asset = ctx.stickers.ingest_webp_sticker(data, owner_jid=ctx.owner).asset
        except MediaRejected as exc:
            if exc.code != "INVALID_STICKER":
                raise
            asset = ctx.stickers.ingest(data, owner_jid=ctx.owner).asset
    except SendFailed:
        raise
    except (MediaUnavailable, StickerPackError) as exc:
        logger.info("sticker from %s not captured: %s", ctx.owner, exc)
        return
    store.remember_last_sticker(ctx.database, ctx.owner, asset.id)
