"""Regenerate ``examples/boat.png``: a small drawn image (a boat on the sea) for the image-to-video examples.

Drawn with PIL from fixed shapes, so the file is the same on every machine: ``python scripts/make_example_image.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 256, 160
TARGET = Path(__file__).resolve().parents[1] / "examples" / "boat.png"


def draw_boat() -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), (150, 200, 235))  # sky
    draw = ImageDraw.Draw(image)
    draw.ellipse((190, 18, 222, 50), fill=(250, 220, 90))  # sun
    draw.rectangle((0, 100, WIDTH, HEIGHT), fill=(30, 90, 150))  # sea
    for y in range(108, HEIGHT, 12):  # wave lines
        draw.line((0, y, WIDTH, y), fill=(60, 120, 180), width=2)
    draw.polygon([(70, 96), (170, 96), (150, 116), (90, 116)], fill=(120, 60, 30))  # hull
    draw.line((120, 40, 120, 96), fill=(60, 40, 20), width=3)  # mast
    draw.polygon([(123, 44), (123, 92), (160, 92)], fill=(245, 245, 240))  # sail
    return image


def main() -> None:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    draw_boat().save(TARGET, optimize=True)
    print(f"wrote {TARGET} ({TARGET.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
