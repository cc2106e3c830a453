"""The console transport: a terminal (or a script on stdin) as a chat network.

Files are attached by path; media replies are written to a folder and their paths printed. Used by
`omnizap bot console` and by the tests, so they exercise the real queue path.
"""

from __future__ import annotations

import itertools
import mimetypes
import re
import threading
from collections.abc import Callable
from pathlib import Path

from omnizap.chat.messages import (
    IncomingMessage,
    MediaKind,
    MediaRef,
    MediaUnavailable,
    Reply,
    ReplyKind,
    ReplyNotSupported,
    SentPack,
)
from omnizap.core.stickers.errors import TOO_LARGE, MediaRejected

NETWORK = "console"
_KIND_BY_SUFFIX = {
    ".webp": MediaKind.STICKER,
    ".jpg": MediaKind.IMAGE,
    ".jpeg": MediaKind.IMAGE,
    ".png": MediaKind.IMAGE,
    ".bmp": MediaKind.IMAGE,
    ".gif": MediaKind.GIF,
    ".mp4": MediaKind.VIDEO,
    ".webm": MediaKind.VIDEO,
    ".mov": MediaKind.VIDEO,
    ".mkv": MediaKind.VIDEO,
    ".ogg": MediaKind.VOICE,
    ".opus": MediaKind.VOICE,
    ".mp3": MediaKind.AUDIO,
    ".m4a": MediaKind.AUDIO,
}
_SUFFIX_BY_KIND = {
    ReplyKind.STICKER: ".webp",
    ReplyKind.IMAGE: ".png",
    ReplyKind.VIDEO: ".mp4",
    ReplyKind.DOCUMENT: ".bin",
}


def _safe_name(filename: str) -> str:
    """A file name the bot chose, reduced to characters safe in any folder."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[:120] or "file"


_NUMBERED = re.compile(r"^(\d+)-")


def _next_number(folder: Path) -> int:
    """1 + the highest `NNNN-` number of the files in `folder` (1 for an empty or missing folder)."""
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return 1
    numbers = [int(match.group(1)) for name in names if (match := _NUMBERED.match(name))]
    return max(numbers, default=0) + 1


def media_for_path(path: Path) -> MediaRef:
    """A MediaRef for a local file, its kind guessed from the extension (as a phone would label it)."""
    kind = _KIND_BY_SUFFIX.get(path.suffix.lower(), MediaKind.DOCUMENT)
    size = path.stat().st_size if path.is_file() else None
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return MediaRef(kind=kind, ref=str(path), mimetype=mimetype, declared_size=size, filename=path.name)


class ConsoleTransport:
    """Prints text replies, saves media replies under `out_dir`. `native_packs` makes a pack reply
    arrive as a folder of stickers (like a client that installs packs); otherwise it is refused and
    the core falls back to sticker-by-sticker, as on a client without pack support."""

    network = NETWORK

    def __init__(
        self, out_dir: Path, *, echo: Callable[[str], None] = print, native_packs: bool = False
    ) -> None:
        self.out_dir = Path(out_dir)
        self.echo = echo
        self.native_packs = native_packs
        self.saved: list[Path] = []
        self._counter = itertools.count(_next_number(self.out_dir))
        self._lock = threading.Lock()

    def download(self, media: MediaRef, *, max_bytes: int) -> bytes:
        path = Path(media.ref)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise MediaUnavailable(f"cannot read {path.name}: {exc.strerror}") from exc
        if size > max_bytes:
            raise MediaRejected(TOO_LARGE, f"{path.name} has {size} bytes; the limit is {max_bytes}")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise MediaUnavailable(f"cannot read {path.name}: {exc.strerror}") from exc

    def _save(self, stem: str, suffix: str, data: bytes) -> Path:
        """Write a new file; numbering continues past the files already there and an existing file is
        never overwritten (another session may write to the same folder at the same time)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        while True:
            with self._lock:
                number = next(self._counter)
            path = self.out_dir / f"{number:04d}-{stem}{suffix}"
            try:
                with path.open("xb") as handle:
                    handle.write(data)
            except FileExistsError:
                continue
            self.saved.append(path)
            return path

    def send(self, message: IncomingMessage, reply: Reply) -> SentPack | None:
        if reply.kind is ReplyKind.TEXT:
            self.echo(reply.text)
            return None
        if reply.kind is ReplyKind.STICKER_PACK:
            if not self.native_packs or reply.pack is None:
                raise ReplyNotSupported("the console shows packs sticker by sticker")
            folder_stem = f"pack-{reply.pack.pack_key}"
            paths = [
                self._save(f"{folder_stem}-{index:02d}", ".webp", sticker.data)
                for index, sticker in enumerate(reply.pack.stickers, 1)
            ]
            self.echo(f"[sticker pack {reply.pack.name!r}: {len(paths)} stickers] {paths[0].parent}")
            return SentPack(link="", set_name=reply.pack.pack_key)
        if reply.filename:
            path = self._save(f"{reply.kind.value}-{_safe_name(reply.filename)}", "", reply.data)
        else:
            path = self._save(reply.kind.value, _SUFFIX_BY_KIND.get(reply.kind, ".bin"), reply.data)
        caption = f" {reply.text}" if reply.text else ""
        self.echo(f"[{reply.kind.value}] {path}{caption}")
        return None
