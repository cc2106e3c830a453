"""Helpers every `/pack` subcommand shares: parsing and checking fields, resolving a pack reference,
and the sticker a command acts on (`sticker_in_context`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnizap.chat import store
from omnizap.chat.commands.errors import ChatPackError
from omnizap.chat.commands.media import is_sticker, rejection_text
from omnizap.chat.context import ChatContext
from omnizap.chat.messages import MediaUnavailable
from omnizap.core.errors import PackNotFound
from omnizap.core.packs.rules import DESCRIPTION_MAX, is_valid_pack_key, reference_candidates, sanitize_text
from omnizap.core.stickers.errors import INVALID_STICKER, MediaRejected

if TYPE_CHECKING:
    from omnizap.core.packs.models import Pack


SHAREABLE = {"public", "unlisted"}
UNBOUNDED = 1_000_000  # no length cap while sanitising; the caller checks the field's own maximum


def cmd(ctx: ChatContext, text: str) -> str:
    return f"`{ctx.prefix}pack {text}`"


def items_label(ctx: ChatContext, pack: Pack) -> str:
    return f"{pack.sticker_count}/{ctx.settings.sticker_pack_max_items}"


def invalid_input(message: str) -> ChatPackError:
    return ChatPackError("INVALID_INPUT", message)


def text_field(value: str, max_len: int, missing: str, too_long: str) -> str:
    """Sanitised text for a required field; refuses empty and over-long input with a clear message."""
    cleaned = sanitize_text(value, UNBOUNDED)
    if cleaned is None:
        raise invalid_input(missing)
    if len(cleaned) > max_len:
        raise invalid_input(too_long.format(count=len(cleaned), max=max_len))
    return cleaned


def require_reference(ctx: ChatContext, reference: str) -> str:
    if not sanitize_text(reference, UNBOUNDED):
        raise invalid_input(ctx._("Inform the pack to continue."))
    return reference


def resolve_pack(ctx: ChatContext, reference: str) -> Pack:
    return ctx.packs.resolve(ctx.owner, require_reference(ctx, reference))


def resolve_for_send(ctx: ChatContext, reference: str) -> Pack:
    """The sender's own pack, else anyone's public or unlisted pack by key or link (chat §1.2)."""
    try:
        return resolve_pack(ctx, reference)
    except PackNotFound:
        pass
    for candidate in reference_candidates(reference):
        if not is_valid_pack_key(candidate):
            continue
        try:
            pack = ctx.packs.get_by_key(candidate)
        except PackNotFound:
            continue
        if pack.visibility in SHAREABLE and not pack.is_deleted:
            return pack
    raise PackNotFound("no shareable pack matches")


def sticker_in_context(ctx: ChatContext, purpose: str) -> str:
    """The sticker `add`/`setcover` use (chat §2.2): the message's or quoted sticker, stored now;
    else the sender's last sticker. `purpose` is "add" or "cover" (for the refusal's wording)."""
    _ = ctx._
    media = ctx.message.media or ctx.message.quoted_media
    if media is not None:
        if not is_sticker(media):
            raise ChatPackError(
                "STICKER_NOT_FOUND",
                _("That message is not a sticker. Reply to a sticker (not a photo or video)."),
            )
        limit = ctx.settings.sticker_pack_max_sticker_bytes
        if media.declared_size is not None and media.declared_size > limit:
            raise invalid_input(_("Sticker exceeds the limit of {size} MB.", size=f"{limit / 1_048_576:.1f}"))
        try:
            data = ctx.download(media, max_bytes=limit)
        except MediaUnavailable as exc:
            raise ChatPackError("STORAGE_ERROR", _("Could not download the sticker for storage.")) from exc
        if len(data) > limit:
            raise invalid_input(_("Sticker exceeds the limit of {size} MB.", size=f"{limit / 1_048_576:.1f}"))
        try:
            try:
                asset = ctx.stickers.ingest_webp_sticker(data, owner_jid=ctx.owner).asset
            except MediaRejected as exc:
                if exc.code != INVALID_STICKER:
                    raise
                # A WebP sticker another app made outside WhatsApp's limits: re-encode it instead.
                asset = ctx.stickers.ingest(data, owner_jid=ctx.owner).asset
        except MediaRejected as exc:
            raise invalid_input(rejection_text(ctx, exc)) from exc
        store.remember_last_sticker(ctx.database, ctx.owner, asset.id)
        return asset.id
    remembered = store.last_sticker(ctx.database, ctx.owner)
    if remembered is None:
        if purpose == "cover":
            raise ChatPackError("STICKER_NOT_FOUND", _("I did not find a sticker to set as cover."))
        raise ChatPackError("STICKER_NOT_FOUND", _("I did not find a sticker to add."))
    return remembered


def pick_option(options: dict[str, str], *names: str) -> str | None:
    for name in names:
        if name in options:
            return options[name]
    return None


def parse_visibility(ctx: ChatContext, value: str) -> str:
    visibility = (value or "").strip().lower()
    if visibility not in {"private", "public", "unlisted"}:
        raise invalid_input(ctx._("Invalid visibility. Use: private, public or unlisted."))
    return visibility


def parse_description(ctx: ChatContext, value: str | None) -> str | None:
    cleaned = sanitize_text(value, UNBOUNDED)
    if cleaned is None or cleaned.lower() in {"-", "clear"}:
        return None
    if len(cleaned) > DESCRIPTION_MAX:
        raise invalid_input(
            ctx._(
                "Description too long: {count} characters (max {max}).",
                count=len(cleaned),
                max=DESCRIPTION_MAX,
            )
        )
    return cleaned


def pack_limit_text(ctx: ChatContext) -> str:
    limit = ctx.settings.sticker_pack_max_packs_per_owner
    return ctx._("Pack limit reached ({limit}).", limit=limit)
