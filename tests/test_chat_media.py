"""Chat media: text stickers (/st, /stw, /stb) and sticker conversions (/toimg, /tovideo, Telegram).

Every output is checked by a real decoder: Pillow for PNG/WebP, PyAV (ffmpeg) for MP4/WEBM.
"""

from __future__ import annotations

import io
import struct

import av
import media_factory as mf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from omnizap.core.stickers import errors
from omnizap.core.stickers.convert import (
    MAX_STICKER_BYTES,
    TELEGRAM_MAX_BYTES,
    sticker_to_mp4,
    sticker_to_png,
    sticker_to_telegram_webm,
)
from omnizap.core.stickers.errors import MediaRejected
from omnizap.core.stickers.exif import StickerMetadata, read_sticker_metadata
from omnizap.core.stickers.limits import (
    WHATSAPP_ANIMATED_MAX_BYTES,
    WHATSAPP_STATIC_MAX_BYTES,
    IngestLimits,
)
from omnizap.core.stickers.media import convert_to_sticker, validate_whatsapp_sticker
from omnizap.core.stickers.text_render import (
    METADATA_RESERVE_BYTES,
    parse_blink_color,
    render_blink_sticker,
    render_text_sticker,
    validate_sticker_text,
)

KB = 1024


def rgba(data: bytes, frame: int = 0) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.seek(frame)
        return np.asarray(image.convert("RGBA"))


def content_row_bands(pixels: np.ndarray) -> list[tuple[int, int]]:
    """Runs of rows that have any visible pixel: one run per line of text."""
    rows = (pixels[:, :, 3] > 0).any(axis=1)
    bands: list[tuple[int, int]] = []
    start = None
    for index, filled in enumerate(rows):
        if filled and start is None:
            start = index
        if not filled and start is not None:
            bands.append((start, index))
            start = None
    if start is not None:
        bands.append((start, len(rows)))
    return bands


def coloured_pixels(pixels: np.ndarray) -> int:
    """Opaque pixels that are clearly not grey (neither black nor white text, nor its outline)."""
    channels = pixels[:, :, :3].astype(int)
    spread = channels.max(axis=2) - channels.min(axis=2)
    return int(((pixels[:, :, 3] > 200) & (spread > 80)).sum())


def video_facts(data: bytes) -> dict[str, object]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return {
            "format": container.format.name,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.width, stream.height),
            "seconds": container.duration / av.time_base,
            "frames": len(frames),
            "durations_ms": [round(float(frame.duration * frame.time_base) * 1000) for frame in frames],
            "audio": len(container.streams.audio),
            "alpha_mode": stream.metadata.get("alpha_mode"),
            "first": frames[0].to_ndarray(format="rgb24"),
        }


def check_refused(call: object, data: bytes, code: str) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        call(data)  # type: ignore[operator]
    assert caught.value.code == code
    assert "/" not in caught.value.message  # no server path, ever
    return caught.value


# --- validation -----------------------------------------------------------------------------------


def test_text_is_trimmed_and_newlines_normalised() -> None:
    assert validate_sticker_text("  bom dia \r\n seus lindos  ") == "bom dia \n seus lindos"
    assert validate_sticker_text("a\rb") == "a\nb"


@pytest.mark.parametrize("text", ["", "   ", "\n\n", " \r\n ", "\u200d\u200b\ufeff", "\u3000\u00a0"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(MediaRejected) as caught:
        validate_sticker_text(text)
    assert caught.value.code == errors.TEXT_EMPTY


def test_length_limit_is_80_characters_with_the_numbers_in_details() -> None:
    assert validate_sticker_text("x" * 80) == "x" * 80
    for length in (81, 10_000):
        with pytest.raises(MediaRejected) as caught:
            validate_sticker_text("x" * length)
        assert caught.value.code == errors.TEXT_TOO_LONG
        assert caught.value.details == {"length": length, "limit": 80}
        assert str(length) in caught.value.message


def test_line_limit_is_4_lines() -> None:
    assert validate_sticker_text("a\nb\nc\nd") == "a\nb\nc\nd"
    with pytest.raises(MediaRejected) as caught:
        validate_sticker_text("a\nb\r\nc\nd\ne")
    assert caught.value.code == errors.TEXT_TOO_MANY_LINES
    assert caught.value.details == {"lines": 5, "limit": 4}


@pytest.mark.parametrize(
    ("text", "codepoint"),
    [
        ("bom\x07dia", "U+0007"),
        ("bom\tdia", "U+0009"),
        ("bom\x00dia", "U+0000"),
        ("abc\u202egnp.exe", "U+202E"),  # right-to-left override
        ("abc\u2066x\u2069", "U+2066"),  # isolate
        ("linha\u2028outra", "U+2028"),
        ("a\ud800b", "U+D800"),  # lone surrogate
    ],
)
def test_control_and_direction_override_characters_are_refused(text: str, codepoint: str) -> None:
    with pytest.raises(MediaRejected) as caught:
        validate_sticker_text(text)
    assert caught.value.code == errors.TEXT_CONTROL_CHARACTER
    assert caught.value.details["codepoint"] == codepoint


def test_emoji_sequences_and_right_to_left_text_are_allowed() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert validate_sticker_text(f"{family} ❤️ שלום مرحبا") == f"{family} ❤️ שלום مرحبا"


# --- blink colour flag ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bom dia seus lindos -verde", ("bom dia seus lindos", "green")),
        ("bom dia -GREEN", ("bom dia", "green")),
        ("oi -vermelho  ", ("oi", "red")),
        ("oi -amarelo", ("oi", "yellow")),
        ("oi -laranja", ("oi", "orange")),
        ("oi -roxo", ("oi", "purple")),
        ("oi -rosa", ("oi", "pink")),
        ("oi -azul", ("oi", "blue")),
        ("oi -preto", ("oi", "black")),
        ("oi -branco", ("oi", "white")),
        ("oi -cinza", ("oi -cinza", "white")),  # unknown flag stays in the text
        ("guarda-chuva", ("guarda-chuva", "white")),  # not a flag: no space before the dash
        ("bom dia", ("bom dia", "white")),
        ("-azul", ("", "blue")),
    ],
)
def test_parse_blink_color(text: str, expected: tuple[str, str]) -> None:
    assert parse_blink_color(text) == expected


# --- static text stickers -------------------------------------------------------------------------


@pytest.mark.parametrize("color", ["black", "white"])
@pytest.mark.parametrize("text", ["oi", "bom dia seus lindos", "W" * 80, "a\nb\nc\nd", "💥" * 40])
def test_text_sticker_is_a_valid_static_whatsapp_sticker(text: str, color: str) -> None:
    data = render_text_sticker(text, color=color)
    info = validate_whatsapp_sticker(data)
    assert not info.is_animated
    assert (info.width, info.height) == (512, 512)
    assert len(data) <= WHATSAPP_STATIC_MAX_BYTES - METADATA_RESERVE_BYTES
    pixels = rgba(data)
    assert pixels[0, 0, 3] == 0 and pixels[-1, -1, 3] == 0  # transparent background
    columns = np.nonzero((pixels[:, :, 3] > 0).any(axis=0))[0]
    assert columns.min() >= 20 and columns.max() <= 492  # wrapped inside 460 px (+ outline)


def test_explicit_newline_is_honoured() -> None:
    two_lines = content_row_bands(rgba(render_text_sticker("HI\nHO", color="black")))
    one_line = content_row_bands(rgba(render_text_sticker("HI HO", color="black")))
    assert len(two_lines) == 2
    assert len(one_line) == 1
    (top_start, top_end), (bottom_start, bottom_end) = two_lines
    assert bottom_start > top_end  # the second line is lower, with a gap
    assert abs((top_start + bottom_end) / 2 - 256) < 20  # the block is centred vertically


def test_font_size_follows_the_original_steps() -> None:
    def height(text: str) -> int:
        (start, end), *_ = content_row_bands(rgba(render_text_sticker(text, color="black")))
        return end - start

    # Cap height of "H" at 96, 80, 68 and 56 px steps: strictly smaller as the text grows.
    heights = [height("H" * count) for count in (6, 10, 16, 17)]
    assert heights == sorted(heights, reverse=True) and len(set(heights)) == 4


def test_emoji_renders_in_colour() -> None:
    with_emoji = rgba(render_text_sticker("oi 😀", color="black"))
    without = rgba(render_text_sticker("oi", color="black"))
    assert coloured_pixels(with_emoji) > 500
    assert coloured_pixels(without) == 0


def test_white_text_gets_a_dark_outline_and_black_text_none() -> None:
    white = rgba(render_text_sticker("oi", color="white"))
    visible = white[:, :, 3] > 200
    assert (white[visible][:, :3] > 240).all(axis=1).any()  # the white fill
    outline = (white[:, :, 3] > 150) & (white[:, :, :3] < 40).all(axis=2)
    assert outline.sum() > 200  # the dark outline
    black = rgba(render_text_sticker("oi", color="black"))
    assert not (black[black[:, :, 3] > 200][:, :3] > 100).any()


def test_unknown_colour_is_refused() -> None:
    with pytest.raises(MediaRejected) as caught:
        render_text_sticker("oi", color="not-a-colour")
    assert caught.value.code == errors.INVALID_COLOR


def test_render_validates_the_text_itself() -> None:
    with pytest.raises(MediaRejected) as caught:
        render_text_sticker("x" * 10_000, color="black")
    assert caught.value.code == errors.TEXT_TOO_LONG
    with pytest.raises(MediaRejected) as caught:
        render_blink_sticker("oi\x1b[31m", color="red")
    assert caught.value.code == errors.TEXT_CONTROL_CHARACTER


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=90))
def test_any_text_is_either_refused_clearly_or_rendered_valid(text: str) -> None:
    try:
        validate_sticker_text(text)
    except MediaRejected as refused:
        assert refused.code in {
            errors.TEXT_EMPTY,
            errors.TEXT_TOO_LONG,
            errors.TEXT_TOO_MANY_LINES,
            errors.TEXT_CONTROL_CHARACTER,
        }
        return
    validate_whatsapp_sticker(render_text_sticker(text, color="white"))


def test_bidi_text_renders() -> None:
    data = render_text_sticker("שלום עולם", color="black")
    validate_whatsapp_sticker(data)
    assert (rgba(data)[:, :, 3] > 0).sum() > 500


@pytest.mark.parametrize("render", [render_text_sticker, render_blink_sticker])
def test_ingest_stores_the_output_unchanged_with_the_largest_metadata(render: object) -> None:
    """The chat core hands the bytes to StickerService.ingest: the pass-through must never re-encode."""
    data = render("bom dia seus lindos 😀", color="white")  # type: ignore[operator]
    # The text policy's longest pack name and publisher (120 characters), in 4-byte characters.
    metadata = StickerMetadata.clean(
        "😀" * 120, "😀" * 120, ("😀", "🔥", "👍"), default_pack_name="x", default_publisher="y"
    )
    converted = convert_to_sticker(data, metadata=metadata)
    assert converted.encoding == "unchanged"
    assert read_sticker_metadata(converted.data)["sticker-pack-name"] == "😀" * 120
    validate_whatsapp_sticker(converted.data)


# --- blinking stickers ----------------------------------------------------------------------------


def test_blink_sticker_is_a_valid_animated_whatsapp_sticker() -> None:
    text, colour = parse_blink_color("bom dia seus lindos -vermelho")
    data = render_blink_sticker(text, color=colour)
    info = validate_whatsapp_sticker(data)
    assert info.is_animated
    assert len(data) <= WHATSAPP_ANIMATED_MAX_BYTES - METADATA_RESERVE_BYTES
    assert info.duration_ms == 75 * 67  # 15 fps for 5 s, as the original
    assert min(info.frame_durations_ms) >= 8
    with Image.open(io.BytesIO(data)) as image:
        shown = []
        for index in range(image.n_frames):
            image.seek(index)
            pixels = np.asarray(image.convert("RGBA"))
            shown.append(bool((pixels[:, :, 3] > 0).any()))
            if shown[-1]:
                red = (pixels[:, :, 3] > 200) & (pixels[:, :, 0] > 200) & (pixels[:, :, 1] < 60)
                assert red.sum() > 500  # the red fill
                assert ((pixels[:, :, 3] > 0) & (pixels[:, :, 3] < 200)).any()  # the translucent outline
    assert shown == [index % 2 == 0 for index in range(len(shown))]  # on, off, on, off…
    assert info.frame_durations_ms[:2] == (134, 134)  # 2 frames of 67 ms each


def test_blink_sticker_meets_the_byte_limit_with_fewer_colours() -> None:
    text = "😀🔥" * 20  # 40 colour emoji: about 525 KB with every colour kept
    data = render_blink_sticker(text, color="yellow")
    info = validate_whatsapp_sticker(data)
    assert len(data) <= WHATSAPP_ANIMATED_MAX_BYTES - METADATA_RESERVE_BYTES
    assert info.duration_ms == 75 * 67 and info.frame_count == 38
    limits = IngestLimits(animated_max_bytes=100 * KB)
    strict = render_blink_sticker(text, color="yellow", limits=limits)
    assert len(strict) <= 100 * KB - METADATA_RESERVE_BYTES
    validate_whatsapp_sticker(strict, limits)
    pixels = rgba(strict)
    assert coloured_pixels(pixels) > 5000  # still colour emoji, only fewer shades


def test_blink_sticker_that_cannot_fit_is_refused() -> None:
    with pytest.raises(MediaRejected) as caught:
        render_blink_sticker("W" * 60, color="white", limits=IngestLimits(animated_max_bytes=3 * KB))
    assert caught.value.code == errors.STICKER_TOO_COMPLEX


# --- conversions ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def static_sticker() -> bytes:
    return render_text_sticker("oi 😀", color="black")


@pytest.fixture(scope="module")
def blink_sticker() -> bytes:
    return render_blink_sticker("bom dia", color="red")


def test_png_of_a_static_sticker(static_sticker: bytes) -> None:
    png = sticker_to_png(static_sticker)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode == "RGBA" and image.size == (512, 512)
        assert np.array_equal(np.asarray(image), rgba(static_sticker))


def test_png_of_an_animated_sticker_is_its_first_frame(blink_sticker: bytes) -> None:
    png = sticker_to_png(blink_sticker)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode == "RGBA"
        assert getattr(image, "n_frames", 1) == 1
        assert np.array_equal(np.asarray(image), rgba(blink_sticker, 0))


def test_mp4_of_an_animated_sticker_keeps_its_timing(blink_sticker: bytes) -> None:
    facts = video_facts(sticker_to_mp4(blink_sticker))
    assert facts["format"].startswith("mov,mp4")  # type: ignore[union-attr]
    assert (facts["codec"], facts["pix_fmt"], facts["size"]) == ("h264", "yuv420p", (512, 512))
    assert facts["frames"] == 38
    assert facts["seconds"] == pytest.approx(5.025, abs=0.002)
    assert facts["durations_ms"] == [134] * 37 + [67]
    assert facts["first"][0, 0].min() > 240  # transparency flattened onto white


def test_mp4_background_and_odd_sizes() -> None:
    sticker = mf.animated_webp(count=4, size=(101, 75), duration=[50, 150, 250, 350])
    facts = video_facts(sticker_to_mp4(sticker, background="black"))
    assert facts["size"] == (102, 76)  # even sides for 4:2:0
    assert facts["durations_ms"] == [50, 150, 250, 350]
    assert facts["first"][0, 0].max() < 16
    with pytest.raises(MediaRejected) as caught:
        sticker_to_mp4(sticker, background="plaid")
    assert caught.value.code == errors.INVALID_COLOR


def test_mp4_of_a_static_sticker_is_a_two_second_still(static_sticker: bytes) -> None:
    facts = video_facts(sticker_to_mp4(static_sticker))
    assert (facts["codec"], facts["size"]) == ("h264", (512, 512))
    assert facts["seconds"] == pytest.approx(2.0, abs=0.002)
    assert facts["frames"] == 20


def test_telegram_webm_of_the_blink_sticker(blink_sticker: bytes) -> None:
    webm = sticker_to_telegram_webm(blink_sticker)
    assert len(webm) <= TELEGRAM_MAX_BYTES
    facts = video_facts(webm)
    assert facts["format"] == "matroska,webm" and facts["codec"] == "vp9"
    assert facts["alpha_mode"] == "1" and facts["audio"] == 0
    assert 512 in facts["size"]  # type: ignore[operator]
    assert facts["seconds"] <= 3.0
    assert min(facts["durations_ms"]) >= 1000 / 30  # type: ignore[type-var]
    # The alpha survives: libvpx decodes the transparent corner as transparent.
    with av.open(io.BytesIO(webm)) as container:
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        packet = next(container.demux(container.streams.video[0]))
        frame = decoder.decode(packet)[0]
        pixels = frame.to_ndarray(format="rgba")
        assert pixels[0, 0, 3] < 10 and (pixels[:, :, 3] > 200).any()


def test_telegram_webm_speeds_up_then_cuts_long_animations() -> None:
    sticker = mf.animated_webp(count=100, size=(300, 200), duration=100)  # 10 s
    facts = video_facts(sticker_to_telegram_webm(sticker))
    assert facts["size"] == (512, 340)
    assert facts["seconds"] == pytest.approx(3.0, abs=0.002)
    assert facts["frames"] == 60  # played 2× faster (50 ms a frame), cut after 3 s
    assert min(facts["durations_ms"]) >= 1000 / 30  # type: ignore[type-var]


def test_telegram_webm_meets_the_byte_limit_by_crf_then_frame_rate(blink_sticker: bytes) -> None:
    # The blink sticker is ~19 KB at CRF 30 and ~8 KB at CRF 63 with all 38 frames: 6 KB needs a
    # lower frame rate and then the best CRF that fits at that rate.
    by_rate = sticker_to_telegram_webm(blink_sticker, max_bytes=6_000)
    assert len(by_rate) <= 6_000
    facts = video_facts(by_rate)
    assert facts["frames"] < 38  # fewer frames per second
    assert facts["seconds"] == pytest.approx(3.0, abs=0.002)
    with pytest.raises(MediaRejected) as caught:
        sticker_to_telegram_webm(blink_sticker, max_bytes=500)
    assert caught.value.code == errors.STICKER_TOO_COMPLEX


def test_large_stickers_are_scaled_to_sticker_size_while_decoding() -> None:
    sticker = mf.animated_webp(count=3, size=(2000, 1000), duration=100, lossless=False, quality=50)
    assert video_facts(sticker_to_mp4(sticker))["size"] == (512, 256)
    with Image.open(io.BytesIO(sticker_to_png(sticker))) as image:
        assert image.size == (512, 256)


def test_telegram_webm_refuses_a_static_sticker(static_sticker: bytes) -> None:
    check_refused(sticker_to_telegram_webm, static_sticker, errors.NOT_ANIMATED)


# --- hostile input --------------------------------------------------------------------------------


def _webp_header_bomb() -> bytes:
    small = mf.encode_image(mf.solid_image(8, 8), "WEBP", lossless=True)
    side = (16_000 - 1).to_bytes(3, "little")
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x10, 0, 0, 0]) + side + side
    body = b"WEBP" + vp8x + small[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


HOSTILE = [
    (b"", errors.EMPTY_FILE),
    (b"hello, not a sticker", errors.UNSUPPORTED_FORMAT),
    (mf.png_bytes(), errors.UNSUPPORTED_FORMAT),
    (b"RIFF\x10\x00\x00\x00WEBPgarbagegarb", errors.TRUNCATED_FILE),
    (mf.truncated(mf.animated_webp(size=(256, 256))), errors.TRUNCATED_FILE),
    (_webp_header_bomb(), errors.DECOMPRESSION_BOMB),
    (b"RIFF" + struct.pack("<I", MAX_STICKER_BYTES) + b"WEBP" + b"\0" * MAX_STICKER_BYTES, errors.TOO_LARGE),
]


@pytest.mark.parametrize("convert", [sticker_to_png, sticker_to_mp4, sticker_to_telegram_webm])
@pytest.mark.parametrize(("data", "code"), HOSTILE, ids=[code for _, code in HOSTILE])
def test_bad_input_is_refused_clearly(convert: object, data: bytes, code: str) -> None:
    check_refused(convert, data, code)


def test_corrupt_image_data_is_refused() -> None:
    good = mf.encode_image(mf.photo_like_image(64, 64), "WEBP", quality=80)
    start_code = good.find(b"\x9d\x01\x2a")  # the VP8 key frame start code
    broken = good[:start_code] + b"\0\0\0" + good[start_code + 3 :]
    with pytest.raises(MediaRejected) as caught:
        sticker_to_png(broken)
    assert caught.value.code in (errors.CORRUPT_FILE, errors.TRUNCATED_FILE)
    assert "/" not in caught.value.message
