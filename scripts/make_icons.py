"""Draw the open115 brand icons: a key inside a circular refresh arrow on a rounded square.

Our own design (not the 115 trademark). Run with a Python that has Pillow, e.g.
`.venv/bin/python scripts/make_icons.py`; it writes custom_components/open115/brand/icon.png
(256x256) and icon@2x.png (512x512). Pillow is only needed here, never at run or test time.
"""

import math
from pathlib import Path

from PIL import Image, ImageDraw

BRAND_DIR = Path(__file__).resolve().parents[1] / "custom_components" / "open115" / "brand"
SUPERSAMPLE = 4

BACKGROUND = (37, 99, 235, 255)  # blue
ARROW = (255, 255, 255, 255)
KEY = (251, 191, 36, 255)  # amber


def _polar(cx: float, cy: float, radius: float, degrees: float) -> tuple[float, float]:
    """A point on a circle; degrees clockwise from 3 o'clock (Pillow's convention)."""
    rad = math.radians(degrees)
    return cx + radius * math.cos(rad), cy + radius * math.sin(rad)


def _draw_background(draw: ImageDraw.ImageDraw, size: int) -> None:
    margin = size * 0.03
    box = (margin, margin, size - margin, size - margin)
    radius = size * 0.22
    draw.rounded_rectangle(box, radius=radius, fill=BACKGROUND)


def _draw_refresh_arrow(draw: ImageDraw.ImageDraw, size: int) -> None:
    """A thick arc with an arrow head at its clockwise end."""
    cx = cy = size / 2
    radius = size * 0.31
    width = size * 0.08
    start, end = -20.0, 250.0  # a 270 degree arc, open at the upper right
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    draw.arc(box, start=start, end=end, fill=ARROW, width=round(width))
    # Round cap at the tail.
    mid = radius - width / 2
    tx, ty = _polar(cx, cy, mid, start)
    draw.ellipse((tx - width / 2, ty - width / 2, tx + width / 2, ty + width / 2), fill=ARROW)
    # Arrow head at the head end, pointing along the circle (clockwise).
    head = size * 0.12
    bx, by = _polar(cx, cy, mid, end)
    tangent = math.radians(end + 90)
    normal = math.radians(end)
    tip = (bx + head * math.cos(tangent), by + head * math.sin(tangent))
    outer = (bx + head * math.cos(normal), by + head * math.sin(normal))
    inner = (bx - head * math.cos(normal), by - head * math.sin(normal))
    draw.polygon([outer, tip, inner], fill=ARROW)


def _draw_key(size: int) -> Image.Image:
    """A key on its own layer, drawn horizontally and then tilted."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cy = size / 2
    bow_r = size * 0.088
    bow_cx = size * 0.385
    shaft_h = size * 0.056
    shaft_end = size * 0.7
    # Bow with a hole.
    draw.ellipse((bow_cx - bow_r, cy - bow_r, bow_cx + bow_r, cy + bow_r), fill=KEY)
    hole = bow_r * 0.42
    draw.ellipse((bow_cx - hole, cy - hole, bow_cx + hole, cy + hole), fill=(0, 0, 0, 0))
    # Shaft.
    draw.rounded_rectangle(
        (bow_cx + bow_r * 0.8, cy - shaft_h / 2, shaft_end, cy + shaft_h / 2),
        radius=shaft_h / 2,
        fill=KEY,
    )
    # Two teeth.
    tooth_w = size * 0.045
    for x, depth in ((shaft_end - tooth_w, 0.08), (shaft_end - tooth_w * 2.4, 0.062)):
        draw.rectangle((x, cy, x + tooth_w, cy + size * depth), fill=KEY)
    return layer.rotate(40, resample=Image.Resampling.BICUBIC, center=(size / 2, size / 2))


def draw_icon(pixels: int) -> Image.Image:
    """The icon at `pixels` x `pixels`, drawn large and scaled down for smooth edges."""
    size = pixels * SUPERSAMPLE
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    _draw_background(draw, size)
    _draw_refresh_arrow(draw, size)
    key = _draw_key(size)
    image.alpha_composite(key)
    return image.resize((pixels, pixels), Image.Resampling.LANCZOS)


def main() -> None:
    BRAND_DIR.mkdir(parents=True, exist_ok=True)
    for name, pixels in (("icon.png", 256), ("icon@2x.png", 512)):
        path = BRAND_DIR / name
        draw_icon(pixels).save(path, format="PNG", optimize=True)
        print(f"wrote {path} ({pixels}x{pixels})")


if __name__ == "__main__":
    main()
