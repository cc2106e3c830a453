"""Conversion of every accepted input into a WhatsApp-valid sticker, and refusal of hostile input."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import media_factory as mf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from omnizap.core.errors import InvalidInput
from omnizap.core.stickers import media
from omnizap.core.stickers.errors import MediaRejected
from omnizap.core.stickers.exif import (
    StickerMetadata,
    build_sticker_exif,
    parse_sticker_exif,
    read_sticker_metadata,
    sticker_exif_size,
)
from omnizap.core.stickers.formats import SourceFormat, sniff_format
from omnizap.core.stickers.limits import IngestLimits
from omnizap.core.stickers.media import (
    FAST_STATIC_METHOD,
    LOSSY_METHOD,
    STATIC_QUALITIES,
    ConvertedSticker,
    _highest_fitting,
    convert_to_sticker,
    fitted_size,
    retime,
    validate_whatsapp_sticker,
)
from omnizap.core.stickers.webp import exif_overhead, inspect_webp, split_chunks, with_exif

METADATA = StickerMetadata("Test Pack", "Tester", ("😂",))
KB = 1024


def convert(data: bytes, limits: IngestLimits | None = None, **kwargs: object) -> ConvertedSticker:
    return convert_to_sticker(data, metadata=METADATA, limits=limits, **kwargs)  # type: ignore[arg-type]


def assert_whatsapp_valid(sticker: ConvertedSticker, limits: IngestLimits | None = None) -> Image.Image:
    """Check every rule of WhatsApp's validator from the bytes, and that every frame decodes."""
    limits = limits or IngestLimits()
    data = sticker.data
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    info = inspect_webp(data)
    assert (info.width, info.height) == (512, 512)
    assert info.is_animated == sticker.is_animated
    if info.is_animated:
        assert len(data) <= min(500 * KB, limits.animated_max_bytes)
        assert len(info.frame_durations_ms) >= 2
        assert min(info.frame_durations_ms) >= 8
        assert sum(info.frame_durations_ms) <= 10_000
        assert sticker.duration_ms == sum(info.frame_durations_ms)
    else:
        assert len(data) <= min(100 * KB, limits.static_max_bytes)
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP" and image.size == (512, 512)
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()
    image.seek(0)
    return image


# --- every accepted input -------------------------------------------------------------------------

INPUTS: dict[str, tuple[Callable[[], bytes], SourceFormat, bool]] = {
    "png": (lambda: mf.encode_image(mf.graphic_image(300, 200), "PNG"), SourceFormat.PNG, False),
    "png-palette": (
        lambda: mf.encode_image(mf.graphic_image(120, 120).convert("P"), "PNG"),
        SourceFormat.PNG,
        False,
    ),
    "jpeg": (lambda: mf.encode_image(mf.photo_like_image(640, 480), "JPEG"), SourceFormat.JPEG, False),
    "webp-lossy": (lambda: mf.encode_image(mf.photo_like_image(200, 300), "WEBP"), SourceFormat.WEBP, False),
    "webp-lossless": (
        lambda: mf.encode_image(mf.graphic_image(256, 256), "WEBP", lossless=True),
        SourceFormat.WEBP,
        False,
    ),
    "webp-animated": (lambda: mf.animated_webp(5), SourceFormat.WEBP, True),
    "gif-animated": (lambda: mf.animated_gif(5), SourceFormat.GIF, True),
    "gif-single-frame": (lambda: mf.animated_gif(1), SourceFormat.GIF, False),
    "png-animated": (lambda: mf.animated_png(4), SourceFormat.PNG, True),
    "mp4": (lambda: mf.video("mp4", seconds=0.8), SourceFormat.MP4, True),
    "webm": (lambda: mf.video("webm", seconds=0.8), SourceFormat.WEBM, True),
    "mp4-single-frame": (lambda: mf.video("mp4", seconds=0.1), SourceFormat.MP4, False),
}


@pytest.mark.parametrize("name", list(INPUTS))
def test_every_input_format_becomes_a_valid_sticker(name: str) -> None:
    make, expected_format, animated = INPUTS[name]
    sticker = convert(make())
    assert sticker.source_format is expected_format
    assert sticker.is_animated is animated
    assert_whatsapp_valid(sticker)
    assert read_sticker_metadata(sticker.data)["sticker-pack-name"] == "Test Pack"


def test_format_is_detected_by_magic_bytes_not_by_name() -> None:
    assert sniff_format(mf.png_bytes()) is SourceFormat.PNG
    assert sniff_format(mf.encode_image(mf.solid_image(8, 8), "JPEG")) is SourceFormat.JPEG
    assert sniff_format(mf.animated_gif(2)) is SourceFormat.GIF
    assert sniff_format(mf.video("webm", seconds=0.1)) is SourceFormat.WEBM
    assert sniff_format(mf.video("mp4", seconds=0.1)) is SourceFormat.MP4


def test_wide_picture_keeps_aspect_with_transparent_rows_top_and_bottom() -> None:
    sticker = convert(mf.png_bytes(400, 100, (255, 0, 0, 255)))
    image = assert_whatsapp_valid(sticker).convert("RGBA")
    assert image.getchannel("A").getbbox() == (0, 192, 512, 320)  # 512×128 band, centred
    assert image.getpixel((256, 10))[3] == 0
    assert image.getpixel((256, 500))[3] == 0
    red, green, blue, alpha = image.getpixel((256, 256))
    assert alpha == 255 and red > 240 and green < 15 and blue < 15


def test_tall_photo_keeps_aspect_with_transparent_columns() -> None:
    sticker = convert(mf.encode_image(mf.photo_like_image(150, 600), "JPEG"))
    image = assert_whatsapp_valid(sticker).convert("RGBA")
    assert image.getchannel("A").getbbox() == (192, 0, 320, 512)


def test_transparency_of_the_source_is_kept() -> None:
    source = mf.solid_image(200, 200, (0, 0, 0, 0))
    source.paste((0, 128, 255, 255), (50, 50, 150, 150))
    image = assert_whatsapp_valid(convert(mf.encode_image(source, "PNG"))).convert("RGBA")
    assert image.getpixel((256, 256))[3] == 255
    assert image.getpixel((100, 100))[3] == 0  # inside the picture, but transparent in the source


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = Image.new("I;16", (64, 64), 32768)
    image = assert_whatsapp_valid(convert(mf.encode_image(grey, "PNG"))).convert("RGBA")
    red, _, _, alpha = image.getpixel((256, 256))
    assert alpha == 255 and 110 < red < 145


def test_cmyk_jpeg_converts() -> None:
    assert_whatsapp_valid(convert(mf.encode_image(mf.photo_like_image(80, 80).convert("CMYK"), "JPEG")))


def test_jpeg_orientation_tag_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to show
    data = mf.encode_image(mf.photo_like_image(400, 100), "JPEG", exif=exif)
    image = assert_whatsapp_valid(convert(data)).convert("RGBA")
    assert image.getchannel("A").getbbox() == (192, 0, 320, 512)


def test_noisy_photo_still_fits_100_kb() -> None:
    sticker = convert(mf.encode_image(mf.noise_image(600, 600), "PNG"))
    assert_whatsapp_valid(sticker)
    assert len(sticker.data) <= 100 * KB
    assert sticker.encoding.startswith("lossy")


def test_graphics_are_encoded_lossless() -> None:
    sticker = convert(mf.encode_image(mf.graphic_image(512, 512), "PNG"))
    assert sticker.encoding == "lossless"
    source = mf.graphic_image(512, 512)
    decoded = Image.open(io.BytesIO(sticker.data)).convert("RGBA")
    # Lossless: every visible pixel is exactly the source pixel.
    for point in [(256, 256), (100, 300), (400, 120)]:
        if source.getpixel(point)[3]:
            assert decoded.getpixel(point) == source.getpixel(point)


def test_a_stricter_pack_byte_limit_is_met() -> None:
    limits = IngestLimits(static_max_bytes=20 * KB)
    sticker = convert(mf.encode_image(mf.noise_image(300, 300), "PNG"), limits)
    assert len(sticker.data) <= 20 * KB
    assert_whatsapp_valid(sticker, limits)


def test_noisy_animation_meets_a_tight_budget_by_lowering_quality_and_fps() -> None:
    frames = [mf.noise_image(128, 128, seed).convert("RGBA") for seed in range(8)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=70, loop=0)
    limits = IngestLimits(animated_max_bytes=60 * KB)
    sticker = convert(buffer.getvalue(), limits)
    assert sticker.is_animated
    assert len(sticker.data) <= 60 * KB
    assert_whatsapp_valid(sticker, limits)
    assert sticker.frame_count < 8 or "q75" not in sticker.encoding  # it had to give something up


def test_impossible_budget_is_refused_with_a_specific_error() -> None:
    with pytest.raises(MediaRejected) as caught:
        convert(mf.encode_image(mf.noise_image(256, 256), "PNG"), IngestLimits(static_max_bytes=1024))
    assert caught.value.code == "STICKER_TOO_COMPLEX"
    assert "KB" in caught.value.message


# --- cost of a static conversion (docs/benchmarks.md, Ingest) --------------------------------------


def test_quality_search_gives_the_plain_answer_with_few_encodes() -> None:
    """Sizes falling with quality: the answer is the highest fitting quality, for every budget."""
    size_at = {quality: 1000 + quality * 50 for quality in STATIC_QUALITIES}
    for budget in range(0, 6000, 25):
        encoded: list[int] = []

        def encode(quality: int, encoded: list[int] = encoded) -> bytes:
            encoded.append(quality)
            return bytes(size_at[quality])

        found = _highest_fitting(STATIC_QUALITIES, encode, budget)
        fitting = [quality for quality in STATIC_QUALITIES if size_at[quality] <= budget]
        assert (found[0] if found else None) == (fitting[0] if fitting else None)
        if found:
            assert len(found[1]) == size_at[found[0]]
        assert len(encoded) <= 6 and len(set(encoded)) == len(encoded)
        for steps_down in (1, 2):  # each of the common steps down costs one more encode
            if fitting[:1] == [STATIC_QUALITIES[steps_down]]:
                assert encoded == list(STATIC_QUALITIES[: steps_down + 1])
        if fitting and size_at[STATIC_QUALITIES[0]] > 1.5 * budget:
            assert len(encoded) <= 5  # a far miss is bisected, not stepped down one by one


def spy_on_static_encodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, object], int]]:
    calls: list[tuple[dict[str, object], int]] = []
    original = media._webp_still

    def spying(image: Image.Image, **options: object) -> bytes:
        data = original(image, **options)
        calls.append((options, len(data)))
        return data

    monkeypatch.setattr(media, "_webp_still", spying)
    return calls


def test_a_photo_takes_one_fast_encode(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = spy_on_static_encodes(monkeypatch)
    sticker = convert(mf.encode_image(mf.photo_like_image(1600, 1200), "JPEG", quality=90))
    assert [options for options, _ in calls] == [
        {"quality": STATIC_QUALITIES[0], "method": FAST_STATIC_METHOD}
    ]
    assert sticker.encoding == f"lossy q{STATIC_QUALITIES[0]}"
    assert_whatsapp_valid(sticker)


def test_a_picture_the_fast_encode_cannot_fit_gets_the_best_quality_of_the_full_ladder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Noise defeats the fast mode; the answer is then the highest method-4 quality that fits."""
    calls = spy_on_static_encodes(monkeypatch)
    budget = IngestLimits().static_max_bytes - exif_overhead(sticker_exif_size(METADATA), simple_format=True)
    sticker = convert(mf.encode_image(mf.noise_image(600, 600), "PNG"))
    assert calls[0][0]["method"] == FAST_STATIC_METHOD and calls[0][1] > budget
    by_quality = {
        options["quality"]: size for options, size in calls[1:] if options["method"] == LOSSY_METHOD
    }
    chosen = int(sticker.encoding.removeprefix("lossy q"))
    assert by_quality[chosen] <= budget
    higher = STATIC_QUALITIES[STATIC_QUALITIES.index(chosen) - 1]
    assert by_quality[higher] > budget  # the next quality up did not fit
    assert_whatsapp_valid(sticker)


def test_opaque_photo_is_resized_without_a_premultiplied_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow resizes RGBA through premultiplied RGBa; an opaque photo needs no such round trip."""
    data = mf.encode_image(mf.photo_like_image(900, 600), "JPEG")
    reference = Image.open(io.BytesIO(data)).convert("RGBA").resize((512, 341), Image.Resampling.LANCZOS)
    conversions: list[str] = []
    original_convert = Image.Image.convert

    def spying_convert(
        image: Image.Image, mode: str | None = None, *args: object, **kwargs: object
    ) -> Image.Image:
        conversions.append(str(mode))
        return original_convert(image, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "convert", spying_convert)
    sticker = convert(data)
    monkeypatch.undo()
    assert "RGBa" not in conversions
    decoded = Image.open(io.BytesIO(sticker.data)).convert("RGBA").crop((0, 85, 512, 426))
    # Same picture as a plain RGBA resize would give, up to the lossy encode.
    error = sum(abs(a - b) for a, b in zip(decoded.tobytes(), reference.tobytes(), strict=True))
    assert error / len(reference.tobytes()) < 3


# --- timing of animations -------------------------------------------------------------------------


def test_long_video_is_cut_to_ten_seconds() -> None:
    sticker = convert(mf.video("mp4", seconds=13, fps=4, size=(64, 48)))
    assert_whatsapp_valid(sticker)
    assert 9_000 <= sticker.duration_ms <= 10_000


def test_video_cut_follows_the_setting() -> None:
    sticker = convert(mf.video("webm", seconds=5, fps=4, size=(64, 48)), IngestLimits(max_video_seconds=2))
    assert_whatsapp_valid(sticker)
    assert sticker.duration_ms <= 2_000


def test_long_gif_is_cut_to_ten_seconds() -> None:
    sticker = convert(mf.animated_gif(30, size=(32, 32), duration=500))  # 15 s
    assert_whatsapp_valid(sticker)
    assert sticker.duration_ms == 10_000


def test_gif_without_delays_plays_at_browser_speed() -> None:
    sticker = convert(mf.animated_gif(4, size=(32, 32), duration=0))
    assert_whatsapp_valid(sticker)
    assert inspect_webp(sticker.data).frame_durations_ms == (100, 100, 100, 100)


def test_fast_animation_is_slowed_to_at_most_15_fps_keeping_its_length() -> None:
    sticker = convert(mf.animated_webp(40, size=(32, 32), duration=20))  # 50 fps, 800 ms
    info = inspect_webp(sticker.data)
    assert_whatsapp_valid(sticker)
    assert min(info.frame_durations_ms) >= 67
    assert sum(info.frame_durations_ms) == 800


def test_rotated_phone_video_is_shown_upright() -> None:
    data = mf.video("mp4", seconds=0.2, size=(96, 64), rotation=90, frame_maker=mf.split_colour_frames)
    image = assert_whatsapp_valid(convert(data)).convert("RGBA")
    assert image.getchannel("A").getbbox() == (85, 0, 426, 512)  # now portrait: 341×512
    top, bottom = image.getpixel((256, 40)), image.getpixel((256, 470))
    assert top[2] > 200 and top[0] < 60  # right half (blue) turned to the top
    assert bottom[0] > 200 and bottom[2] < 60  # left half (red) to the bottom


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=60),
    tail=st.integers(min_value=1, max_value=400),
    min_step=st.integers(min_value=8, max_value=250),
)
def test_retime_keeps_total_length_and_minimum_frame_duration(
    gaps: list[int], tail: int, min_step: int
) -> None:
    starts = []
    elapsed = 0
    for gap in gaps:
        starts.append(elapsed)
        elapsed += gap
    total = max(starts) + tail
    timeline = retime(starts, total, min_step)
    indexes = [index for index, _ in timeline]
    durations = [duration for _, duration in timeline]
    assert indexes == sorted(set(indexes)) and indexes[0] == 0
    assert sum(durations) == total
    if len(timeline) > 1:
        assert min(durations) >= min_step


def test_fitted_size_keeps_aspect_and_one_side_at_512() -> None:
    assert fitted_size(400, 100) == (512, 128)
    assert fitted_size(100, 400) == (128, 512)
    assert fitted_size(10_000, 3) == (512, 1)
    assert fitted_size(16, 16) == (512, 512)


# --- determinism and metadata ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["png", "jpeg", "gif-animated", "mp4"])
def test_same_input_gives_identical_bytes(name: str) -> None:
    data = INPUTS[name][0]()
    assert convert(data).data == convert(data).data


def test_metadata_round_trips_through_pillow_and_the_riff_chunk() -> None:
    sticker = convert(mf.png_bytes(50, 50))
    document = read_sticker_metadata(sticker.data)
    assert document == {
        "sticker-pack-id": document["sticker-pack-id"],
        "sticker-pack-name": "Test Pack",
        "sticker-pack-publisher": "Tester",
        "emojis": ["😂"],
    }
    assert document["sticker-pack-id"].startswith("com.omnizap.")
    exif = Image.open(io.BytesIO(sticker.data)).info["exif"]
    assert exif[:4] == b"II*\x00"
    offset, entries, tag, kind, count, value_offset = struct.unpack_from("<IHHHII", exif, 4)
    assert (offset, entries, tag, kind, value_offset) == (8, 1, 0x5741, 7, 22)
    assert count == len(exif) - 22
    assert parse_sticker_exif(exif) == document


def test_pack_id_comes_from_the_image_not_from_chance() -> None:
    first = read_sticker_metadata(convert(mf.png_bytes(50, 50, (255, 0, 0, 255))).data)
    again = read_sticker_metadata(convert(mf.png_bytes(50, 50, (255, 0, 0, 255))).data)
    other = read_sticker_metadata(convert(mf.png_bytes(50, 50, (0, 0, 255, 255))).data)
    assert first["sticker-pack-id"] == again["sticker-pack-id"] != other["sticker-pack-id"]


def test_different_metadata_changes_only_the_exif_chunk() -> None:
    data = mf.png_bytes(60, 30)
    one = convert_to_sticker(data, metadata=StickerMetadata("A", "B"))
    two = convert_to_sticker(data, metadata=StickerMetadata("Other", "Person", ("🔥", "✨")))
    assert one.data != two.data
    image_chunks = [[c for c in split_chunks(s.data) if c.fourcc != b"EXIF"] for s in (one, two)]
    assert image_chunks[0] == image_chunks[1]
    assert read_sticker_metadata(two.data)["emojis"] == ["🔥", "✨"]


def test_metadata_text_is_cleaned() -> None:
    metadata = StickerMetadata.clean(
        "  my   pack\tname  ", None, "😀, 😀 ,🎉", default_pack_name="d", default_publisher="p"
    )
    assert metadata.pack_name == "my pack name"
    assert metadata.publisher == "p"
    assert metadata.emojis == ("😀", "🎉")


@pytest.mark.parametrize(
    ("name", "emojis"),
    [
        (None, ("😀", "😂", "🎉", "🔥")),
        (None, ("not an emoji at all",)),
        (None, ("a\nb",)),
        ("my\npack", ()),
        ("x" * 121, ()),
        ("\x00name", ()),
    ],
)
def test_bad_metadata_is_refused(name: str | None, emojis: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput) as caught:
        StickerMetadata.clean(name, None, emojis, default_pack_name="d", default_publisher="p")
    assert caught.value.code == "INVALID_INPUT"


def test_exif_can_be_added_to_simple_lossy_and_lossless_webp_without_touching_pixels() -> None:
    payload = build_sticker_exif("com.omnizap.test", METADATA)
    for options in ({"quality": 80}, {"lossless": True}):
        source = mf.encode_image(mf.graphic_image(64, 64), "WEBP", **options)
        tagged = with_exif(source, payload)
        reopened = Image.open(io.BytesIO(tagged))
        assert reopened.info["exif"] == payload
        original_pixels = Image.open(io.BytesIO(source)).convert("RGBA").tobytes()
        assert reopened.convert("RGBA").tobytes() == original_pixels
        assert inspect_webp(tagged).has_alpha == inspect_webp(source).has_alpha
        assert with_exif(tagged, None) != tagged and read_sticker_metadata(with_exif(tagged, None)) == {}


def test_read_metadata_of_files_without_it_is_empty() -> None:
    assert read_sticker_metadata(b"") == {}
    assert read_sticker_metadata(b"not a webp") == {}
    assert read_sticker_metadata(mf.encode_image(mf.solid_image(8, 8), "WEBP")) == {}


# --- ready-made stickers --------------------------------------------------------------------------


def test_a_valid_sticker_is_not_re_encoded() -> None:
    sticker = convert(mf.animated_gif(3))
    again = convert(sticker.data, keep_existing_metadata=True)
    assert again.data == sticker.data and again.encoding == "unchanged"
    relabelled = convert_to_sticker(sticker.data, metadata=StickerMetadata("New", "Name"))
    assert relabelled.encoding == "unchanged"
    assert read_sticker_metadata(relabelled.data)["sticker-pack-name"] == "New"
    assert [c for c in split_chunks(relabelled.data) if c.fourcc == b"ANMF"] == [
        c for c in split_chunks(sticker.data) if c.fourcc == b"ANMF"
    ]


def test_validation_names_each_broken_rule() -> None:
    small = mf.encode_image(mf.solid_image(256, 256), "WEBP")
    with pytest.raises(MediaRejected) as caught:
        validate_whatsapp_sticker(small)
    assert caught.value.code == "INVALID_STICKER" and "512×512" in caught.value.message
    too_fast = mf.animated_webp(3, size=(512, 512), duration=[5, 100, 100])
    with pytest.raises(MediaRejected) as caught:
        validate_whatsapp_sticker(too_fast)
    assert "at least 8 ms" in caught.value.message
    # Given to the converter, the same file is fixed instead of refused.
    assert_whatsapp_valid(convert(too_fast))


# --- hostile input --------------------------------------------------------------------------------


def rejected(data: bytes, limits: IngestLimits | None = None) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        convert(data, limits)
    return caught.value


def test_empty_file() -> None:
    error = rejected(b"")
    assert error.code == "EMPTY_FILE" and "0 bytes" in error.message


@pytest.mark.parametrize(
    "make",
    [
        lambda: mf.encode_image(mf.noise_image(64, 64), "PNG"),
        lambda: mf.encode_image(mf.photo_like_image(200, 200), "JPEG"),
        lambda: mf.animated_gif(4),
        lambda: mf.animated_webp(4),
        lambda: mf.video("mp4", seconds=0.5),
        lambda: mf.video("webm", seconds=0.5),
    ],
    ids=["png", "jpeg", "gif", "webp", "mp4", "webm"],
)
def test_truncated_files_are_reported_as_truncated(make: Callable[[], bytes]) -> None:
    error = rejected(mf.truncated(make()))
    assert error.code == "TRUNCATED_FILE"
    assert "incomplete" in error.message


def test_png_header_on_garbage() -> None:
    error = rejected(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    assert error.code == "CORRUPT_FILE"


def test_damaged_video_header() -> None:
    data = bytearray(mf.video("mp4", seconds=0.3))
    moov = data.index(b"moov")
    data[moov + 4 : moov + 200] = b"\x00" * 196
    assert rejected(bytes(data)).code in {"CORRUPT_FILE", "NO_FRAMES"}


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"hello, this is just a text file\nwith two lines\n", "text file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"BM" + b"\x00" * 60, "BMP"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (bytes([0x13, 0x37, 0xBE, 0xEF]) * 10, "unknown format"),
    ],
)
def test_unknown_formats_are_named(data: bytes, named: str) -> None:
    error = rejected(data)
    assert error.code == "UNSUPPORTED_FORMAT"
    assert named in error.message


def test_file_named_png_but_holding_text_is_refused_by_content() -> None:
    assert rejected(b"definitely not a picture").code == "UNSUPPORTED_FORMAT"


def test_png_claiming_huge_dimensions_is_refused_before_decoding() -> None:
    error = rejected(mf.png_bomb(100_000, 100_000))
    assert error.code == "DECOMPRESSION_BOMB"
    assert "100000×100000" in error.message


def test_pillow_guard_is_set_from_the_limit() -> None:
    convert(mf.png_bytes(8, 8), IngestLimits(max_pixels=123_456))
    assert Image.MAX_IMAGE_PIXELS == 123_456
    convert(mf.png_bytes(8, 8))
    assert IngestLimits().max_pixels == Image.MAX_IMAGE_PIXELS


def test_gif_with_thousands_of_frames_is_refused() -> None:
    error = rejected(mf.gif_with_frames(5_000))
    assert error.code == "DECOMPRESSION_BOMB"
    assert "1000 frames" in error.message


def test_gif_screen_bomb_is_refused() -> None:
    assert rejected(mf.gif_bomb(60_000, 60_000)).code == "DECOMPRESSION_BOMB"


def test_animation_whose_frames_add_up_to_too_many_pixels_is_refused() -> None:
    data = bytearray(mf.gif_with_frames(40, delay_cs=20))
    struct.pack_into("<HH", data, 6, 100, 100)  # 10,000 px per frame, 40 frames inside 10 s
    error = rejected(bytes(data), IngestLimits(max_pixels=10_000))
    assert error.code == "DECOMPRESSION_BOMB" and "40 frames" in error.message


def test_video_with_too_many_pixels_is_refused() -> None:
    error = rejected(mf.video("mp4", seconds=0.2, size=(96, 64)), IngestLimits(max_pixels=5_000))
    assert error.code == "DECOMPRESSION_BOMB"


def test_huge_side_is_refused() -> None:
    assert rejected(mf.png_bomb(20_000, 1)).code == "DIMENSIONS_TOO_LARGE"


def test_video_without_frames() -> None:
    error = rejected(mf.video_without_frames())
    assert error.code == "NO_FRAMES"


def test_oversize_input_is_refused_before_reading_it() -> None:
    data = mf.encode_image(mf.noise_image(100, 100), "PNG")
    error = rejected(data, IngestLimits(max_source_bytes=len(data) - 1))
    assert error.code == "TOO_LARGE" and "MB" in error.message
    assert error.http_status == 413


# --- fuzzing: whatever the bytes, the only failure is a clear MediaRejected -----------------------

_MAGICS = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"RIFF\x20\x00\x00\x00WEBP",
    b"\x00\x00\x00\x18ftypisom",
    b"\x1a\x45\xdf\xa3",
    b"",
]
_VALID_SAMPLES = {
    "png": mf.encode_image(mf.graphic_image(40, 30), "PNG"),
    "jpeg": mf.encode_image(mf.photo_like_image(40, 30), "JPEG"),
    "gif": mf.animated_gif(3, size=(24, 24)),
    "webp": mf.animated_webp(3, size=(24, 24)),
    "mp4": mf.video("mp4", seconds=0.3, size=(32, 32)),
    "webm": mf.video("webm", seconds=0.3, size=(32, 32)),
}


def _converts_or_rejects(data: bytes) -> None:
    try:
        sticker = convert(data)
    except MediaRejected as error:
        assert error.code and error.message
    else:
        assert_whatsapp_valid(sticker)


@settings(max_examples=150, deadline=None)
@given(magic=st.sampled_from(_MAGICS), body=st.binary(max_size=400))
def test_random_bytes_behind_a_magic_number_are_rejected_cleanly(magic: bytes, body: bytes) -> None:
    _converts_or_rejects(magic + body)


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(sorted(_VALID_SAMPLES)), cut=st.floats(min_value=0.0, max_value=1.0))
def test_files_cut_anywhere_are_rejected_cleanly(name: str, cut: float) -> None:
    data = _VALID_SAMPLES[name]
    _converts_or_rejects(data[: int(len(data) * cut)])


@settings(max_examples=120, deadline=None)
@given(
    name=st.sampled_from(sorted(_VALID_SAMPLES)),
    position=st.floats(min_value=0.0, max_value=1.0),
    garbage=st.binary(min_size=1, max_size=8),
)
def test_files_with_damaged_bytes_are_rejected_cleanly(name: str, position: float, garbage: bytes) -> None:
    data = bytearray(_VALID_SAMPLES[name])
    start = min(len(data) - 1, int(len(data) * position))
    data[start : start + len(garbage)] = garbage
    _converts_or_rejects(bytes(data))
