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
MASK_CHANNELS = ("r", "g", "b", "a", "luma")  # input.mask_channel; null = grey mask or RGBA alpha
GREY_TOLERANCE = 32  # uint8 levels the channels of a grey mask pixel may differ by


@dataclass(frozen=True)
class Clip:
    """Decoded frames ``[start, end)`` of a source."""

    frames: np.ndarray  # (F, H, W, 3) uint8 RGB, or (F, H, W) float32 in [0, 1] for masks
    fps: Optional[float]  # None for a still image


def read_clip(
    path: str, field: str, start: int = 0, end: Optional[int] = None, as_mask: bool = False,
    mask_channel: Optional[str] = None,
) -> Clip:
    """Frames ``[start, end)`` of the image or video at ``path`` (``end=None``: to the last frame).

    ``as_mask`` converts each frame to a single channel in [0, 1] (see :func:`mask_from_pixels`,
    ``mask_channel`` picks the channel); a still mask image is the mask of the range's first frame,
    so it ignores the range.
    """
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"{field}: file not found: {path}")
    still = _open_still_image(source, field)
    if still is not None:
        if as_mask:
            return Clip(frames=mask_from_pixels(still, f"{field} ({path})", mask_channel)[None], fps=None)
        _check_range(field, path, start, end, total=1)
        return Clip(frames=_rgb(still)[None], fps=None)
    return _read_video(source, field, start, end, as_mask, mask_channel)


def mask_from_pixels(image, where: str, channel: Optional[str] = None) -> np.ndarray:
    """A Pillow image as a float32 (H, W) mask in [0, 1].

    Single-channel images are scaled by their bit depth (every ``channel`` but ``a`` reads that
    one channel); images with colour channels go through :func:`mask_from_colour`.
    """
    mode = image.mode
    if "A" in image.getbands() or mode == "P":
        return mask_from_colour(np.asarray(image.convert("RGBA"), dtype=np.uint8), where, channel)
    if channel == "a":
        raise _no_alpha(where)
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
        return mask_from_colour(_rgb(image), where, channel)
    raise ConfigError(f"{where}: unsupported mask image mode {mode!r}; use a grayscale, RGB or RGBA image")


def mask_from_colour(pixels: np.ndarray, where: str, channel: Optional[str] = None) -> np.ndarray:
    """uint8 RGB ``(..., 3)`` or RGBA ``(..., 4)`` pixels -> float32 mask in [0, 1].

    ``channel`` None: a varying alpha is the mask; otherwise (no alpha, or a constant one: an
    opaque RGBA export) the pixels must be grey (a colour mask is ambiguous, e.g. a red disc has
    little brightness), and their brightness is the mask. ``r``/``g``/``b``/``a``/``luma`` read
    that channel whatever the colours are.
    """
    has_alpha = pixels.shape[-1] == 4
    if channel == "a":
        if not has_alpha:
            raise _no_alpha(where)
        return pixels[..., 3].astype(np.float32) / 255.0
    if channel is None and has_alpha and pixels[..., 3].min() != pixels[..., 3].max():
        return pixels[..., 3].astype(np.float32) / 255.0
    rgb = pixels[..., :3]
    if channel in ("r", "g", "b"):
        return rgb[..., "rgb".index(channel)].astype(np.float32) / 255.0
    if channel is None and is_colour(rgb):
        raise ConfigError(
            f"{where} is a colour image; a mask is grey or black/white (white = subject), or an RGBA image "
            "whose alpha marks the subject. To use it anyway, pick the channel that holds the mask: "
            "input.mask_channel=r|g|b|a|luma"
        )
    return luminance(rgb)


def _no_alpha(where: str) -> ConfigError:
    return ConfigError(f"{where}: input.mask_channel=a but it has no alpha channel")


def is_colour(rgb: np.ndarray) -> bool:
    """Whether any pixel's channels differ by more than :data:`GREY_TOLERANCE` levels (grey
    pixels stay within it even after lossy 4:2:0 video coding)."""
    return bool(np.any(rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1) > GREY_TOLERANCE))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(..., 3)`` -> float32 luminance in [0, 1]."""
    return (rgb.astype(np.float32) @ LUMA_WEIGHTS) / 255.0


def _rgb(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _open_still_image(path: Path, field: str):
    """The decoded image, upright by its EXIF orientation (as viewers show a phone photo), if ``path``
    is a single-frame image Pillow reads, else None."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError):
        return None
    except Image.DecompressionBombError as error:  # a 20000x20000 PNG: refuse it before decoding
        raise ConfigError(f"{field}: {path}: {error}") from None
    if getattr(image, "n_frames", 1) > 1:
        image.close()
        return None  # animated GIF/PNG/WebP: decode as a video
    with image:
        image.load()
        return ImageOps.exif_transpose(image)


def _read_video(
    path: Path, field: str, start: int, end: Optional[int], as_mask: bool, mask_channel: Optional[str]
) -> Clip:
    """Check the file is a video PyAV decodes (one clear error per failure), then decode the range
    (a mask video with an alpha channel as RGBA, so that its alpha can be the mask)."""
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
        pixel_format = "rgba" if as_mask and _has_alpha(stream) else "rgb24"
    try:
        frames = decode_video(path, start, end, pixel_format=pixel_format)
    except av.error.FFmpegError as error:
        raise ConfigError(f"{field}: decoding {path} failed ({error})") from error
    if end is None or len(frames) < end - start:  # the video ended early: how long is it?
        total = start + len(frames) if len(frames) else count_frames(path, stream_index)
        if total == 0:
            raise ConfigError(f"{field}: {path} contains no decodable video frames")
        _check_range(field, path, start, end, total)
    return Clip(frames=mask_from_colour(frames, f"{field} ({path})", mask_channel) if as_mask else frames, fps=fps)


def _has_alpha(stream) -> bool:
    import av

    pix_fmt = stream.codec_context.pix_fmt
    return bool(pix_fmt) and any(component.is_alpha for component in av.VideoFormat(pix_fmt).components)


def _check_range(field: str, path, start: int, end: Optional[int], total: int) -> None:
    stop = total if end is None else end
    if start >= total or stop > total:
        raise ConfigError(
            f"{field}: frame range [{start}, {end if end is not None else 'end'}) is outside {path}, "
            f"which has {total} frame(s) (valid: 0 <= start_frame < end_frame <= {total})"
        )
