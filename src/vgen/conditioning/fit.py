"""The one policy that fits an input image or frame to the job's size (``generation.fit``).

- ``crop`` (default): scale so the image covers the target, then cut the centre.
- ``pad``: scale so the whole image fits, then centre it on black bars (a mask's bars are white:
  the model generates what the source does not cover).
- ``stretch``: resize to the target, ignoring the aspect ratio.

Masks use the same geometry as the frames they go with, then are binarised (>= 128 is white).
"""

from __future__ import annotations

MASK_THRESHOLD = 128


def fit_image(image, width: int, height: int, policy: str, *, fill: int = 0):
    """``image`` (PIL, RGB or L) fitted to ``width`` x ``height`` per ``policy``."""
    from PIL import Image

    if image.size == (width, height):
        return image
    resample = Image.Resampling.LANCZOS
    if policy == "stretch":
        return image.resize((width, height), resample)
    scale = (max if policy == "crop" else min)(width / image.width, height / image.height)
    scaled_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    scaled = image.resize(scaled_size, resample)
    if policy == "crop":
        left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
        return scaled.crop((left, top, left + width, top + height))
    canvas = Image.new(image.mode, (width, height), (fill,) * len(image.getbands()))
    canvas.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
    return canvas


def fit_mask(image, width: int, height: int, policy: str):
    """A mask frame fitted like its video frame and binarised: RGB, pure black (keep) or white (generate)."""
    fitted = fit_image(image.convert("L"), width, height, policy, fill=255)
    return fitted.point(lambda value: 255 if value >= MASK_THRESHOLD else 0).convert("RGB")
