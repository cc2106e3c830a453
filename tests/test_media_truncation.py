"""Files whose headers promise more pixel data than they hold are refused as TRUNCATED_FILE.

The hostile files are made by real encoders and then cut or re-labelled the way a broken upload
or a crafted file would be: container sizes are kept consistent, so only the image data is short.
Refusal is checked in the converter, through the service (nothing stored) and through the CLI.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import media_factory as mf
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from PIL import Image, ImageFile

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.core.stickers.errors import MediaRejected
from omnizap.core.stickers.exif import StickerMetadata
from omnizap.core.stickers.integrity import jpeg_may_be_short
from omnizap.core.stickers.media import convert_to_sticker
from omnizap.core.stickers.service import StickerService
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset
from omnizap.platform.storage import LocalStorage

OWNER = "5511977776666@s.whatsapp.net"
METADATA = StickerMetadata("Pack", "Publisher")


def jpeg_in_mode(mode: str) -> bytes:
    """A JPEG stored in `mode` (greyscale, CMYK); media_factory's encoder always writes RGB."""
    buffer = io.BytesIO()
    mf.photo_like_image(400, 300).convert(mode).save(buffer, "JPEG")
    return buffer.getvalue()


def jpeg_claiming_6000() -> bytes:
    return mf.jpeg_claiming_size(mf.encode_image(mf.photo_like_image(400, 300), "JPEG"), 6000, 6000)


def progressive_jpeg_claiming_more_rows() -> bytes:
    picture = mf.encode_image(mf.photo_like_image(400, 300), "JPEG", progressive=True)
    return mf.jpeg_claiming_size(picture, 400, 340)


def png_cut_in_idat() -> bytes:
    return mf.png_cut_in_idat(mf.encode_image(mf.noise_image(200, 200), "PNG"))


def png_short_rows() -> bytes:
    return mf.png_with_short_rows(mf.encode_image(mf.noise_image(200, 200), "PNG"))


def interlaced_png_short_rows() -> bytes:
    return mf.png_with_short_rows(mf.encode_image(mf.noise_image(120, 90), "PNG", interlace=1), 0.9)


def apng_frame_cut() -> bytes:
    """An APNG whose second frame's fdAT stream is re-compressed from half its rows."""
    import struct
    import zlib

    data = mf.animated_png(3, (64, 64))
    position, out, seen = 8, bytearray(data[:8]), 0
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        body = data[position + 8 : position + 8 + length]
        if kind == b"fdAT":
            seen += 1
            if seen == 1:
                raw = zlib.decompress(body[4:])
                body = body[:4] + zlib.compress(raw[: len(raw) // 2])
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        position += 12 + length
    return bytes(out)


HOSTILE: dict[str, Callable[[], bytes]] = {
    "jpeg-sof-6000x6000": jpeg_claiming_6000,
    "jpeg-progressive-more-rows": progressive_jpeg_claiming_more_rows,
    "jpeg-grey-sof-2000x2000": lambda: mf.jpeg_claiming_size(jpeg_in_mode("L"), 2000, 2000),
    "jpeg-cmyk-sof-2000x2000": lambda: mf.jpeg_claiming_size(jpeg_in_mode("CMYK"), 2000, 2000),
    "png-cut-in-idat": png_cut_in_idat,
    "png-short-rows": png_short_rows,
    "png-interlaced-short-rows": interlaced_png_short_rows,
    "apng-frame-short": apng_frame_cut,
    "gif-cut-mid-frame": lambda: mf.gif_cut_mid_frame(mf.animated_gif(4, (64, 64)), closed=False),
    "gif-cut-mid-frame-closed": lambda: mf.gif_cut_mid_frame(mf.animated_gif(4, (64, 64)), closed=True),
    "webp-animated-cut-mid-frame": lambda: mf.webp_cut_mid_frame(mf.animated_webp(4, (64, 64))),
    "webp-lossless-animated-cut-mid-frame": lambda: mf.webp_cut_mid_frame(
        mf.animated_webp(4, (64, 64), lossless=True)
    ),
    "webp-static-cut": lambda: mf.webp_cut_mid_frame(
        mf.encode_image(mf.photo_like_image(300, 300), "WEBP", quality=80)
    ),
    "webm-live-cut": lambda: mf.truncated(mf.live_webm(), 0.6),
}


def refusal(data: bytes) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        convert_to_sticker(data, metadata=METADATA)
    return caught.value


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_short_image_data_is_refused_as_truncated(name: str) -> None:
    error = refusal(HOSTILE[name]())
    assert error.code == "TRUNCATED_FILE", error.message
    assert "incomplete" in error.message and "send the whole file again" in error.message


def test_jpeg_refusal_names_the_claimed_size() -> None:
    assert "6000×6000" in refusal(jpeg_claiming_6000()).message


def test_the_costly_jpeg_check_runs_only_where_data_may_be_short() -> None:
    """Complete baseline photos skip the second decode; short, progressive and CMYK files get it."""

    def decoded(data: bytes) -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.draft(image.mode, (512, 512))
        image.load()
        return image

    photo = mf.encode_image(mf.photo_like_image(400, 300), "JPEG")
    assert not jpeg_may_be_short(decoded(photo))
    assert jpeg_may_be_short(decoded(jpeg_claiming_6000()))
    assert jpeg_may_be_short(decoded(mf.jpeg_claiming_size(photo, 400, 340)))
    progressive = mf.encode_image(mf.photo_like_image(400, 300), "JPEG", progressive=True)
    assert jpeg_may_be_short(decoded(progressive))
    assert jpeg_may_be_short(decoded(jpeg_in_mode("CMYK")))
    assert not jpeg_may_be_short(decoded(jpeg_in_mode("L")))


def test_mp4_stream_cut_short_inside_a_whole_looking_container(tmp_path: Path) -> None:
    error = refusal(mf.mp4_stream_cut_short(tmp_path / "fast-start.mp4"))
    assert error.code == "TRUNCATED_FILE" and "incomplete" in error.message


@pytest.mark.parametrize(
    "make",
    [
        lambda: mf.encode_image(mf.photo_like_image(400, 300), "JPEG"),
        lambda: mf.encode_image(mf.photo_like_image(400, 300), "JPEG", progressive=True),
        lambda: jpeg_in_mode("L"),
        lambda: jpeg_in_mode("CMYK"),
        lambda: mf.encode_image(mf.photo_like_image(400, 300), "JPEG") + b"trailing junk" * 4,
        lambda: mf.encode_image(mf.noise_image(120, 90), "PNG", interlace=1),
        lambda: mf.encode_image(mf.noise_image(33, 17).convert("1"), "PNG"),
        lambda: mf.encode_image(mf.noise_image(33, 17).convert("P"), "PNG", bits=4),
        lambda: mf.animated_png(3, (64, 64)),
        lambda: mf.live_webm(),
    ],
    ids=[
        "jpeg",
        "jpeg-progressive",
        "jpeg-grey",
        "jpeg-cmyk",
        "jpeg-trailing",
        "png-interlaced",
        "png-1bit",
        "png-4bit",
        "apng",
        "webm-live",
    ],
)
def test_complete_files_still_pass_the_checks(make: Callable[[], bytes]) -> None:
    assert convert_to_sticker(make(), metadata=METADATA).data[:4] == b"RIFF"


def test_complete_fast_start_mp4_passes(tmp_path: Path) -> None:
    whole = mf.mp4_stream_cut_short(tmp_path / "fast-start.mp4", keep=1.0)
    assert convert_to_sticker(whole, metadata=METADATA).is_animated


def test_truncated_loading_switched_on_elsewhere_is_switched_off_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Some library or plugin may set Pillow's process-wide flag; ingest must not inherit it."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert refusal(png_cut_in_idat()).code == "TRUNCATED_FILE"
    assert refusal(mf.gif_cut_mid_frame(mf.animated_gif(4, (64, 64)), closed=True)).code == "TRUNCATED_FILE"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_no_module_switches_truncated_loading_on() -> None:
    root = Path(__file__).resolve().parents[1] / "omnizap"
    setter = re.compile(r"LOAD_TRUNCATED_IMAGES\s*=(?!\s*False)")
    offenders = [
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if setter.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- through the service and the CLI: nothing is stored --------------------------------------------


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def count_assets(db: Database) -> int:
    with db.read() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(sticker_asset)).scalar_one())


def test_service_stores_nothing_for_short_files(db: Database, db_settings: Settings) -> None:
    storage = LocalStorage(db_settings.sticker_storage_dir)
    stickers = StickerService(db, storage, db_settings)
    for name in (
        "jpeg-sof-6000x6000",
        "png-short-rows",
        "gif-cut-mid-frame-closed",
        "webp-animated-cut-mid-frame",
    ):
        with pytest.raises(MediaRejected) as caught:
            stickers.ingest(HOSTILE[name](), owner_jid=OWNER)
        assert caught.value.code == "TRUNCATED_FILE", name
    assert count_assets(db) == 0
    assert stored_files(Path(db_settings.sticker_storage_dir)) == []


@pytest.fixture
def run_cli(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., object]]:
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(db_settings.sticker_storage_dir))
    monkeypatch.setenv("STICKER_PACK_AUTO_COLLECT_ENABLED", "false")
    reset_settings_cache()
    yield lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)
    reset_settings_cache()


def test_cli_import_refuses_short_files_and_stores_nothing(
    run_cli, tmp_path: Path, db: Database, db_settings: Settings
) -> None:
    files = {
        tmp_path / "big.jpg": jpeg_claiming_6000(),
        tmp_path / "cut.png": png_cut_in_idat(),
        tmp_path / "cut.gif": mf.gif_cut_mid_frame(mf.animated_gif(4, (64, 64)), closed=True),
        tmp_path / "cut.webp": mf.webp_cut_mid_frame(mf.animated_webp(4, (64, 64))),
        tmp_path / "cut.mp4": mf.mp4_stream_cut_short(tmp_path / "scratch.mp4"),
    }
    for path, data in files.items():
        path.write_bytes(data)
    result = run_cli("sticker", "import", *map(str, files), "--owner", OWNER)
    assert result.exit_code == 1
    assert result.stdout.strip() == ""
    errors = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert {line["file"]: line["error"]["code"] for line in errors} == {
        str(path): "TRUNCATED_FILE" for path in files
    }
    assert count_assets(db) == 0
    assert stored_files(Path(db_settings.sticker_storage_dir)) == []
