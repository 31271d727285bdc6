"""Overlay PNG: the downsampled source image with every landmark's box, coloured by class.

Detection alone passes no classes and every box gets one colour; a classifier passes one class name
per landmark (and optionally the full class order, so colours agree across images).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from deepmars.landmarks.landmark import Landmark
from deepmars.landmarks.reader import WorkingImage

UNCLASSIFIED = "landmark (unclassified)"
# Tableau 10: distinct on grey terrain and for the common colour-vision deficiencies.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


RGB = tuple[int, int, int]


def _colours(names: Sequence[str], class_order: Sequence[str] | None,
             fixed: Mapping[str, RGB] | None = None) -> dict[str, RGB]:
    if set(names) <= {UNCLASSIFIED}:
        return {UNCLASSIFIED: (255, 200, 0)}  # one colour that stands out on grey terrain
    fixed = dict(fixed or {})
    order = [name for name in class_order or [] if name not in fixed]
    order += sorted(set(names) - set(order) - set(fixed))
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(order)}
    return colours | {name: colour for name, colour in fixed.items() if name in names}


def _legend(draw: ImageDraw.ImageDraw, counts: Counter, colours: dict, font, unit: int) -> None:
    rows = [(name, counts[name]) for name in colours if counts[name]]
    if not rows:
        rows = [("no landmarks", 0)]
    line = unit * 2
    width = max(draw.textlength(f"{name}: {n}", font=font) for name, n in rows) + line * 2
    draw.rectangle([unit, unit, unit + width, unit + line * len(rows) + unit], fill=(255, 255, 255))
    for i, (name, n) in enumerate(rows):
        y = unit * 2 + i * line
        # Outlined, so a white swatch shows on the white legend.
        draw.rectangle([unit * 2, y, unit * 2 + unit, y + unit], fill=colours.get(name, (0, 0, 0)), outline=(0, 0, 0))
        draw.text((unit * 4, y - unit // 4), f"{name}: {n}" if n else name, fill=(0, 0, 0), font=font)


def write_overlay(working: WorkingImage, landmarks: Sequence[Landmark], path: str | Path, max_side: int = 1500,
                  classes: Sequence[str] | None = None, class_order: Sequence[str] | None = None,
                  fixed_colours: Mapping[str, RGB] | None = None) -> Path:
    """Write the overlay PNG; ``classes[i]`` names landmark i's class (None: all unclassified).

    ``fixed_colours`` pins a colour to a name outside the palette order (the classifier draws its
    below-threshold boxes white, listed last in the legend).
    """
    names = list(classes) if classes is not None else [UNCLASSIFIED] * len(landmarks)
    if len(names) != len(landmarks):
        raise ValueError(f"{len(names)} class names for {len(landmarks)} landmarks")
    height, width = working.pixels.shape
    factor = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    img = Image.fromarray(working.pixels, mode="L").resize(size, Image.Resampling.BOX).convert("RGB")
    draw = ImageDraw.Draw(img)
    colours = _colours(names, class_order, fixed_colours)
    line = max(1, round(max(size) / 600))
    for lm, name in zip(landmarks, names, strict=True):
        box = [lm.x * factor, lm.y * factor, (lm.x + lm.w) * factor - 1, (lm.y + lm.h) * factor - 1]
        draw.rectangle(box, outline=colours[name], width=line)
    unit = max(6, round(max(size) / 100))
    _legend(draw, Counter(names), colours, _font(round(unit * 1.5)), unit)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # An adaptive palette keeps the greys and box colours and makes the file ~3x smaller than RGB.
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=128).save(path, format="PNG", optimize=True)
    return path
