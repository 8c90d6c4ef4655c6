"""Draw hpoll's brand images (an original mark) into custom_components/hpoll/brand/.

The mark: a house outline on a deep-blue tile, with a warm dot inside and two arcs rising from
it: someone at home, and a signal reaching out. Run: python scripts/draw_brand.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND = Path(__file__).resolve().parent.parent / "custom_components/hpoll/brand"
BLUE = (18, 52, 110, 255)
WHITE = (255, 255, 255, 255)
WARM = (255, 183, 77, 255)


def draw_mark(size: int) -> Image.Image:
    """The square icon at ``size`` pixels (drawn 4x larger, then downsampled for smooth edges)."""
    big = size * 4
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 5, fill=BLUE)
    unit = big / 16
    line = max(4, round(unit * 0.9))
    roof = [(3 * unit, 8 * unit), (8 * unit, 3.4 * unit), (13 * unit, 8 * unit)]
    pen.line(roof, fill=WHITE, width=line, joint="curve")
    pen.line(
        [
            (4.4 * unit, 7.2 * unit),
            (4.4 * unit, 13 * unit),
            (11.6 * unit, 13 * unit),
            (11.6 * unit, 7.2 * unit),
        ],
        fill=WHITE,
        width=line,
        joint="curve",
    )
    cx, cy = 8 * unit, 10.6 * unit
    dot = 1.1 * unit
    pen.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=WARM)
    for radius in (2.2 * unit, 3.4 * unit):
        pen.arc(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            220,
            320,
            fill=WARM,
            width=max(3, round(unit * 0.55)),
        )
    return image.resize((size, size), Image.Resampling.LANCZOS)


def draw_logo(height: int) -> Image.Image:
    """The mark followed by the word 'hpoll'."""
    mark = draw_mark(height)
    font = ImageFont.load_default(size=round(height * 0.62))
    text_width = round(ImageDraw.Draw(mark).textlength("hpoll", font=font))
    logo = Image.new(
        "RGBA", (height + height // 5 + text_width + height // 8, height), (0, 0, 0, 0)
    )
    logo.paste(mark, (0, 0), mark)
    ImageDraw.Draw(logo).text(
        (height + height // 5, height // 2), "hpoll", font=font, fill=BLUE, anchor="lm"
    )
    return logo


def main() -> None:
    """Write icon.png, icon@2x.png, logo.png and logo@2x.png."""
    BRAND.mkdir(parents=True, exist_ok=True)
    draw_mark(256).save(BRAND / "icon.png", optimize=True)
    draw_mark(512).save(BRAND / "icon@2x.png", optimize=True)
    draw_logo(128).save(BRAND / "logo.png", optimize=True)
    draw_logo(256).save(BRAND / "logo@2x.png", optimize=True)


if __name__ == "__main__":
    main()
