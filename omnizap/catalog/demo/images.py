"""Sticker pictures for the demo catalog, drawn with Pillow from a seed.

A `StickerDesign` is pure data (shapes, colours, caption, motion) made by `design_sticker`; it can
describe itself in pt-BR or English (the accessibility label) and `render_source` turns it into the
file a user would upload: PNG or JPEG for stills, GIF for animations. The sticker pipeline then
converts that file like any other upload.

Variety, on purpose: circles, stars, blobs, polygons, hearts, rings and bursts, solid or striped,
sometimes with a face; transparent backgrounds mostly, some solid, gradient or striped ones; a
caption on most; a fifth of the pictures are not square, so the pipeline's padding shows.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw, ImageFont

from omnizap.catalog.demo.themes import PALETTE_BY_NAME, THEME_BY_KEY, Colour, Palette

RGB = tuple[int, int, int]

SHAPE_KINDS = ("circle", "star", "blob", "polygon", "heart", "ring", "burst")
MOTIONS = ("bounce", "spin", "pulse", "wobble", "blink", "colours")
STILL_SIZES = ((512, 320), (320, 512), (512, 384), (384, 512), (480, 270), (300, 512))
ANIMATED_SIZES = ((384, 256), (256, 384))
ANIMATED_SIDE = 320
SUPERSAMPLE = 2  # shapes are drawn at twice the size and scaled down: ImageDraw does not anti-alias
WHITE: RGB = (255, 255, 255)
INK: RGB = (24, 24, 24)
LABEL_MAX = 125  # WhatsApp's accessibility text limit for static stickers

_SHAPE_NAMES = {
    "circle": ("circle", "Círculo"),
    "star": ("star", "Estrela"),
    "blob": ("blob", "Bolha"),
    "heart": ("heart", "Coração"),
    "ring": ("ring", "Anel"),
    "burst": ("sunburst", "Explosão"),
}
_POLYGON_NAMES = {
    3: ("triangle", "Triângulo"),
    4: ("square", "Quadrado"),
    5: ("pentagon", "Pentágono"),
    6: ("hexagon", "Hexágono"),
    7: ("heptagon", "Heptágono"),
    8: ("octagon", "Octógono"),
}
_MOTION_WORDS = {
    "bounce": ("bouncing", "quicando"),
    "spin": ("spinning", "girando"),
    "pulse": ("pulsing", "pulsando"),
    "wobble": ("wobbling", "balançando"),
    "blink": ("blinking", "piscando"),
    "colours": ("changing colour", "mudando de cor"),
}


@dataclass(frozen=True)
class Shape:
    kind: str
    cx: float  # centre, as a fraction of the canvas width / height
    cy: float
    radius: float  # fraction of the canvas's shorter side
    colour: Colour
    rotation: float = 0.0  # degrees
    points: int = 5  # star points, polygon sides, burst rays
    stripes: Colour | None = None
    harmonics: tuple[tuple[float, int, float], ...] = ()  # blob outline: (amplitude, frequency, phase)
    face: bool = False


@dataclass(frozen=True)
class StickerDesign:
    """Everything needed to draw one demo sticker, and to say in words what it shows."""

    index: int
    theme: str
    animated: bool
    width: int
    height: int
    palette: str
    background: str  # transparent, solid, gradient, stripes
    background_colours: tuple[Colour, Colour]
    main: Shape
    decorations: tuple[Shape, ...]
    caption: str | None
    caption_colour: RGB
    caption_at_top: bool
    emojis: tuple[str, ...]
    source_format: str  # PNG, JPEG or GIF
    motion: str | None = None
    frame_count: int = 1
    frame_ms: int = 100

    def describe(self, language: str) -> str:
        """A one-sentence accessibility label in pt-BR (`pt`) or English, at most 125 characters
        (WhatsApp's limit for static stickers): details are left out, least important first."""
        for detail in (3, 2, 1, 0):
            text = self._sentence(language, detail)
            if len(text) <= LABEL_MAX:
                return text
        return text[: LABEL_MAX - 1].rstrip() + "…"

    def _sentence(self, language: str, detail: int) -> str:
        """detail 3: everything; 2: without the background; 1: without stripes; 0: shape and caption."""
        main = self.main
        shape_en, shape_pt = (
            _POLYGON_NAMES[main.points] if main.kind == "polygon" else _SHAPE_NAMES[main.kind]
        )
        pt = language == "pt"
        extras = []
        if main.face and detail >= 1:
            extras.append("rosto sorridente" if pt else "a smiling face")
        if main.stripes is not None and detail >= 2:
            extras.append(f"listras em {main.stripes.name_pt}" if pt else f"{main.stripes.name_en} stripes")
        if self.caption:
            extras.append(f"a legenda “{self.caption}”" if pt else f"the caption “{self.caption}”")
        if pt:
            text = f"{shape_pt} em {main.colour.name_pt}"
            if extras:
                text += " com " + _join(extras, "e")
        else:
            text = f"{main.colour.name_en.capitalize()} {shape_en}"
            if extras:
                text += " with " + _join(extras, "and")
        if self.background != "transparent" and detail >= 3:
            background = self.background_colours[0]
            text += f", sobre fundo {background.name_pt}" if pt else f" on a {background.name_en} background"
        if self.motion:
            text += ", " + _MOTION_WORDS[self.motion][1 if pt else 0]
        return text


def _join(parts: Sequence[str], conjunction: str) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + f" {conjunction} " + parts[-1]


# --- designing --------------------------------------------------------------------------------------


def design_sticker(seed: int, index: int, theme_key: str, *, animated: bool) -> StickerDesign:
    """The `index`-th static or animated design of a catalog made with `seed`; the same every time."""
    rng = random.Random(f"omnizap-demo:{seed}:sticker:{'a' if animated else 's'}:{index}")
    theme = THEME_BY_KEY[theme_key]
    palette = PALETTE_BY_NAME[rng.choice(theme.palettes)]
    if animated:
        width, height = rng.choice(ANIMATED_SIZES) if rng.random() < 0.25 else (ANIMATED_SIDE, ANIMATED_SIDE)
    else:
        width, height = rng.choice(STILL_SIZES) if rng.random() < 0.2 else (512, 512)
    roll = rng.random()
    background = (
        "transparent" if roll < 0.7 else "solid" if roll < 0.8 else "gradient" if roll < 0.92 else "stripes"
    )
    colours = list(palette.colours)
    rng.shuffle(colours)
    main_colour, *others = colours
    background_colours = (_lighter(others[0]), _lighter(others[1]))
    caption = rng.choice(theme.captions) if rng.random() < 0.75 else None
    caption_at_top = caption is not None and rng.random() < 0.3
    main = _random_shape(rng, palette, main_colour, caption_at_top=caption_at_top, has_caption=bool(caption))
    decorations = tuple(_decoration(rng, palette) for _ in range(rng.choice((0, 0, 1, 2, 3, 4))))
    emojis = tuple(rng.sample(theme.emojis, rng.choice((1, 1, 2))))
    if animated:
        # Every motion must change the picture: spinning a circle, ring or heart shows nothing.
        motions = (
            MOTIONS if main.kind in ("star", "polygon", "burst") else tuple(m for m in MOTIONS if m != "spin")
        )
        motion = rng.choice(motions)
        if motion == "wobble" and main.kind != "blob":
            main = replace(main, kind="blob", harmonics=_harmonics(rng))
        if motion == "blink" and caption is None:
            caption = rng.choice(theme.captions)
        source_format = "GIF"
        frame_count = rng.randint(6, 10)
        frame_ms = rng.choice((80, 90, 100, 120))
    else:
        motion = None
        source_format = "JPEG" if background != "transparent" and rng.random() < 0.5 else "PNG"
        frame_count, frame_ms = 1, 0
    return StickerDesign(
        index=index,
        theme=theme_key,
        animated=animated,
        width=width,
        height=height,
        palette=palette.name,
        background=background,
        background_colours=background_colours,
        main=main,
        decorations=decorations,
        caption=caption,
        caption_colour=WHITE if rng.random() < 0.6 else main_colour.rgb,
        caption_at_top=caption_at_top,
        emojis=emojis,
        source_format=source_format,
        motion=motion,
        frame_count=frame_count,
        frame_ms=frame_ms,
    )


def _lighter(colour: Colour) -> Colour:
    r, g, b = colour.rgb
    return Colour(
        (r + (255 - r) // 2, g + (255 - g) // 2, b + (255 - b) // 2), colour.name_en, colour.name_pt
    )


def _harmonics(rng: random.Random) -> tuple[tuple[float, int, float], ...]:
    return tuple(
        (rng.uniform(0.04, 0.12), frequency, rng.uniform(0, 2 * math.pi))
        for frequency in rng.sample((2, 3, 4, 5, 6), 3)
    )


def _random_shape(
    rng: random.Random, palette: Palette, colour: Colour, *, caption_at_top: bool, has_caption: bool
) -> Shape:
    kind = rng.choice(SHAPE_KINDS)
    points = {"star": rng.randint(5, 8), "polygon": rng.randint(3, 8), "burst": rng.randint(10, 16)}.get(
        kind, 5
    )
    stripe_choices = [other for other in palette.colours if other != colour]
    stripes = rng.choice(stripe_choices) if kind not in ("ring",) and rng.random() < 0.2 else None
    # Leave room for the caption below (or above) the shape.
    cy = 0.5 if not has_caption else (0.56 if caption_at_top else 0.44)
    return Shape(
        kind=kind,
        cx=0.5 + rng.uniform(-0.04, 0.04),
        cy=cy + rng.uniform(-0.03, 0.03),
        radius=rng.uniform(0.28, 0.36) if has_caption else rng.uniform(0.32, 0.42),
        colour=colour,
        rotation=rng.uniform(0, 360),
        points=points,
        stripes=stripes,
        harmonics=_harmonics(rng) if kind == "blob" else (),
        face=kind in ("circle", "blob", "polygon", "heart") and rng.random() < 0.45,
    )


def _decoration(rng: random.Random, palette: Palette) -> Shape:
    angle = rng.uniform(0, 2 * math.pi)
    distance = rng.uniform(0.36, 0.44)
    return Shape(
        kind=rng.choice(("circle", "star", "burst")),
        cx=0.5 + distance * math.cos(angle),
        cy=0.5 + distance * math.sin(angle),
        radius=rng.uniform(0.03, 0.07),
        colour=rng.choice(palette.colours),
        rotation=rng.uniform(0, 360),
        points=rng.choice((4, 5)),
    )


# --- drawing ----------------------------------------------------------------------------------------


def render_source(design: StickerDesign) -> bytes:
    """The design as an upload file: PNG/JPEG for a still, a looping GIF for an animation."""
    if not design.animated:
        image = _render_frame(design, 0.0)
        buffer = io.BytesIO()
        if design.source_format == "JPEG":
            image.convert("RGB").save(buffer, "JPEG", quality=90)
        else:
            image.save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()
    frames = [_render_frame(design, step / design.frame_count) for step in range(design.frame_count)]
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=design.frame_ms,
        loop=0,
        disposal=2,  # clear to the (transparent) background between frames
    )
    return buffer.getvalue()


def _render_frame(design: StickerDesign, phase: float) -> Image.Image:
    """One picture of the design; `phase` in [0, 1) is the position in the animation loop."""
    width, height = design.width * SUPERSAMPLE, design.height * SUPERSAMPLE
    image = _background(design, width, height)
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    main = _animated_shape(design, phase)
    for decoration in design.decorations:
        _draw_shape(image, draw, decoration, width, height, side, outline=False)
    _draw_shape(image, draw, main, width, height, side, outline=True)
    if main.face:
        _draw_face(draw, main, width, height, side, eyes_closed=design.motion == "blink" and phase >= 0.5)
    show_caption = design.caption and not (design.motion == "blink" and phase < 0.5)
    if show_caption and design.caption:
        _draw_caption(draw, design, width, height)
    # A 2×2 block average: smooth edges, and far cheaper than any other resampling at this size.
    return image.reduce(SUPERSAMPLE)


def _background(design: StickerDesign, width: int, height: int) -> Image.Image:
    first, second = (colour.rgb for colour in design.background_colours)
    if design.background == "transparent":
        return Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if design.background == "solid":
        return Image.new("RGBA", (width, height), (*first, 255))
    if design.background == "gradient":
        mask = Image.linear_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
        return Image.composite(
            Image.new("RGBA", (width, height), (*second, 255)),
            Image.new("RGBA", (width, height), (*first, 255)),
            mask,
        )
    image = Image.new("RGBA", (width, height), (*first, 255))
    draw = ImageDraw.Draw(image)
    band = max(8, min(width, height) // 10)
    for offset in range(-height, width, band * 2):
        draw.polygon(
            [(offset, 0), (offset + band, 0), (offset + band + height, height), (offset + height, height)],
            fill=(*second, 255),
        )
    return image


def _animated_shape(design: StickerDesign, phase: float) -> Shape:
    main = design.main
    turn = 2 * math.pi * phase
    if design.motion == "bounce":
        return replace(main, cy=main.cy - 0.1 * abs(math.sin(turn)))
    if design.motion == "spin":
        # One loop turns the shape by one step of its symmetry, so the last frame meets the first.
        symmetry = main.points if main.kind in ("star", "polygon", "burst") else 1
        return replace(main, rotation=main.rotation + 360 * phase / symmetry)
    if design.motion == "pulse":
        return replace(main, radius=main.radius * (1 + 0.12 * math.sin(turn)))
    if design.motion == "wobble":
        harmonics = tuple((amp, freq, shift + turn) for amp, freq, shift in main.harmonics)
        return replace(main, harmonics=harmonics)
    if design.motion == "colours":
        palette = PALETTE_BY_NAME[design.palette].colours
        start = palette.index(main.colour) if main.colour in palette else 0
        step = int(phase * len(palette))
        return replace(main, colour=palette[(start + step) % len(palette)])
    return main


def shape_outline(shape: Shape, width: int, height: int, side: int) -> list[tuple[float, float]]:
    """The shape's outline as polygon points on a `width`×`height` canvas."""
    cx, cy = shape.cx * width, shape.cy * height
    radius = shape.radius * side
    rotation = math.radians(shape.rotation)
    if shape.kind in ("circle", "ring"):
        return [
            (cx + radius * math.cos(2 * math.pi * step / 96), cy + radius * math.sin(2 * math.pi * step / 96))
            for step in range(96)
        ]
    if shape.kind in ("star", "burst"):
        inner = 0.5 if shape.kind == "star" else 0.78
        count = shape.points * 2
        return [
            (
                cx
                + radius
                * (1 if step % 2 == 0 else inner)
                * math.cos(rotation + math.pi * step / shape.points),
                cy
                + radius
                * (1 if step % 2 == 0 else inner)
                * math.sin(rotation + math.pi * step / shape.points),
            )
            for step in range(count)
        ]
    if shape.kind == "polygon":
        return [
            (
                cx + radius * math.cos(rotation + 2 * math.pi * step / shape.points),
                cy + radius * math.sin(rotation + 2 * math.pi * step / shape.points),
            )
            for step in range(shape.points)
        ]
    if shape.kind == "heart":
        scale = radius / 17
        points = []
        for step in range(96):
            t = 2 * math.pi * step / 96
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            points.append((cx + scale * x, cy - scale * y))
        return points
    # blob: a circle whose radius wanders with a few sine harmonics
    points = []
    for step in range(96):
        angle = 2 * math.pi * step / 96
        wobble = 1 + sum(amp * math.sin(freq * angle + shift) for amp, freq, shift in shape.harmonics)
        points.append((cx + radius * wobble * math.cos(angle), cy + radius * wobble * math.sin(angle)))
    return points


def _draw_shape(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    shape: Shape,
    width: int,
    height: int,
    side: int,
    *,
    outline: bool,
) -> None:
    points = shape_outline(shape, width, height, side)
    border = max(4, side // 40)
    fill = (*shape.colour.rgb, 255)
    if shape.kind == "ring":
        cx, cy, radius = shape.cx * width, shape.cy * height, shape.radius * side
        thickness = max(border * 2, int(radius * 0.35))
        if outline:
            box = (cx - radius - border, cy - radius - border, cx + radius + border, cy + radius + border)
            draw.ellipse(box, outline=(*WHITE, 255), width=thickness + 2 * border)
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=fill, width=thickness)
        return
    if outline:
        # The white cut-out border of a real sticker, then a thin dark edge inside it.
        draw.line([*points, points[0]], fill=(*WHITE, 255), width=border * 3, joint="curve")
        draw.polygon(points, fill=(*WHITE, 255))
    draw.polygon(points, fill=fill)
    if shape.stripes is not None:
        mask = Image.new("L", image.size, 0)
        ImageDraw.Draw(mask).polygon(points, fill=255)
        stripes = Image.new("L", image.size, 0)
        stripe_draw = ImageDraw.Draw(stripes)
        band = max(6, int(shape.radius * side / 5))
        for offset in range(-image.height, image.width, band * 2):
            stripe_draw.polygon(
                [
                    (offset, 0),
                    (offset + band, 0),
                    (offset + band + image.height, image.height),
                    (offset + image.height, image.height),
                ],
                fill=255,
            )
        mask = Image.composite(mask, Image.new("L", image.size, 0), stripes)
        image.paste((*shape.stripes.rgb, 255), (0, 0), mask)
    if outline:
        draw.line([*points, points[0]], fill=(*INK, 255), width=max(2, border // 2), joint="curve")


def _draw_face(
    draw: ImageDraw.ImageDraw, shape: Shape, width: int, height: int, side: int, *, eyes_closed: bool
) -> None:
    cx, cy = shape.cx * width, shape.cy * height
    radius = shape.radius * side
    eye = radius * 0.13
    for direction in (-1, 1):
        ex, ey = cx + direction * radius * 0.32, cy - radius * 0.15
        if eyes_closed:
            draw.line((ex - eye, ey, ex + eye, ey), fill=(*INK, 255), width=max(3, int(eye / 3)))
        else:
            draw.ellipse((ex - eye, ey - eye * 1.2, ex + eye, ey + eye * 1.2), fill=(*WHITE, 255))
            pupil = eye * 0.55
            draw.ellipse((ex - pupil, ey - pupil, ex + pupil, ey + pupil), fill=(*INK, 255))
    mouth = radius * 0.38
    draw.arc(
        (cx - mouth, cy - mouth * 0.3, cx + mouth, cy + mouth * 0.9),
        start=20,
        end=160,
        fill=(*INK, 255),
        width=max(3, int(radius * 0.06)),
    )


def _draw_caption(draw: ImageDraw.ImageDraw, design: StickerDesign, width: int, height: int) -> None:
    text = design.caption or ""
    size = int(min(width, height) * 0.14)
    font = ImageFont.load_default(size=size)
    while size > 12 and font.getlength(text) > width * 0.9:
        size = int(size * 0.85)
        font = ImageFont.load_default(size=size)
    stroke = max(2, size // 8)
    fill = design.caption_colour
    stroke_fill = INK if sum(fill) > 380 else WHITE
    y = height * (0.12 if design.caption_at_top else 0.88)
    draw.text(
        (width / 2, y),
        text,
        font=font,
        fill=(*fill, 255),
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=(*stroke_fill, 255),
    )
