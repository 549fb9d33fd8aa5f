"""Decode the matting inputs: an image (a one-frame video) or a video, via Pillow and PyAV.

Every failure is a :class:`ConfigError` naming the request field and the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from vgen.errors import ConfigError

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's "L"
# ffmpeg renders any text file with a .txt/.ans/.nfo name as ANSI art "video"; those are no input.
TEXT_ART_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


@dataclass(frozen=True)
class Clip:
    """Decoded frames ``[start, end)`` of a source."""

    frames: np.ndarray  # (F, H, W, 3) uint8 RGB, or (F, H, W) float32 in [0, 1] for masks
    fps: Optional[float]  # None for a still image


def read_clip(path: str, field: str, start: int = 0, end: Optional[int] = None, as_mask: bool = False) -> Clip:
    """Frames ``[start, end)`` of the image or video at ``path`` (``end=None``: to the last frame).

    ``as_mask`` converts each frame to a single channel in [0, 1] (see :func:`mask_from_pixels`);
    a still mask image is the mask of the range's first frame, so it ignores the range.
    """
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"{field}: file not found: {path}")
    still = _open_still_image(source)
    if still is not None:
        if as_mask:
            return Clip(frames=mask_from_pixels(still, f"{field} ({path})")[None], fps=None)
        _check_range(field, path, start, end, total=1)
        return Clip(frames=_rgb(still)[None], fps=None)
    return _read_video(source, field, start, end, as_mask)


def mask_from_pixels(image, where: str) -> np.ndarray:
    """A Pillow image as a float32 (H, W) mask in [0, 1].

    Single-channel images are scaled by their bit depth; RGB uses luminance; images with an alpha
    channel use the alpha, unless the alpha is constant (an opaque RGBA export of a mask), in
    which case the colour channels decide.
    """
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA") if mode != "LA" else image
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() != alpha.max():
            return alpha
        image = rgba.convert("RGB") if mode != "LA" else image.convert("L")
        mode = image.mode
    if mode == "1":
        return np.asarray(image, dtype=np.float32)
    if mode == "L":
        return np.asarray(image, dtype=np.float32) / 255.0
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float32)
        peak = 1.0 if values.max() <= 1.0 else (255.0 if values.max() <= 255 else 65535.0)
        return np.clip(values / peak, 0.0, 1.0)
    if mode in ("RGB", "CMYK", "YCbCr", "HSV", "LAB"):
        return luminance(_rgb(image))
    raise ConfigError(f"{where}: unsupported mask image mode {mode!r}; use a grayscale, RGB or RGBA image")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(..., 3)`` -> float32 luminance in [0, 1]."""
    return (rgb.astype(np.float32) @ LUMA_WEIGHTS) / 255.0


def _rgb(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _open_still_image(path: Path):
    """The decoded image if ``path`` is a single-frame image Pillow reads, else None."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError):
        return None
    if getattr(image, "n_frames", 1) > 1:
        image.close()
        return None  # animated GIF/PNG/WebP: decode as a video
    image.load()
    return image


def _read_video(path: Path, field: str, start: int, end: Optional[int], as_mask: bool) -> Clip:
    """Check the file is a video PyAV decodes (one clear error per failure), then decode the range."""
    import av

    from vgen.media.probe import count_frames, decode_video

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise ConfigError(f"{field}: {path} is not an image or video ffmpeg can decode ({error})") from error
    with container:
        if not container.streams.video:
            raise ConfigError(f"{field}: {path} has no video stream (is it an audio file?)")
        stream = container.streams.video[0]
        if stream.codec_context.name in TEXT_ART_CODECS:
            raise ConfigError(f"{field}: {path} is not an image or video (ffmpeg reads it as text art)")
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        stream_index = stream.index
    try:
        frames = decode_video(path, start, end)
    except av.error.FFmpegError as error:
        raise ConfigError(f"{field}: decoding {path} failed ({error})") from error
    if end is None or len(frames) < end - start:  # the video ended early: how long is it?
        total = start + len(frames) if len(frames) else count_frames(path, stream_index)
        if total == 0:
            raise ConfigError(f"{field}: {path} contains no decodable video frames")
        _check_range(field, path, start, end, total)
    return Clip(frames=luminance(frames) if as_mask else frames, fps=fps)


def _check_range(field: str, path, start: int, end: Optional[int], total: int) -> None:
    stop = total if end is None else end
    if start >= total or stop > total:
        raise ConfigError(
            f"{field}: frame range [{start}, {end if end is not None else 'end'}) is outside {path}, "
            f"which has {total} frame(s) (valid: 0 <= start_frame < end_frame <= {total})"
        )
