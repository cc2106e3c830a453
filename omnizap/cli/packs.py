"""`omnizap pack`: create, list, inspect, edit, publish, clone and delete sticker packs.

Commands that change a pack print one JSON object (`{"pack": {...}, ...}`) on stdout. `list` and
`info` print a readable summary, or the same kind of JSON object with `--json`. Refusals print
`error: <message> [CODE]` on stderr and exit with status 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from omnizap.cli.common import AppContext, echo_json, pass_app
from omnizap.core.packs.models import Pack, PackItem
from omnizap.core.packs.rules import sanitize_text
from omnizap.core.packs.service import UNSET, PackService, pack_kind

F = TypeVar("F", bound=Callable[..., Any])

PACK_HELP = (
    "PACK is the pack's name, its key (meus-memes-k3x9q), its id, or a link ending in /stickers/<key>."
)
ITEM_HELP = "ITEM is a sticker's position in the pack (1, 2, …) or its sticker id."
VISIBILITY_HELP = "private, public or unlisted (unlisted: reachable by link, never listed)."


def owner_option(function: F) -> F:
    return click.option(
        "--owner",
        required=True,
        help="Owner of the pack: a WhatsApp JID (5511999999999@s.whatsapp.net) or a handle.",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")(function)


def _service(app: AppContext) -> PackService:
    return PackService(app.runtime.database, app.runtime.settings)


def _plain(value: str | None, max_len: int = 1024) -> str:
    # Stored text is already clean; this also keeps rows written by other tools from putting
    # terminal escape sequences on the operator's screen.
    return sanitize_text(value, max_len) or ""


@click.group("pack")
def pack() -> None:
    """Create, edit, publish, clone and delete sticker packs.

    PACK arguments accept a pack's name, key, id or /stickers/<key> link. Commands that change a
    pack print it as one JSON object; `list` and `info` print a summary (JSON with --json).
    """


@pack.command("create")
@click.argument("name")
@owner_option
@click.option("--publisher", default=None, help="Publisher shown in WhatsApp (default: OmniZap).")
@click.option("--description", default=None, help="Optional description (at most 1024 characters).")
@click.option("--visibility", default="public", show_default=True, help=VISIBILITY_HELP)
@pass_app
def create_pack(
    app: AppContext, name: str, owner: str, publisher: str | None, description: str | None, visibility: str
) -> None:
    """Create an empty pack called NAME (at most 120 characters; emojis and spaces welcome)."""
    created = _service(app).create_pack(
        owner, name, publisher=publisher, description=description, visibility=visibility
    )
    echo_json({"pack": created.to_dict()})


@pack.command("list")
@owner_option
@click.option("--no-auto", is_flag=True, help="Leave out automatic packs (auto-collector, themes).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most this many packs.")
@json_option
@pass_app
def list_packs(app: AppContext, owner: str, no_auto: bool, limit: int | None, as_json: bool) -> None:
    """List the owner's packs, most recently updated first."""
    service = _service(app)
    packs = service.list_packs(owner, include_auto=not no_auto, limit=limit)
    if as_json:
        echo_json({"packs": [found.to_dict() for found in packs]})
        return
    if not packs:
        click.echo("No packs yet. Create one with: omnizap pack create NAME --owner OWNER")
        return
    click.echo(f"{len(packs)} pack(s), most recently updated first:")
    key_width = max(len(found.pack_key) for found in packs)
    click.echo(f"  {'KEY':<{key_width}}  {'ITEMS':>7}  {'VISIBILITY':<10}  {'KIND':<9}  NAME")
    for found in packs:
        items = f"{found.sticker_count}/{service.max_items}"
        kind = pack_kind(found, service.auto_pack_base)
        click.echo(
            f"  {found.pack_key:<{key_width}}  {items:>7}  {found.visibility:<10}  {kind:<9}  "
            f"{_plain(found.name)}"
        )


@pack.command("info", epilog=PACK_HELP)
@click.argument("pack_ref", metavar="PACK")
@owner_option
@json_option
@pass_app
def pack_info(app: AppContext, pack_ref: str, owner: str, as_json: bool) -> None:
    """Show a pack and every sticker in it, in order."""
    service = _service(app)
    found = service.resolve(owner, pack_ref)
    items = service.items(found.id)
    if as_json:
        echo_json({"pack": found.to_dict(), "items": [item.to_dict() for item in items]})
        return
    _print_info(found, items, service)


def _print_info(found: Pack, items: Sequence[PackItem], service: PackService) -> None:
    cover = next((item for item in items if item.sticker_id == found.cover_sticker_id), None)
    fields = [
        ("key", found.pack_key),
        ("id", found.id),
        ("publisher", _plain(found.publisher)),
        ("visibility", found.visibility),
        ("status", f"{found.status} ({found.pack_status})"),
        ("kind", pack_kind(found, service.auto_pack_base)),
        ("items", f"{found.sticker_count}/{service.max_items}"),
        ("cover", f"#{cover.position} {cover.sticker_id}" if cover else "not set (first sticker is used)"),
        ("description", _plain(found.description) or "not set"),
        ("version", str(found.version)),
        ("updated", found.updated_at.isoformat(timespec="seconds")),
    ]
    click.echo(_plain(found.name))
    for label, value in fields:
        click.echo(f"  {label + ':':<13}{value}")
    if not items:
        click.echo("No stickers yet. Add one with: omnizap pack add PACK STICKER_ID --owner OWNER")
        return
    click.echo("Stickers:")
    for item in items:
        parts = [f"  {item.position:>3}. {item.sticker_id}"]
        if item.emojis:
            parts.append(" ".join(_plain(emoji, 32) for emoji in item.emojis))
        if item.accessibility_label:
            parts.append(f"“{_plain(item.accessibility_label)}”")
        if item.sticker_id == found.cover_sticker_id:
            parts.append("[cover]")
        click.echo("  ".join(parts))


@pack.command("add", epilog=PACK_HELP)
@click.argument("pack_ref", metavar="PACK")
@click.argument("sticker_id")
@owner_option
@click.option("--emojis", default=None, help="Emojis for the sticker, separated by commas or spaces.")
@click.option("--label", default=None, help="Accessibility label (what the sticker shows).")
@pass_app
def add_sticker(
    app: AppContext, pack_ref: str, sticker_id: str, owner: str, emojis: str | None, label: str | None
) -> None:
    """Append the stored sticker STICKER_ID to PACK (see `omnizap sticker import` for ids)."""
    service = _service(app)
    item = service.add_sticker(owner, pack_ref, sticker_id, emojis=emojis, accessibility_label=label)
    echo_json({"pack": service.resolve(owner, item.pack_id).to_dict(), "item": item.to_dict()})


@pack.command("remove", epilog=f"{PACK_HELP} {ITEM_HELP}")
@click.argument("pack_ref", metavar="PACK")
@click.argument("item")
@owner_option
@pass_app
def remove_sticker(app: AppContext, pack_ref: str, item: str, owner: str) -> None:
    """Take ITEM out of PACK; later stickers move up. The sticker itself stays stored."""
    service = _service(app)
    removed = service.remove_sticker(owner, pack_ref, item)
    echo_json({"pack": service.resolve(owner, removed.pack_id).to_dict(), "removed": removed.to_dict()})


@pack.command("reorder", epilog=PACK_HELP)
@click.argument("pack_ref", metavar="PACK")
@click.argument("order", nargs=-1, required=True)
@owner_option
@pass_app
def reorder(app: AppContext, pack_ref: str, order: tuple[str, ...], owner: str) -> None:
    """Move stickers to the front of PACK in the ORDER given; the rest keep their order.

    ORDER is positions (`3 1 2`) or sticker ids, separated by spaces or commas.
    """
    service = _service(app)
    updated = service.reorder(owner, pack_ref, list(order))
    sticker_ids = [item.sticker_id for item in service.items(updated.id)]
    echo_json({"pack": updated.to_dict(), "order": sticker_ids})


@pack.command("rename", epilog=PACK_HELP)
@click.argument("pack_ref", metavar="PACK")
@click.argument("new_name")
@owner_option
@pass_app
def rename(app: AppContext, pack_ref: str, new_name: str, owner: str) -> None:
    """Give PACK a new name. Its key (and so its links) stays the same."""
    echo_json({"pack": _service(app).rename(owner, pack_ref, new_name).to_dict()})


@pack.command("set", epilog=f"{PACK_HELP} {ITEM_HELP}")
@click.argument("pack_ref", metavar="PACK")
@owner_option
@click.option("--publisher", default=None, help="New publisher (at most 120 characters).")
@click.option("--description", default=None, help="New description; '-' or 'clear' removes it.")
@click.option("--visibility", default=None, help=VISIBILITY_HELP)
@click.option("--cover", default=None, metavar="ITEM", help="Make this sticker of the pack its cover.")
@click.option("--item", default=None, metavar="ITEM", help="The sticker that --emojis/--label change.")
@click.option("--emojis", default=None, help="Emojis of --item, separated by commas or spaces.")
@click.option("--label", default=None, help="Accessibility label of --item ('' removes it).")
@pass_app
def set_fields(
    app: AppContext,
    pack_ref: str,
    owner: str,
    publisher: str | None,
    description: str | None,
    visibility: str | None,
    cover: str | None,
    item: str | None,
    emojis: str | None,
    label: str | None,
) -> None:
    """Change PACK's publisher, description, visibility or cover, or a sticker's emojis and label,
    all as one new version."""
    changed = _service(app).set_fields(
        owner,
        pack_ref,
        publisher=UNSET if publisher is None else publisher,
        description=UNSET if description is None else description,
        visibility=UNSET if visibility is None else visibility,
        cover=UNSET if cover is None else cover,
        item=item,
        emojis=UNSET if emojis is None else emojis,
        accessibility_label=UNSET if label is None else label,
    )
    echo_json({"pack": changed.to_dict()})


@pack.command("publish", epilog=PACK_HELP)
@click.argument("pack_ref", metavar="PACK")
@click.argument("visibility", default="public")
@owner_option
@pass_app
def publish(app: AppContext, pack_ref: str, visibility: str, owner: str) -> None:
    """Set who can see PACK: VISIBILITY is public (default), unlisted or private."""
    echo_json({"pack": _service(app).publish(owner, pack_ref, visibility).to_dict()})


@pack.command("clone", epilog=PACK_HELP)
@click.argument("pack_ref", metavar="PACK")
@click.argument("new_name", required=False)
@owner_option
@pass_app
def clone(app: AppContext, pack_ref: str, new_name: str | None, owner: str) -> None:
    """Copy PACK with all its stickers into a new pack (NEW_NAME, default "<name> (copy)").

    The copy counts against the owner's pack limit and gets its own key.
    """
    echo_json({"pack": _service(app).clone(owner, pack_ref, new_name).to_dict()})


@pack.command("delete", epilog=PACK_HELP)
@click.argument("pack_ref", metavar="PACK")
@owner_option
@pass_app
def delete(app: AppContext, pack_ref: str, owner: str) -> None:
    """Delete PACK. Its stickers stay stored and its key is never given to another pack."""
    echo_json({"pack": _service(app).delete(owner, pack_ref).to_dict()})


# `omnizap pack export` lives in omnizap/cli/pack_export.py, which another change is adding at the
# same time as this one; the guard only keeps `pack` usable until that module lands.
try:
    from omnizap.cli.pack_export import export_command
except ImportError:
    pass
else:
    pack.add_command(export_command, "export")
