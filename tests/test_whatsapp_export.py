"""WhatsApp export of packs: the zip passes an independent re-implementation of WhatsApp's validator,
is byte-for-byte deterministic per pack version, and every broken rule is refused by name.

Packs are built through the real StickerService and PackService from generated media, on every
database engine; "legacy" stickers that break a rule are written straight into storage and
`sticker_asset`, as an older release or another tool could have left them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import urllib.parse
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import media_factory as mf
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from PIL import Image, ImageChops

from omnizap.cli.main import cli
from omnizap.config import Settings, reset_settings_cache
from omnizap.core.errors import ExportRefused, PackNotFound
from omnizap.core.packs import export as export_module
from omnizap.core.packs import repository as pack_repository
from omnizap.core.packs.export import (
    WhatsAppExport,
    WhatsAppExporter,
    clean_emoji_list,
    cut_on_word_boundary,
    export_filename,
    website_problem,
    whatsapp_identifier,
)
from omnizap.core.packs.models import Pack
from omnizap.core.packs.service import PackService
from omnizap.core.stickers.service import StickerService
from omnizap.core.stickers.webp import inspect_webp
from omnizap.platform.db import Database
from omnizap.platform.db.schema import sticker_asset, sticker_pack
from omnizap.platform.storage import LocalStorage, key_for_digest

OWNER = "5511966665555@s.whatsapp.net"
KB = 1024


# --- an independent WhatsApp validator ----------------------------------------------------------------
# Written from WhatsApp's rules (StickerPackValidator, peers-and-anchors §A2), not from the exporter.
_IDENTIFIER = re.compile(r"^[a-zA-Z0-9_\-. ]+$")
_LINK_FIELDS = ("publisher_website", "privacy_policy_website", "license_agreement_website")
_EXTRA_FILES = {"contents.json", "title.txt", "author.txt"}


def _valid_link(value: object, host: str | None = None) -> bool:
    if value == "":
        return True
    if not isinstance(value, str) or " " in value:
        return False
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or "." not in (parts.hostname or ""):
        return False
    return host is None or parts.hostname == host


def _frame_durations(image: Image.Image) -> list[int]:
    durations = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()  # Pillow fills in a WebP frame's duration when the frame is decoded
        durations.append(int(image.info.get("duration", 0)))
    return durations


def whatsapp_validation_errors(archive_bytes: bytes) -> list[str]:
    """Every reason WhatsApp would refuse this zip; empty when it would accept it."""
    errors: list[str] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
    except zipfile.BadZipFile as exc:
        return [f"not a zip: {exc}"]
    names = archive.namelist()
    if len(names) != len(set(names)):
        errors.append("duplicate zip entries")
    for name in names:
        if "/" in name or "\\" in name or ".." in name:
            errors.append(f"entry {name!r} is not a plain file name")
    if "contents.json" not in names:
        return [*errors, "no contents.json"]
    contents = json.loads(archive.read("contents.json").decode("utf-8"))
    for field in ("android_play_store_link", "ios_app_store_link"):
        if field not in contents:
            errors.append(f"contents.json lacks {field}")
    if not _valid_link(contents.get("android_play_store_link"), "play.google.com"):
        errors.append("android_play_store_link is not a play.google.com link")
    if not _valid_link(contents.get("ios_app_store_link"), "itunes.apple.com"):
        errors.append("ios_app_store_link is not an itunes.apple.com link")
    packs = contents.get("sticker_packs")
    if not isinstance(packs, list) or len(packs) != 1:
        return [*errors, "sticker_packs must hold exactly one pack"]
    pack = packs[0]
    identifier = pack.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        errors.append("identifier is empty")
    else:
        if len(identifier) >= 128:
            errors.append("identifier has 128 characters or more")
        if not _IDENTIFIER.match(identifier):
            errors.append(f"identifier {identifier!r} has characters outside [a-zA-Z0-9_-. ]")
        if ".." in identifier:
            errors.append("identifier contains ..")
    for field in ("name", "publisher"):
        value = pack.get(field)
        if not isinstance(value, str) or not value.strip():
            errors.append(f"{field} is empty")
        elif len(value) > 128:
            errors.append(f"{field} is longer than 128 characters")
    for field in _LINK_FIELDS:
        if not _valid_link(pack.get(field)):
            errors.append(f"{field} is not an http(s) URL")
    email = pack.get("publisher_email")
    if email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        errors.append("publisher_email is not an email address")
    if not isinstance(pack.get("image_data_version"), str) or not pack["image_data_version"]:
        errors.append("image_data_version is not a non-empty string")
    if not isinstance(pack.get("avoid_cache"), bool):
        errors.append("avoid_cache is not a boolean")
    animated = pack.get("animated_sticker_pack")
    if not isinstance(animated, bool):
        errors.append("animated_sticker_pack is not a boolean")
        animated = False

    tray_name = pack.get("tray_image_file")
    if tray_name not in names:
        errors.append(f"tray image {tray_name!r} is not in the zip")
    else:
        tray = archive.read(tray_name)
        if len(tray) > 50 * KB:
            errors.append(f"tray image has {len(tray)} bytes, over 50 KB")
        with Image.open(io.BytesIO(tray)) as image:
            if image.format != "PNG":
                errors.append(f"tray image is {image.format}, not PNG")
            if not (24 <= image.width <= 512 and 24 <= image.height <= 512):
                errors.append(f"tray image is {image.width}×{image.height}, outside 24–512")
            if getattr(image, "n_frames", 1) != 1:
                errors.append("tray image is animated")

    stickers = pack.get("stickers")
    if not isinstance(stickers, list) or not 3 <= len(stickers) <= 30:
        count = len(stickers) if isinstance(stickers, list) else "no"
        return [*errors, f"sticker count {count} is outside 3–30"]
    referenced = {tray_name}
    kinds = set()
    for number, sticker in enumerate(stickers, 1):
        emojis = sticker.get("emojis")
        if not isinstance(emojis, list) or not 1 <= len(emojis) <= 3:
            errors.append(f"sticker {number}: {emojis!r} is not 1–3 emojis")
        elif not all(isinstance(emoji, str) and emoji.strip() for emoji in emojis):
            errors.append(f"sticker {number}: an emoji is blank")
        text = sticker.get("accessibility_text")
        if text is not None and len(text) > (255 if animated else 125):
            errors.append(f"sticker {number}: accessibility_text has {len(text)} characters")
        file_name = sticker.get("image_file")
        if file_name not in names:
            errors.append(f"sticker {number}: {file_name!r} is not in the zip")
            continue
        referenced.add(file_name)
        data = archive.read(file_name)
        limit = 500 * KB if animated else 100 * KB
        if len(data) > limit:
            errors.append(f"sticker {number}: {len(data)} bytes, over {limit // KB} KB")
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "WEBP":
                errors.append(f"sticker {number}: {image.format}, not WebP")
            if image.size != (512, 512):
                errors.append(f"sticker {number}: {image.size}, not 512×512")
            durations = _frame_durations(image)
        kinds.add(len(durations) > 1)
        if animated:
            if len(durations) <= 1:
                errors.append(f"sticker {number}: static sticker in an animated pack")
            if min(durations) < 8:
                errors.append(f"sticker {number}: a frame shorter than 8 ms")
            if sum(durations) > 10_000:
                errors.append(f"sticker {number}: lasts {sum(durations)} ms, over 10 s")
        elif len(durations) > 1:
            errors.append(f"sticker {number}: animated sticker in a static pack")
    if len(kinds) > 1:
        errors.append("static and animated stickers are mixed")
    junk = set(names) - referenced - _EXTRA_FILES
    if junk:
        errors.append(f"unreferenced files: {sorted(junk)}")
    for extra, field in (("title.txt", "name"), ("author.txt", "publisher")):
        if extra in names and archive.read(extra).decode("utf-8") != pack.get(field):
            errors.append(f"{extra} differs from {field}")
    return errors


def contents_of(export: WhatsAppExport) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive:
        pack: dict[str, Any] = json.loads(archive.read("contents.json"))["sticker_packs"][0]
    return pack


def zip_file(export_data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(export_data)) as archive:
        return archive.read(name)


# --- fixtures and builders ------------------------------------------------------------------------------
@pytest.fixture
def storage(db_settings: Settings) -> LocalStorage:
    return LocalStorage(db_settings.sticker_storage_dir)


@pytest.fixture
def stickers(db: Database, storage: LocalStorage, db_settings: Settings) -> StickerService:
    return StickerService(db, storage, db_settings)


@pytest.fixture
def packs(db: Database, db_settings: Settings) -> PackService:
    return PackService(db, db_settings)


@pytest.fixture
def exporter(db: Database, storage: LocalStorage, db_settings: Settings) -> WhatsAppExporter:
    return WhatsAppExporter(db, storage, db_settings)


def static_source(seed: int) -> bytes:
    return mf.encode_image(mf.graphic_image(240, 200, seed=seed), "PNG")


def animated_sources() -> list[bytes]:
    return [
        mf.animated_gif(5, size=(64, 64), duration=90),
        mf.animated_gif(4, size=(80, 48), duration=[120, 60, 200, 40]),
        mf.video("mp4", seconds=0.8, fps=10),
    ]


def ingest_all(stickers: StickerService, sources: Sequence[bytes], **metadata: Any) -> list[str]:
    return [stickers.ingest(source, owner_jid=OWNER, **metadata).asset.id for source in sources]


def new_pack(packs: PackService, sticker_ids: Sequence[str], name: str = "Meus memes 😂") -> Pack:
    created = packs.create_pack(OWNER, name, publisher="Ana Publisher")
    for sticker_id in sticker_ids:
        packs.add_sticker(OWNER, created.pack_key, sticker_id, emojis="😀")
    return packs.get_by_key(created.pack_key)


def static_pack(stickers: StickerService, packs: PackService, count: int = 3) -> Pack:
    return new_pack(packs, ingest_all(stickers, [static_source(seed) for seed in range(count)]))


def webp_still(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", **options)
    return buffer.getvalue()


def webp_animation(frames: Sequence[Image.Image], durations: Sequence[int], **options: Any) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(
        buffer, "WEBP", save_all=True, append_images=list(frames[1:]), duration=list(durations), **options
    )
    return buffer.getvalue()


def legacy_sticker(
    db: Database, storage: LocalStorage, data: bytes, *, storage_path: str | None = None
) -> str:
    """A sticker as an older tool stored it: the file in storage and a row, no validation at all."""
    sha256 = hashlib.sha256(data).hexdigest()
    key = key_for_digest(sha256)
    storage.put(key, data, "image/webp")
    try:
        info = inspect_webp(data)
        animated, width, height, frames = info.is_animated, info.width, info.height, info.frame_count
    except ValueError:
        animated, width, height, frames = False, None, None, 1
    asset_id = str(uuid.uuid4())
    with db.transaction() as connection:
        connection.execute(
            sticker_asset.insert().values(
                id=asset_id,
                owner_jid=OWNER,
                sha256=sha256,
                is_animated=int(animated),
                width=width,
                height=height,
                size_bytes=len(data),
                frame_count=frames,
                storage_path=storage_path or key,
            )
        )
    return asset_id


def good_legacy_static(seed: int) -> bytes:
    return webp_still(mf.graphic_image(512, 512, seed=seed), quality=80)


def good_legacy_animated(seed: int) -> bytes:
    frames = mf.animation_frames(3 + seed, (512, 512))
    return webp_animation(frames, [100] * len(frames), quality=60)


def expect_refusal(exporter: WhatsAppExporter, pack: Pack, *fragments: str) -> ExportRefused:
    with pytest.raises(ExportRefused) as caught:
        exporter.export(pack)
    error = caught.value
    assert error.code == "EXPORT_INVALID" and error.http_status == 422
    for fragment in fragments:
        assert fragment in error.message, (fragment, error.message)
    assert exporter.problems(pack)[0] == error.message
    return error


# --- the validator itself must be able to fail ---------------------------------------------------------
def _rezip(data: bytes, change: Any) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        files = {name: source.read(name) for name in source.namelist()}
    change(files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, body in files.items():
            target.writestr(name, body)
    return buffer.getvalue()


def test_the_independent_validator_catches_broken_zips(stickers, packs, exporter):
    good = exporter.export(static_pack(stickers, packs)).data
    assert whatsapp_validation_errors(good) == []

    def edit_contents(mutate: Any) -> Any:
        def change(files: dict[str, bytes]) -> None:
            contents = json.loads(files["contents.json"])
            mutate(contents["sticker_packs"][0])
            files["contents.json"] = json.dumps(contents).encode()

        return change

    broken = {
        "4 emojis": edit_contents(lambda pack: pack["stickers"][0].update(emojis=["a", "b", "c", "d"])),
        "marked animated": edit_contents(lambda pack: pack.update(animated_sticker_pack=True)),
        "bad identifier": edit_contents(lambda pack: pack.update(identifier="a/../b")),
        "two stickers": edit_contents(lambda pack: pack.update(stickers=pack["stickers"][:2])),
        "junk file": lambda files: files.update({"notes.txt": b"x"}),
        "missing sticker": lambda files: files.pop("sticker_02.webp"),
        "big tray": lambda files: files.update(
            {"tray.png": mf.encode_image(mf.noise_image(300, 300), "PNG")}
        ),
        "small sticker": lambda files: files.update(
            {"sticker_01.webp": webp_still(mf.graphic_image(256, 256), quality=80)}
        ),
    }
    for label, change in broken.items():
        assert whatsapp_validation_errors(_rezip(good, change)), label


# --- successful exports ----------------------------------------------------------------------------------
def test_static_pack_exports_a_zip_whatsapp_accepts(
    stickers: StickerService, packs: PackService, exporter: WhatsAppExporter, storage: LocalStorage
):
    plain, tagged, many = (
        ingest_all(stickers, [static_source(1)])[0],
        ingest_all(stickers, [static_source(2)], emojis=["🐱"])[0],
        ingest_all(stickers, [static_source(3)])[0],
    )
    created = packs.create_pack(OWNER, "Meus memes 😂", publisher="Ana Publisher")
    long_label = ("a very happy orange cat sitting on a bright red sofa " * 5)[:255]
    packs.add_sticker(OWNER, created.pack_key, plain, accessibility_label=long_label)
    packs.add_sticker(OWNER, created.pack_key, tagged)
    packs.add_sticker(OWNER, created.pack_key, many, emojis="😀 😂 🤣")
    packs.set_fields(OWNER, created.pack_key, cover=2)
    pack = packs.get_by_key(created.pack_key)

    result = exporter.export(pack)
    assert whatsapp_validation_errors(result.data) == []
    assert (result.sticker_count, result.animated, result.version) == (3, False, pack.version)
    assert result.identifier == pack.pack_key and result.filename == f"{pack.pack_key}.wastickers.zip"
    assert result.sha256 == hashlib.sha256(result.data).hexdigest() and result.size == len(result.data)
    contents = contents_of(result)
    assert (contents["name"], contents["publisher"]) == ("Meus memes 😂", "Ana Publisher")
    assert contents["animated_sticker_pack"] is False
    assert contents["image_data_version"] == str(pack.version)
    emojis = [sticker["emojis"] for sticker in contents["stickers"]]
    # No emoji anywhere → the default; none on the item → the sticker's own metadata; else the item's.
    assert emojis == [["🙂"], ["🐱"], ["😀", "😂", "🤣"]]
    label = contents["stickers"][0]["accessibility_text"]
    assert len(label) <= 125 and long_label.startswith(label) and long_label[len(label)] == " "
    assert contents["stickers"][1]["accessibility_text"] == ""
    # The stickers are the stored bytes, unchanged and in pack order.
    order = [item.sticker_id for item in packs.items(pack.id)]
    stored = [storage.get(stickers.get(sticker_id).storage_path) for sticker_id in order]
    in_zip = [zip_file(result.data, sticker["image_file"]) for sticker in contents["stickers"]]
    assert in_zip == stored
    # The tray shows the cover (#2), not another sticker.
    with Image.open(io.BytesIO(zip_file(result.data, contents["tray_image_file"]))) as tray:
        assert tray.size == (96, 96)
        tray_pixels = tray.convert("RGBA")
    differences = []
    for data in stored:
        with Image.open(io.BytesIO(data)) as sticker:
            small = sticker.convert("RGBA").resize((96, 96), Image.Resampling.LANCZOS)
        differences.append(sum(ImageChops.difference(small, tray_pixels).convert("L").tobytes()))
    assert differences.index(min(differences)) == 1 and differences[1] < min(differences[0], differences[2])


def test_animated_pack_from_gif_and_video_exports_as_animated(
    stickers: StickerService, packs: PackService, exporter: WhatsAppExporter
):
    ids = ingest_all(stickers, animated_sources())
    assert all(stickers.get(sticker_id).is_animated for sticker_id in ids)
    pack = new_pack(packs, ids, name="Moving")
    packs.set_fields(OWNER, pack.pack_key, item=1, accessibility_label="word " * 51)
    pack = packs.get_by_key(pack.pack_key)
    result = exporter.export(pack)
    assert whatsapp_validation_errors(result.data) == []
    assert result.animated is True and result.sticker_count == 3
    contents = contents_of(result)
    assert contents["animated_sticker_pack"] is True
    assert 125 < len(contents["stickers"][0]["accessibility_text"]) <= 255
    with Image.open(io.BytesIO(zip_file(result.data, "tray.png"))) as tray:
        assert tray.format == "PNG" and getattr(tray, "n_frames", 1) == 1


def test_same_version_gives_identical_bytes_and_changes_give_a_new_image_data_version(
    stickers: StickerService, packs: PackService, db: Database, storage: LocalStorage, db_settings: Settings
):
    pack = static_pack(stickers, packs)
    first = WhatsAppExporter(db, storage, db_settings).export(pack)
    second = WhatsAppExporter(db, storage, db_settings).export(packs.get_by_key(pack.pack_key))
    assert first.data == second.data and first.sha256 == second.sha256
    with zipfile.ZipFile(io.BytesIO(first.data)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}

    packs.set_fields(OWNER, pack.pack_key, item=2, emojis="🐶")
    changed = WhatsAppExporter(db, storage, db_settings).export(pack)  # a stale Pack object is re-read
    assert changed.version == pack.version + 1
    assert contents_of(changed)["image_data_version"] != contents_of(first)["image_data_version"]
    assert changed.data != first.data and contents_of(changed)["stickers"][1]["emojis"] == ["🐶"]
    packs.reorder(OWNER, pack.pack_key, "3")
    reordered = WhatsAppExporter(db, storage, db_settings).export(pack)
    assert int(reordered.image_data_version) == changed.version + 1
    assert zip_file(reordered.data, "sticker_01.webp") == zip_file(first.data, "sticker_03.webp")


def test_an_export_never_mixes_two_versions(
    stickers: StickerService, packs: PackService, exporter: WhatsAppExporter, monkeypatch
):
    pack = static_pack(stickers, packs)
    real_item_rows = pack_repository.item_rows
    edited = False

    def item_rows_while_someone_edits(connection: Any, pack_id: str) -> list[dict[str, Any]]:
        nonlocal edited
        if not edited:  # another writer commits after the export read the pack row, before its items
            edited = True  # set first: the edit itself reads items through this same function
            packs.set_fields(OWNER, pack.pack_key, item=1, emojis="🐱")
        return real_item_rows(connection, pack_id)

    monkeypatch.setattr(pack_repository, "item_rows", item_rows_while_someone_edits)
    result = exporter.export(pack)
    # SQLite and MySQL read one snapshot (the old version); PostgreSQL's READ COMMITTED sees the new
    # items, so the exporter must notice the version moved and read again. Either way: one version.
    assert result.version in (pack.version, pack.version + 1)
    expected = ["🐱"] if result.version == pack.version + 1 else ["😀"]
    assert contents_of(result)["stickers"][0]["emojis"] == expected
    assert contents_of(result)["image_data_version"] == str(result.version)


# --- refusals --------------------------------------------------------------------------------------------
def test_two_stickers_are_refused(stickers: StickerService, packs: PackService, exporter: WhatsAppExporter):
    pack = static_pack(stickers, packs, count=2)
    error = expect_refusal(exporter, pack, "WhatsApp needs 3 to 30 stickers", "has 2", "add 1 more")
    assert "omnizap pack add" in error.message and OWNER not in error.message
    assert error.details["rule"] == "sticker_count" and exporter.problems(pack) == [error.message]


def test_more_than_thirty_stickers_are_refused(
    db: Database, storage: LocalStorage, db_settings: Settings, stickers: StickerService
):
    roomy = db_settings.model_copy(update={"sticker_pack_max_items": 40})
    packs = PackService(db, roomy)
    colours = [(index * 8, 255 - index * 8, 90, 255) for index in range(31)]
    ids = ingest_all(stickers, [mf.png_bytes(32, 32, colour) for colour in colours])
    pack = new_pack(packs, ids)
    assert pack.sticker_count == 31
    error = expect_refusal(
        WhatsAppExporter(db, storage, roomy), pack, "3 to 30 stickers", "has 31", "take 1 out"
    )
    assert "omnizap pack remove" in error.message


def test_static_and_animated_stickers_are_never_mixed(
    stickers: StickerService, packs: PackService, exporter: WhatsAppExporter
):
    still = ingest_all(stickers, [static_source(seed) for seed in range(3)])
    moving = ingest_all(stickers, animated_sources()[:2])
    pack = new_pack(packs, [still[0], moving[0], still[1], still[2], moving[1]])
    error = expect_refusal(exporter, pack, "all static or all animated", "2 animated and 3 static", "#2, #5")
    assert error.details["rule"] == "mixed_pack"


def test_a_sticker_whose_file_is_missing_is_refused_by_position(
    stickers: StickerService, packs: PackService, exporter: WhatsAppExporter, storage: LocalStorage
):
    pack = static_pack(stickers, packs, count=4)
    second = packs.items(pack.id)[1]
    storage.delete(stickers.get(second.sticker_id).storage_path)
    error = expect_refusal(exporter, pack, "Sticker #2", "missing from storage", "omnizap sticker import")
    assert second.sticker_id in error.message and "/" not in error.message.split("missing")[0]
    assert exporter.problems(pack) == [error.message]


def _noise_frames(count: int) -> list[Image.Image]:
    return [mf.noise_image(512, 512, seed=seed).convert("RGBA") for seed in range(count)]


LEGACY_CASES = {
    "wrong size": (
        lambda: webp_still(mf.graphic_image(300, 300), quality=80),
        False,
        ("Sticker #3 is 300×300", "exactly 512×512"),
    ),
    "static over 100 KB": (
        lambda: webp_still(mf.noise_image(512, 512), quality=100, method=0),
        False,
        ("Sticker #3 has", "static sticker at most 100 KB"),
    ),
    "animated over 500 KB": (
        lambda: webp_animation(_noise_frames(3), [100, 100, 100], quality=100, method=0),
        True,
        ("Sticker #3 has", "animated sticker at most 500 KB"),
    ),
    "frame under 8 ms": (
        lambda: webp_animation(mf.animation_frames(3, (512, 512)), [5, 100, 100], quality=60),
        True,
        ("Sticker #3: frame 1 lasts 5 ms", "at least 8 ms"),
    ),
    "longer than 10 s": (
        lambda: webp_animation(mf.animation_frames(3, (512, 512)), [4000, 4000, 4000], quality=60),
        True,
        ("Sticker #3 lasts 12.00 s", "at most 10 s"),
    ),
    "not a WebP": (lambda: mf.png_bytes(512, 512), False, ("Sticker #3", "not a readable WebP")),
}


@pytest.mark.parametrize("case", sorted(LEGACY_CASES))
def test_legacy_stickers_that_break_a_rule_are_refused(
    case: str, db: Database, storage: LocalStorage, packs: PackService, exporter: WhatsAppExporter
):
    make_bad, animated, fragments = LEGACY_CASES[case]
    make_good = good_legacy_animated if animated else good_legacy_static
    ids = [legacy_sticker(db, storage, make_good(seed)) for seed in range(2)]
    ids.append(legacy_sticker(db, storage, make_bad()))
    pack = new_pack(packs, ids)
    error = expect_refusal(exporter, pack, *fragments)
    assert error.details["position"] == 3
    assert exporter.problems(pack) == [error.message]  # the two good stickers pass every rule


def test_a_legacy_server_path_counts_as_a_missing_file(
    db: Database, storage: LocalStorage, packs: PackService, exporter: WhatsAppExporter
):
    ids = [legacy_sticker(db, storage, good_legacy_static(seed)) for seed in range(2)]
    ids.append(legacy_sticker(db, storage, good_legacy_static(7), storage_path="/data/stickers/x/a.webp"))
    pack = new_pack(packs, ids)
    expect_refusal(exporter, pack, "Sticker #3", "missing from storage")


def test_problems_lists_every_broken_rule_and_export_reports_the_first(
    db: Database, storage: LocalStorage, packs: PackService, db_settings: Settings
):
    ids = [
        legacy_sticker(db, storage, webp_still(mf.graphic_image(300, 300), quality=80)),
        legacy_sticker(db, storage, good_legacy_animated(0)),
    ]
    pack = new_pack(packs, ids)
    picky = db_settings.model_copy(
        update={
            "sticker_export_publisher_website": "ftp://example.org",
            "sticker_export_android_play_store_link": "https://example.org/app",
            "sticker_export_publisher_email": "not-an-email",
        }
    )
    exporter = WhatsAppExporter(db, storage, picky)
    problems = exporter.problems(pack)
    assert len(problems) == 6, problems
    assert "3 to 30 stickers" in problems[0]
    assert "Sticker #1 is 300×300" in problems[1]
    assert "all static or all animated" in problems[2]
    assert "STICKER_EXPORT_PUBLISHER_WEBSITE must start with http:// or https://" in problems[3]
    assert "STICKER_EXPORT_ANDROID_PLAY_STORE_LINK only on play.google.com" in problems[4]
    assert "STICKER_EXPORT_PUBLISHER_EMAIL" in problems[5]
    error = expect_refusal(exporter, pack, "3 to 30 stickers")
    assert error.details["problems"] == problems


def test_without_a_default_emoji_a_sticker_without_emojis_is_refused(
    db: Database, storage: LocalStorage, db_settings: Settings, stickers: StickerService, packs: PackService
):
    ids = ingest_all(stickers, [static_source(seed) for seed in range(3)])
    created = packs.create_pack(OWNER, "Bare")
    for sticker_id in ids:
        packs.add_sticker(OWNER, created.pack_key, sticker_id, emojis="😀" if sticker_id != ids[1] else None)
    pack = packs.get_by_key(created.pack_key)
    strict = db_settings.model_copy(update={"sticker_export_default_emoji": ""})
    error = expect_refusal(WhatsAppExporter(db, storage, strict), pack, "Sticker #2 has no emoji", "1 to 3")
    assert "--item 2 --emojis" in error.message and "STICKER_EXPORT_DEFAULT_EMOJI" in error.message


def test_publisher_links_from_settings_reach_contents_json(
    db: Database, storage: LocalStorage, db_settings: Settings, stickers: StickerService, packs: PackService
):
    pack = static_pack(stickers, packs)
    links = {
        "sticker_export_publisher_email": "stickers@example.org",
        "sticker_export_publisher_website": "https://stickers.example.org/",
        "sticker_export_privacy_policy_website": "https://stickers.example.org/privacy",
        "sticker_export_license_agreement_website": "http://stickers.example.org/license",
        "sticker_export_android_play_store_link": "https://play.google.com/store/apps/details?id=x.y",
        "sticker_export_ios_app_store_link": "https://itunes.apple.com/app/id123",
    }
    result = WhatsAppExporter(db, storage, db_settings.model_copy(update=links)).export(pack)
    assert whatsapp_validation_errors(result.data) == []
    contents = contents_of(result)
    assert contents["publisher_email"] == "stickers@example.org"
    assert contents["privacy_policy_website"] == links["sticker_export_privacy_policy_website"]
    top = json.loads(zip_file(result.data, "contents.json"))
    assert top["ios_app_store_link"] == links["sticker_export_ios_app_store_link"]


def test_a_deleted_pack_is_refused(stickers: StickerService, packs: PackService, exporter: WhatsAppExporter):
    pack = static_pack(stickers, packs)
    deleted = packs.delete(OWNER, pack.pack_key)
    error = expect_refusal(exporter, deleted, "was deleted")
    assert error.details["rule"] == "pack_deleted"
    expect_refusal(exporter, pack, "was deleted")  # a Pack read before the delete is re-read


def test_an_unknown_pack_is_not_found(exporter: WhatsAppExporter, stickers, packs):
    pack = static_pack(stickers, packs)
    ghost = dataclasses.replace(pack, id=str(uuid.uuid4()))
    with pytest.raises(PackNotFound):
        exporter.export(ghost)


# --- pure helpers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("meus-memes-k3x9q", "meus-memes-k3x9q"),
        ("../../etc/passwd", "._._etc_passwd"),
        ("a..b...c", "a.b.c"),
        ("Olá 😂 mundo", "Ol_ _ mundo"),
        ("x" * 300, "x" * 127),
        ("", "fallback-id"),
        ("\x00\x1b", "__"),
    ],
)
def test_identifier_keeps_to_whatsapps_characters(key: str, expected: str):
    identifier = whatsapp_identifier(key, fallback="fallback-id")
    assert identifier == expected
    assert re.fullmatch(r"[a-zA-Z0-9_\-. ]+", identifier) and ".." not in identifier and len(identifier) < 128
    assert re.fullmatch(r"[a-z0-9_-]+\.wastickers\.zip", export_filename(identifier))


def test_accessibility_text_is_cut_on_a_word_boundary():
    assert cut_on_word_boundary("short", 125) == "short"
    text = "one two three four"
    assert cut_on_word_boundary(text, 9) == "one two"
    assert cut_on_word_boundary(text, 7) == "one two"
    assert cut_on_word_boundary("x" * 300, 125) == "x" * 125
    assert cut_on_word_boundary("alpha, beta gamma", 12) == "alpha, beta"


def test_emoji_lists_are_cleaned_and_cut_to_three():
    assert clean_emoji_list(["😀", " 😂 ", "😀", "", "🤣", "😅"]) == ["😀", "😂", "🤣"]
    assert (
        clean_emoji_list("😀") == [] and clean_emoji_list(None) == [] and clean_emoji_list([1, "a b"]) == []
    )


@pytest.mark.parametrize(
    ("value", "host", "ok"),
    [
        ("", None, True),
        ("https://example.org/x?y=1", None, True),
        ("http://sub.example.co.uk", None, True),
        ("javascript:alert(1)", None, False),
        ("https://", None, False),
        ("https://exa mple.org", None, False),
        ("https://localhost/", None, False),
        ("https://play.google.com/store/apps/details?id=a", "play.google.com", True),
        ("https://evil.example/play.google.com", "play.google.com", False),
    ],
)
def test_website_fields_must_be_http_urls(value: str, host: str | None, ok: bool):
    assert (website_problem(value, "SETTING", host) is None) is ok


# --- the CLI -----------------------------------------------------------------------------------------------
@pytest.fixture
def run(db_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """Invoke `omnizap pack export …` against the engine under test, from an empty working folder."""
    monkeypatch.setenv("DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("STICKER_STORAGE_DIR", str(db_settings.sticker_storage_dir))
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    reset_settings_cache()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["pack", "export", *args], catch_exceptions=False)

    yield invoke
    reset_settings_cache()


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_cli_writes_the_zip_and_prints_json(
    run, stickers: StickerService, packs: PackService, exporter: WhatsAppExporter, tmp_path: Path
):
    pack = static_pack(stickers, packs)
    target = tmp_path / "out.zip"
    result = run(pack.pack_key, "--format", "whatsapp", "-o", str(target))
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert line["path"] == str(target.resolve()) and line["size"] == target.stat().st_size
    assert (line["sticker_count"], line["animated"], line["identifier"]) == (3, False, pack.pack_key)
    assert line["version"] == pack.version
    assert target.read_bytes() == exporter.export(pack).data
    assert whatsapp_validation_errors(target.read_bytes()) == []
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert files_in(tmp_path / "work") == []  # no temp files anywhere

    default = run(pack.pack_key.upper())  # keys are case-insensitive; default name in the current folder
    assert default.exit_code == 0, default.output
    assert files_in(tmp_path / "work") == [f"{pack.pack_key}.wastickers.zip"]
    written = tmp_path / "work" / f"{pack.pack_key}.wastickers.zip"
    assert json.loads(default.stdout)["path"] == str(written.resolve())

    folder = tmp_path / "exports"
    folder.mkdir()
    by_owner = run(pack.name, "--owner", OWNER, "-o", str(folder))
    assert by_owner.exit_code == 0, by_owner.output
    assert files_in(folder) == [f"{pack.pack_key}.wastickers.zip"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def refused(result: Result, code: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("error: ") and line.endswith(f"[{code}]"), line
    assert "Traceback" not in result.output
    return line


def test_cli_refusal_exits_1_and_writes_nothing(run, stickers: StickerService, packs: PackService, tmp_path):
    pack = static_pack(stickers, packs, count=2)
    target = tmp_path / "out.zip"
    line = refused(run(pack.pack_key, "-o", str(target)), "EXPORT_INVALID")
    assert "WhatsApp needs 3 to 30 stickers" in line and "has 2" in line
    assert not target.exists() and files_in(tmp_path / "work") == []

    earlier = tmp_path / "earlier.zip"
    earlier.write_bytes(b"an earlier export")
    refused(run(pack.pack_key, "-o", str(earlier)), "EXPORT_INVALID")
    assert earlier.read_bytes() == b"an earlier export"  # a refusal never touches an existing file

    deleted = packs.delete(OWNER, pack.pack_key)
    assert "was deleted" in refused(run(deleted.pack_key), "EXPORT_INVALID")
    assert "not found" in refused(run(deleted.pack_key, "--owner", OWNER), "PACK_NOT_FOUND")
    assert "No pack has the key" in refused(run("nope-abcde"), "PACK_NOT_FOUND")


def test_cli_failed_write_leaves_no_partial_file(
    run, stickers: StickerService, packs: PackService, tmp_path: Path, monkeypatch
):
    pack = static_pack(stickers, packs)
    folder = tmp_path / "exports"
    folder.mkdir()

    def disk_full(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    result = run(pack.pack_key, "-o", str(folder / "pack.zip"))
    assert result.exit_code == 1 and "No space left on device" in result.stderr
    assert files_in(folder) == []


def test_cli_rejects_bad_format_and_missing_folders(run, tmp_path: Path):
    wrong = run("any-abcde", "--format", "telegram")
    assert (
        wrong.exit_code == 2 and "Invalid value for '--format'" in wrong.stderr and "whatsapp" in wrong.stderr
    )
    missing = run("any-abcde", "-o", str(tmp_path / "no" / "such" / "dir" / "x.zip"))
    assert (
        missing.exit_code == 2 and "does not exist" in missing.stderr and "create it first" in missing.stderr
    )
    slash = run("any-abcde", "-o", str(tmp_path / "not-yet") + "/")
    assert slash.exit_code == 2 and "does not exist" in slash.stderr
    assert not (tmp_path / "not-yet").exists() and files_in(tmp_path / "work") == []


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("", "INVALID_INPUT"),
        ("   ", "INVALID_INPUT"),
        ("k" * 10_240, "PACK_NOT_FOUND"),
        ("a\x00b", "PACK_NOT_FOUND"),
        ("\x1b[31mred\x1b[0m", "PACK_NOT_FOUND"),
        ("pack\nkey", "PACK_NOT_FOUND"),
        ("../../etc/passwd", "PACK_NOT_FOUND"),
        ("'; DROP TABLE sticker_pack;--", "PACK_NOT_FOUND"),
    ],
)
def test_cli_hostile_keys_get_clear_errors(run, key: str, code: str, tmp_path: Path):
    line = refused(run(key), code)
    assert "\x1b" not in line and "\x00" not in line and len(line) < 400
    assert files_in(tmp_path / "work") == []
    with_owner = run(key, "--owner", OWNER)
    assert with_owner.exit_code == 1 and "Traceback" not in with_owner.output
    assert "\x1b" not in with_owner.stderr


def test_cli_export_has_help():
    result = CliRunner().invoke(cli, ["pack", "export", "--help"])
    assert result.exit_code == 0
    for option in ("--format", "--output", "--owner", "whatsapp"):
        assert option in result.stdout


def test_exporter_module_does_not_import_outer_layers():
    source = Path(export_module.__file__).read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from|import) omnizap\.(cli|catalog|web)", source, re.MULTILINE)


def test_every_demo_pack_exports_a_zip_the_independent_validator_accepts(
    db: Database, storage: LocalStorage, db_settings: Settings, exporter: WhatsAppExporter
):
    """The acceptance check of the core issue: demo packs (static and animated) pass every rule."""
    from omnizap.catalog.demo.seeder import DemoSeeder, SeedOptions

    DemoSeeder(db, storage, db_settings).seed(SeedOptions(packs=10, max_stickers=5, seed=11))
    with db.read() as connection:
        pack_ids = [row[0] for row in connection.execute(sa.select(sticker_pack.c.id))]
    packs = PackService(db, db_settings)
    animated_seen = set()
    for pack_id in pack_ids:
        with db.read() as connection:
            key = connection.execute(
                sa.select(sticker_pack.c.pack_key).where(sticker_pack.c.id == pack_id)
            ).scalar_one()
        export = exporter.export(packs.get_by_key(key))
        assert whatsapp_validation_errors(export.data) == [], key
        animated_seen.add(export.animated)
    assert len(pack_ids) == 10 and animated_seen == {True, False}  # both kinds were checked
