"""``report.png``: the posters in one image with short captions, for terminals, chat and papers."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CAPTION_H, PAD = 30, 6
TILE_SIZE, SMALL_TILE_SIZE = (200, 112), (128, 72)  # small tiles past SMALL_FROM posters keep big sheets small
SMALL_FROM = 64
MAX_COLUMNS = 8
BAD_FILL = (198, 40, 40)


@dataclass
class Tile:
    poster: Path | None  # None: nothing to show (a failed job, a file without a poster)
    caption: str
    failed: bool


def fit_caption(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def write_contact_sheet(tiles: list[Tile], target: Path, columns: int | None = None) -> Path | None:
    """Draw the tiles in a grid (``columns`` wide; default about 16:9, at most 8) and write ``target`` atomically."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    if not tiles:
        return None
    columns = columns or max(1, min(MAX_COLUMNS, len(tiles), round(math.sqrt(len(tiles) * 2.5))))
    tile_w, tile_h = SMALL_TILE_SIZE if len(tiles) > SMALL_FROM else TILE_SIZE
    rows = -(-len(tiles) // columns)
    cell_w, cell_h = tile_w + PAD, tile_h + CAPTION_H + PAD
    sheet = Image.new("RGB", (columns * cell_w + PAD, rows * cell_h + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    for index, tile in enumerate(tiles):
        x = PAD + (index % columns) * cell_w
        y = PAD + (index // columns) * cell_h
        if tile.poster is not None and tile.poster.is_file():
            with Image.open(tile.poster) as poster:
                poster = ImageOps.contain(poster.convert("RGB"), (tile_w, tile_h))  # small posters grow too
                sheet.paste(poster, (x + (tile_w - poster.width) // 2, y + (tile_h - poster.height) // 2))
        else:
            draw.rectangle((x, y, x + tile_w - 1, y + tile_h - 1), fill=(253, 236, 236) if tile.failed else (230, 230, 230))
            draw.text((x + 8, y + tile_h // 2 - 7), "failed" if tile.failed else "no poster",
                      fill=BAD_FILL if tile.failed else (90, 90, 90), font=font)
        if tile.failed:
            draw.rectangle((x - 2, y - 2, x + tile_w + 1, y + tile_h + CAPTION_H - 2), outline=BAD_FILL, width=2)
        for line_index, line in enumerate(tile.caption.split("\n")[:2]):
            draw.text((x + 2, y + tile_h + 2 + line_index * 13), fit_caption(draw, line, font, tile_w - 4),
                      fill=BAD_FILL if tile.failed and line_index else (30, 30, 30), font=font)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        sheet.save(partial, format="PNG", compress_level=3)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
