"""`omnizap sticker`: import images, GIFs and videos as WhatsApp stickers, and inspect stored ones.

Output is machine-readable: one JSON line per imported file on stdout; a file that fails prints one
JSON line with `error: {code, message}` on stderr, the rest still import, and the exit code is 1.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from omnizap.cli.common import AppContext, echo_json, pass_app
from omnizap.core.errors import DuplicateSticker, StickerPackError
from omnizap.core.owners import normalize_owner_jid
from omnizap.core.stickers.service import IngestResult, StickerService

FILE_NOT_READABLE = "FILE_NOT_READABLE"


@click.group("sticker")
def sticker() -> None:
    """Import images and videos as WhatsApp-ready stickers, and inspect stored stickers."""


@sticker.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "--owner", required=True, help="Owner: a WhatsApp JID (5511999999999@s.whatsapp.net) or handle."
)
@click.option("--pack", "pack_key", default=None, help="Add each sticker to this pack (its pack key).")
@click.option("--name", "pack_name", default=None, help="Pack name embedded in the sticker metadata.")
@click.option("--publisher", default=None, help="Publisher embedded in the sticker metadata.")
@click.option("--emoji", "emojis", multiple=True, help="An emoji for the sticker (repeat, at most 3).")
@pass_app
def import_stickers(
    app: AppContext,
    files: tuple[Path, ...],
    owner: str,
    pack_key: str | None,
    pack_name: str | None,
    publisher: str | None,
    emojis: tuple[str, ...],
) -> None:
    """Convert FILE... (PNG, JPEG, WebP, GIF, MP4, WebM) into 512×512 WebP stickers and store them.

    Without --pack, each sticker goes to the owner's automatic pack (when auto-collect is enabled).
    """
    owner_jid = normalize_owner_jid(owner)  # a bad owner fails once, before any file is read
    runtime = app.runtime
    service = StickerService(runtime.database, runtime.storage, runtime.settings)
    placer = _StickerPlacer(runtime, pack_key)
    failures = 0
    with _progress(len(files)) as advance:
        for path in files:
            try:
                line = _import_one(service, placer, path, owner_jid, pack_name, publisher, emojis)
            except _FileFailed as failed:
                failures += 1
                _emit(failed.line, sys.stderr)
            else:
                _emit(line, sys.stdout)
            advance(path.name)
    if failures:
        raise SystemExit(1)


def _emit(line: dict[str, Any], stream: TextIO) -> None:
    # print() on sys.stdout/sys.stderr, not click.echo: rich's live progress bar swaps those streams
    # for proxies that clear the bar first, so lines never land in the middle of it.
    print(json.dumps(line, ensure_ascii=False), file=stream, flush=True)


class _FileFailed(Exception):
    def __init__(self, line: dict[str, Any]) -> None:
        super().__init__(line["error"]["message"])
        self.line = line


def _import_one(
    service: StickerService,
    placer: _StickerPlacer,
    path: Path,
    owner_jid: str,
    pack_name: str | None,
    publisher: str | None,
    emojis: Sequence[str],
) -> dict[str, Any]:
    def failure(code: str, message: str, **extra: Any) -> _FileFailed:
        return _FileFailed({"file": str(path), **extra, "error": {"code": code, "message": message}})

    data = _read_source(path, service.settings.sticker_ingest_max_source_bytes, failure)
    try:
        result = service.ingest(
            data, owner_jid=owner_jid, pack_name=pack_name, publisher=publisher, emojis=emojis
        )
    except StickerPackError as exc:
        raise failure(exc.code, exc.message) from exc
    try:
        placed_in = placer.place(owner_jid, result)
    except StickerPackError as exc:
        # The sticker itself is stored (re-running finds it); only placing it in a pack failed.
        raise failure(exc.code, exc.message, sticker_id=result.asset.id) from exc
    asset = result.asset
    return {
        "file": str(path),
        "sticker_id": asset.id,
        "sha256": asset.sha256,
        "animated": asset.is_animated,
        "width": asset.width,
        "height": asset.height,
        "size": asset.size_bytes,
        "created": result.created,
        "pack_key": placed_in,
    }


def _read_source(path: Path, max_bytes: int, failure: Any) -> bytes:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise failure(FILE_NOT_READABLE, f"{path} is not a regular file")
        if size > max_bytes:  # refuse before reading a huge file into memory
            raise failure(
                "TOO_LARGE",
                f"the file has {size / 1_048_576:.1f} MB and the limit is {max_bytes / 1_048_576:.1f} MB "
                "(STICKER_INGEST_MAX_SOURCE_BYTES); send a smaller or shorter file",
            )
        return path.read_bytes()
    except OSError as exc:
        raise failure(FILE_NOT_READABLE, f"cannot read {path}: {exc.strerror or exc}") from exc


class _StickerPlacer:
    """Puts an imported sticker into the named pack, or lets the auto-collector choose one."""

    def __init__(self, runtime: Any, pack_key: str | None) -> None:
        self.runtime = runtime
        self.pack_key = pack_key
        self._pack_service: Any = None
        self._collector: Any = None

    def _packs(self) -> Any:
        if self._pack_service is None:
            from omnizap.core.packs.service import PackService

            self._pack_service = PackService(self.runtime.database, self.runtime.settings)
        return self._pack_service

    def place(self, owner_jid: str, result: IngestResult) -> str | None:
        """The pack key the sticker ended up in, or None when it stays outside any pack."""
        if self.pack_key is not None:
            # Already in that pack: importing the same file again is not an error.
            with contextlib.suppress(DuplicateSticker):
                self._packs().add_sticker(owner_jid, self.pack_key, result.asset.id)
            return self.pack_key
        if not self.runtime.settings.sticker_pack_auto_collect_enabled:
            return None
        if self._collector is None:
            from omnizap.core.packs.autocollect import AutoCollector

            self._collector = AutoCollector(self._packs(), self.runtime.settings)
        outcome = self._collector.collect(owner_jid, result.asset.id)
        pack = getattr(outcome, "pack", None)
        return getattr(pack, "pack_key", None)


@contextmanager
def _progress(total: int) -> Iterator[Any]:
    """A progress bar on stderr for more than one file; yields `advance(description)`."""
    if total <= 1:
        yield lambda _description: None
        return
    columns = (
        TextColumn("[bold]importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )
    # stdout is routed around the bar only when it shares the terminal; piped JSON stays on stdout.
    console = Console(stderr=True)
    with Progress(*columns, console=console, transient=True, redirect_stdout=sys.stdout.isatty()) as progress:
        task = progress.add_task("", total=total)
        yield lambda description: progress.update(task, advance=1, description=description)


@sticker.command("info")
@click.argument("sticker_id")
@pass_app
def sticker_info(app: AppContext, sticker_id: str) -> None:
    """Print a stored sticker as JSON: its row, whether its file is present, and its metadata."""
    runtime = app.runtime
    service = StickerService(runtime.database, runtime.storage, runtime.settings)
    asset = service.get(sticker_id)
    details = asset.to_dict()
    try:
        details["metadata"] = service.metadata_of(asset)
        details["file_present"] = True
    except StickerPackError:
        details["metadata"] = None
        details["file_present"] = False
    echo_json(details)
