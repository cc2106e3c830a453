"""`omnizap pack export`: write a pack as a WhatsApp sticker-pack zip, or say which WhatsApp rule fails.

`omnizap.cli.packs` registers this command on the `pack` group. On success one JSON line goes to
stdout; a refusal prints `error: <message> [EXPORT_INVALID]` on stderr, exits 1 and writes nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click

from omnizap.cli.common import AppContext, echo_json, fail, pass_app
from omnizap.core.errors import InvalidInput
from omnizap.core.packs.models import Pack
from omnizap.core.packs.service import PackService

FORMATS = ("whatsapp",)
OUTPUT_HINT = "'-o' / '--output'"


def _checked_key(value: str) -> str:
    """An empty key gets a hint; anything else is looked up (`get_by_key` refuses what no key can be)."""
    key = value.strip()
    if not key:
        raise InvalidInput("Give the pack's key (like meus-memes-k3x9q); `omnizap pack list` shows them.")
    return key


def _find_pack(packs: PackService, key: str, owner: str | None) -> Pack:
    if owner is not None:
        return packs.resolve(owner, key)
    # Deleted packs too, so the exporter can say "deleted" instead of "no such key".
    return packs.get_by_key(_checked_key(key), include_deleted=True)


def _output_folder_or_file(output: str | None) -> tuple[Path, bool]:
    """What -o names: (path, True) for a folder to put the default file name in, (path, False) for
    the file itself. A path whose folder does not exist is refused before any work is done; a
    trailing slash means the operator meant a folder."""
    if output is None:
        return Path.cwd(), True
    if not output.strip():
        raise click.BadParameter("give a file or folder name.", param_hint=OUTPUT_HINT)
    path = Path(output)
    if path.is_dir():
        return path, True
    folder = path if output.endswith(("/", os.sep)) else path.parent
    if not folder.exists():
        raise click.BadParameter(
            f"the folder {str(folder)!r} does not exist; create it first or choose another path.",
            param_hint=OUTPUT_HINT,
        )
    if not folder.is_dir():
        raise click.BadParameter(f"{str(folder)!r} is not a folder.", param_hint=OUTPUT_HINT)
    return path, False


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temp file next to `path`, then rename it over `path`: readers (and a crash)
    see the old file or the whole new one, never a partial zip."""
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o666 & ~_current_umask())  # mkstemp makes 0600; give a normal file's mode
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


@click.command("export")
@click.argument("key")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(FORMATS, case_sensitive=False),
    default="whatsapp",
    show_default=True,
    help="Output format (only WhatsApp's sticker-pack zip for now).",
)
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="PATH",
    help="File to write, or a folder for <pack_key>.wastickers.zip (default: the current folder).",
)
@click.option(
    "--owner",
    default=None,
    help="Resolve KEY as a name, key, id or link among this owner's packs (default: KEY is a pack key).",
)
@pass_app
def export_command(
    app: AppContext, key: str, export_format: str, output: str | None, owner: str | None
) -> None:
    """Export the pack KEY as a zip that WhatsApp accepts (contents.json, tray icon, WebP stickers).

    KEY is the pack's key (any owner). A pack that breaks a WhatsApp rule is refused with the rule and
    how to fix it, and nothing is written. See docs/export.md for the rules and how to import the zip.
    """
    destination, is_folder = _output_folder_or_file(output)
    runtime = app.runtime
    pack = _find_pack(PackService(runtime.database, runtime.settings), key, owner)
    # Imported here so the other `pack` commands never load Pillow.
    from omnizap.core.packs.export import WhatsAppExporter

    result = WhatsAppExporter(runtime.database, runtime.storage, runtime.settings).export(pack)
    target = destination / result.filename if is_folder else destination
    try:
        write_atomically(target, result.data)
    except OSError as exc:
        fail(f"could not write {target}: {exc.strerror or exc}; choose another path with -o")
    echo_json(
        {
            "path": str(target.resolve()),
            "size": result.size,
            "sticker_count": result.sticker_count,
            "animated": result.animated,
            "identifier": result.identifier,
            "pack_key": result.pack_key,
            "version": result.version,
            "image_data_version": result.image_data_version,
            "sha256": result.sha256,
            "format": export_format.lower(),
        }
    )
