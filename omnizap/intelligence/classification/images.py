"""Reading a sticker file for classification: keyframes, and the cheap signals measured on them.

Everything here needs only Pillow and numpy. A sticker is padded to a square on white (stickers
are transparent around the drawing; white is what a chat shows behind them and what photo models
expect more than black), so no part of it is cropped away before the models see it.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from omnizap.intelligence.classification.errors import InvalidImage

WORK_SIZE = 256  # side of the square every keyframe is reduced to before models and signals
SIGNAL_SIZE = 128
OPAQUE_ALPHA = 16


@dataclass(frozen=True)
class Keyframe:
    index: int
    rgb: Image.Image  # WORK_SIZE × WORK_SIZE, RGB over white
    alpha: np.ndarray  # WORK_SIZE × WORK_SIZE uint8


@dataclass(frozen=True)
class DecodedSticker:
    keyframes: list[Keyframe]
    width: int
    height: int
    frame_count: int
    is_animated: bool
    image_format: str


def keyframe_indices(frame_count: int, wanted: int) -> list[int]:
    """`wanted` frames spread over the animation, away from its ends (first frames are often blank
    fade-ins): 1 → the middle; 3 → at 1/6, 1/2 and 5/6 of the frames."""
    if frame_count <= 1 or wanted <= 1:
        return [frame_count // 2] if frame_count > 2 and wanted <= 1 else [0]
    count = min(wanted, frame_count)
    return sorted({min(frame_count - 1, int((2 * k + 1) * frame_count / (2 * count))) for k in range(count)})


def _square_on_white(frame: Image.Image) -> tuple[Image.Image, np.ndarray]:
    rgba = frame.convert("RGBA")
    # Fit the longer side to WORK_SIZE, up or down, so small stickers fill the square as big ones do.
    scale = WORK_SIZE / max(rgba.width, rgba.height)
    size = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
    if size != rgba.size:
        rgba = rgba.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0 if scale < 1 else None)
    canvas = Image.new("RGBA", (WORK_SIZE, WORK_SIZE), (255, 255, 255, 0))
    canvas.paste(rgba, ((WORK_SIZE - rgba.width) // 2, (WORK_SIZE - rgba.height) // 2))
    alpha = np.asarray(canvas.getchannel("A"), dtype=np.uint8)
    white = Image.new("RGBA", canvas.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, canvas).convert("RGB"), alpha


def decode_sticker(data: bytes, *, max_pixels: int, keyframes: int) -> DecodedSticker:
    """Keyframes of an image or animation. Raises InvalidImage for anything Pillow cannot read
    completely, and for pictures above `max_pixels` (decompression bombs)."""
    if not data:
        raise InvalidImage("the file is empty", "decoder-error")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width < 1 or height < 1:
                raise InvalidImage("the image has no pixels", "decoder-error")
            if width * height > max_pixels:
                raise InvalidImage(
                    f"the image is {width}×{height}, more than {max_pixels} pixels", "too-large"
                )
            frame_count = max(1, int(getattr(image, "n_frames", 1) or 1))
            frames: list[Keyframe] = []
            for index in keyframe_indices(frame_count, keyframes):
                image.seek(index)
                rgb, alpha = _square_on_white(image)
                frames.append(Keyframe(index, rgb, alpha))
            image_format = image.format or "unknown"
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(f"the image is too large to decode safely: {exc}", "too-large") from exc
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError) as exc:
        raise InvalidImage(f"the file is not a readable image: {exc}", "decoder-error") from exc
    return DecodedSticker(
        keyframes=frames,
        width=width,
        height=height,
        frame_count=frame_count,
        is_animated=frame_count > 1,
        image_format=image_format,
    )


# --- cheap signals ---------------------------------------------------------------------------------


def _colourfulness(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness of the opaque pixels, scaled so 1 ≈ "extremely
    colourful" (their M ≈ 109+); grey pictures score 0."""
    if mask.sum() < 16:
        return 0.0
    pixels = rgb[mask].astype(np.float64)
    red, green, blue = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    value = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    return min(1.0, value / 110.0)


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 3×3 neighbourhood is opaque: edges against the transparent background are the
    sticker's outline, not detail of the picture."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    return inner


def _blur(gray: np.ndarray, mask: np.ndarray) -> float:
    """1 − log-scaled variance of the Laplacian inside the sticker: 0 = crisp, 1 = no detail at all.
    A flat cartoon with sharp outlines stays crisp; a soft, out-of-focus photo scores high."""
    inner = _interior(mask)
    if inner.sum() < 64:
        return 0.0
    g = gray.astype(np.float64)
    laplacian = np.zeros_like(g)
    laplacian[1:-1, 1:-1] = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    variance = float(laplacian[inner].var())
    return max(0.0, min(1.0, 1.0 - math.log1p(variance) / math.log1p(1000.0)))


def _otsu(values: np.ndarray) -> tuple[float, float]:
    """(threshold, separability) of a grey histogram: separability is Otsu's between-class variance
    over the total, near 1 for two-tone pictures (ink on a plain ground), lower for photos."""
    histogram = np.bincount(values.astype(np.int64), minlength=256).astype(np.float64)
    total = histogram.sum()
    if total == 0:
        return 128.0, 0.0
    levels = np.arange(256, dtype=np.float64)
    weight = np.cumsum(histogram) / total
    mean = np.cumsum(histogram * levels) / total
    overall = mean[-1]
    variance = float(((levels - overall) ** 2 * histogram).sum() / total)
    if variance <= 1e-9:
        return 128.0, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (overall * weight - mean) ** 2 / (weight * (1.0 - weight))
    between = np.nan_to_num(between, nan=0.0, posinf=0.0)
    best = int(np.argmax(between))
    return float(best), float(between[best] / variance)


def _banded_share(rows: np.ndarray, max_band: float = 0.45) -> float:
    """Share of rows in runs no taller than `max_band` of the picture: lines of lettering are bands
    with gaps between them, while a texture (bricks, fabric) runs through the whole picture."""
    limit = max(2, int(rows.size * max_band))
    kept = 0
    run = 0
    for value in [*rows.tolist(), False]:
        if value:
            run += 1
            continue
        if 0 < run <= limit:
            kept += run
        run = 0
    return kept / rows.size if rows.size else 0.0


def _text_coverage(gray: np.ndarray, mask: np.ndarray) -> float:
    """Share of the sticker's rows that look like lines of lettering.

    Lettering is two-tone (high Otsu separability) and a row through it crosses many thin strokes,
    with ink a minority of the row. Rows of a photo cross texture rather than strokes, and its grey
    levels do not split cleanly, so photos stay low. A rough cue, not OCR."""
    rows = np.where(mask.any(axis=1))[0]
    if rows.size < 8 or mask.sum() < 256:
        return 0.0
    threshold, separability = _otsu(gray[mask])
    if separability < 0.7:
        return 0.0
    ink = gray < threshold
    if ink[mask].mean() > 0.5:  # light lettering on a dark ground
        ink = ~ink
    ink &= mask
    transitions = np.abs(np.diff(ink.astype(np.int8), axis=1)).sum(axis=1)
    width = np.maximum(mask.sum(axis=1), 1)
    ink_share = ink.sum(axis=1) / width
    texty = (transitions >= 8) & (ink_share > 0.04) & (ink_share < 0.6)
    covered = _banded_share(texty[rows[0] : rows[-1] + 1])
    # Scale by how cleanly two-tone the picture is: 0.7 → nothing, 0.9+ → all of it.
    return float(max(0.0, min(1.0, covered * min(1.0, (separability - 0.7) / 0.2))))


def measure_signals(sticker: DecodedSticker) -> dict[str, Any]:
    """Cheap signals of the first keyframe (animated stickers rarely change style between frames)."""
    frame = sticker.keyframes[0]
    small = frame.rgb.resize((SIGNAL_SIZE, SIGNAL_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.uint8)
    alpha = np.asarray(
        Image.fromarray(frame.alpha).resize((SIGNAL_SIZE, SIGNAL_SIZE), Image.Resampling.BILINEAR)
    )
    mask = alpha > OPAQUE_ALPHA
    gray = np.asarray(small.convert("L"), dtype=np.uint8)
    return {
        "animated": sticker.is_animated,
        "frame_count": sticker.frame_count,
        "keyframes": [keyframe.index for keyframe in sticker.keyframes],
        "width": sticker.width,
        "height": sticker.height,
        "format": sticker.image_format,
        "opaque_coverage": round(float(mask.mean()), 4),
        "colourfulness": round(_colourfulness(rgb, mask), 4),
        "blur": round(_blur(gray, mask), 4),
        "text_coverage": round(_text_coverage(gray, mask), 4),
    }
