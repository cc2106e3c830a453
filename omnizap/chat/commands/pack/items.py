"""`/pack add`, `setcover`, `remove` and `reorder`: the stickers in a pack."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from omnizap.chat import layout
from omnizap.chat.commands.errors import ChatPackError
from omnizap.chat.commands.pack.common import (
    UNBOUNDED,
    cmd,
    invalid_input,
    items_label,
    pick_option,
    require_reference,
    resolve_pack,
    sticker_in_context,
)
from omnizap.chat.context import ChatContext
from omnizap.chat.parsing import first_token, pipe_options, strip_quotes
from omnizap.core.errors import PackLimitReached
from omnizap.core.packs.rules import LABEL_MAX, sanitize_text

if TYPE_CHECKING:
    from omnizap.core.packs.models import PackItem


SHORT_ID_MIN = 4  # shortest prefix `reorder` accepts for a sticker id
_ORDER_SPLIT = re.compile(r"[\s,]+")


def add(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, options = pipe_options(rest)
    pack = resolve_pack(ctx, reference)
    emojis = pick_option(options, "emojis", "emoji")
    label = pick_option(options, "label", "accessibility")
    if label is not None and len(sanitize_text(label, UNBOUNDED) or "") > LABEL_MAX:
        raise invalid_input(_("Label too long (max {max} characters).", max=LABEL_MAX))
    sticker_id = sticker_in_context(ctx, "add")
    try:
        ctx.packs.add_sticker(ctx.owner, pack.id, sticker_id, emojis=emojis, accessibility_label=label)
    except PackLimitReached as exc:
        raise ChatPackError(
            "PACK_LIMIT_REACHED",
            _("The pack reached the limit of {max} stickers.", max=ctx.settings.sticker_pack_max_items),
        ) from exc
    pack = ctx.packs.resolve(ctx.owner, pack.id)
    key = pack.pack_key
    ctx.reply(
        layout.success(
            _,
            _("➕ *Sticker added!*"),
            _("Item added successfully to the selected pack."),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("🧩 Items: {count}", count=items_label(ctx, pack)),
                _("🆔 ID: `{key}`", key=key),
            ],
            [
                _(
                    "Set as cover: reply to the sticker and use {command}",
                    command=cmd(ctx, f"setcover {key}"),
                ),
                _("See the pack: {command}", command=cmd(ctx, f"info {key}")),
            ],
        )
    )


def setcover(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    pack = resolve_pack(ctx, strip_quotes(rest))
    sticker_id = sticker_in_context(ctx, "cover")
    if sticker_id not in {item.sticker_id for item in ctx.packs.items(pack.id)}:
        raise ChatPackError("STICKER_NOT_FOUND", _("That sticker is not in the pack."))
    pack = ctx.packs.set_fields(ctx.owner, pack.id, cover=sticker_id)
    ctx.reply(
        layout.success(
            _,
            _("🖼️ *Cover set!*"),
            _("The selected sticker is now this pack's cover."),
            [_("📦 Pack: *{name}*", name=pack.name), _("🆔 ID: `{key}`", key=pack.pack_key)],
        )
    )


def remove(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, tail = first_token(rest)
    require_reference(ctx, reference)
    selector, _ignored = first_token(tail)
    if not selector:
        raise invalid_input(_("Provide the sticker's index or ID."))
    pack = resolve_pack(ctx, reference)
    items = ctx.packs.items(pack.id)
    target = _match_item(items, selector)
    if target is None:
        raise ChatPackError("STICKER_NOT_FOUND", _("Sticker not found in the pack."))
    removed = ctx.packs.remove_sticker(ctx.owner, pack.id, target.sticker_id)
    pack = ctx.packs.resolve(ctx.owner, pack.id)
    ctx.reply(
        layout.success(
            _,
            _("🗑️ *Sticker removed!*"),
            _("Removal done and the pack was reordered automatically."),
            [
                _("📦 Pack: *{name}*", name=pack.name),
                _("Removed item: sticker #{position}", position=removed.position),
                _("🧩 Items: {count}", count=items_label(ctx, pack)),
            ],
        )
    )


def _match_item(items: list[PackItem], token: str) -> PackItem | None:
    """A position (1..n), a full sticker id, or a unique prefix of one (the short id `info` prints)."""
    token = token.strip()
    if token.isascii() and token.isdigit():
        found = next((item for item in items if item.position == int(token)), None)
        if found is not None:
            return found
    exact = next((item for item in items if item.sticker_id == token), None)
    if exact is not None or len(token) < SHORT_ID_MIN:
        return exact
    matches = [item for item in items if item.sticker_id.startswith(token.lower())]
    return matches[0] if len(matches) == 1 else None


def reorder(ctx: ChatContext, rest: str) -> None:
    _ = ctx._
    reference, tail = first_token(rest)
    require_reference(ctx, reference)
    tokens = [token for token in _ORDER_SPLIT.split(tail) if token][:500]
    if not tokens:
        raise invalid_input(_("Send the new sticker order."))
    pack = resolve_pack(ctx, reference)
    items = ctx.packs.items(pack.id)
    if len(items) < 2:
        raise invalid_input(_("The pack needs 2+ stickers to reorder."))
    if all(token.isascii() and token.isdigit() for token in tokens):
        wanted = [items[int(token) - 1].sticker_id for token in tokens if 1 <= int(token) <= len(items)]
    else:
        found = [_match_item(items, token) for token in tokens]
        wanted = [item.sticker_id for item in found if item is not None]
    if not wanted:
        raise invalid_input(_("The order sent does not match the pack's stickers."))
    pack = ctx.packs.reorder(ctx.owner, pack.id, wanted)
    ctx.reply(
        layout.success(
            _,
            _("🔀 *Order updated!*"),
            _("The new sequence was applied to the pack."),
            [_("📦 Pack: *{name}*", name=pack.name), _("🆔 ID: `{key}`", key=pack.pack_key)],
            [_("See the new order: {command}", command=cmd(ctx, f"info {pack.pack_key}"))],
        )
    )
