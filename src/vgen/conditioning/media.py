"""Read input images and videos: what a file is (probe) and its pixels (decode), with PIL and PyAV.

Images are decoded with EXIF orientation applied and converted to RGB (16-bit and float images
scaled to 8 bits, not clipped); videos with PyAV (the project's bundled FFmpeg libraries), first
video stream, RGB, turned upright by their display rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vgen.errors import ConfigError
from vgen.media.probe import quarter_turns


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "image" | "video"
    width: int
    height: int
    frames: int  # 1 for an image
    fps: float | None = None


def _image_info(path: Path, still_only: bool) -> MediaInfo | None:
    """The oriented size of an image file, or None when PIL does not recognise it (a video, say) or,
    with ``still_only``, when it is animated (a GIF/APNG mask is a mask video)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if still_only and getattr(image, "n_frames", 1) > 1:
                return None
            image.load()  # decodes: a truncated or corrupt file fails here, not at generation time
            oriented = ImageOps.exif_transpose(image)
            return MediaInfo("image", oriented.width, oriented.height, 1)
    except UnidentifiedImageError:
        return None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:  # the last: a 20000x20000 PNG
        raise ConfigError(f"cannot decode image {path}: {exc}") from None


def _video_info(path: Path) -> MediaInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ConfigError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)  # mkv: no count
        with av.open(str(path)) as container:
            first = next(container.decode(video=0), None)  # proves the codec decodes it
            if first is None:
                raise ConfigError(f"{path}: the video stream holds no frames")
    except av.FFmpegError as exc:
        raise ConfigError(f"cannot decode video {path}: {exc}") from None
    width, height = (first.height, first.width) if quarter_turns(first) % 2 else (first.width, first.height)
    return MediaInfo("video", width, height, int(frames), float(rate) if rate else None)


def decodable_frames(path: str | Path, limit: int) -> int:
    """How many of the first ``limit`` frames of ``path`` decode: a container's frame count is only what
    its header claims (a truncated mp4 keeps it); an error while decoding is a ConfigError."""
    import av

    decoded = 0
    try:
        with av.open(str(path)) as container:
            for decoded, _ in enumerate(container.decode(video=0), start=1):
                if decoded >= limit:
                    break
    except av.FFmpegError as exc:
        raise ConfigError(f"cannot decode video {path} after frame {decoded} (truncated or corrupt?): {exc}") from None
    return decoded


def probe_input(path: str | Path, kind: str) -> MediaInfo:
    """What ``path`` holds; ``kind`` is "image", "video" or "image_or_video" (a mask)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    if kind != "video":
        info = _image_info(path, still_only=kind == "image_or_video")
        if info is not None:
            return info
        if kind == "image":
            raise ConfigError(f"not an image file (PIL cannot identify it): {path}")
    return _video_info(path)


def load_image(path: str | Path):
    """The image at ``path`` as an RGB PIL image, EXIF orientation applied."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return eight_bit(ImageOps.exif_transpose(image)).convert("RGB")


def eight_bit(image):
    """``image`` with a 16-bit or float grey mode (a 16-bit PNG opens as ``I;16``) scaled to ``L``:
    Pillow's own conversion clips every value above 255 to white."""
    if not (image.mode.startswith("I") or image.mode == "F"):
        return image
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float32)
    peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0 if values.max() > 1 else 1.0
    return Image.fromarray(np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def load_video_frames(path: str | Path, count: int, *, loop: bool):
    """The first ``count`` frames of ``path`` as RGB PIL images; a shorter video is looped when ``loop``
    (validation has already refused a too-short video without it)."""
    from PIL import Image

    from vgen.media.probe import decode_video

    frames = decode_video(path, 0, count)
    if len(frames) < count and not loop:
        raise ConfigError(f"{path}: has {len(frames)} frame(s), the job needs {count} (set generation.loop_video=true)")
    return [Image.fromarray(frames[index % len(frames)]) for index in range(count)]
