"""Read media back with PyAV: stream facts for checks/manifests, decoded frames for tests."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from vgen.errors import ConfigError


def _fraction(value) -> float | None:
    return float(value) if value else None


def count_frames(path: str | PurePath, index: int) -> int:
    """Packets of stream ``index`` (one per frame for video), for containers that store no count."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(container.streams[index]) if packet.size)


def probe(path: str | PurePath) -> dict[str, Any]:
    """Format name, duration, global tags and per-stream facts (codec_name, width, height, fps,
    frames, pix_fmt, sample_rate, channels, language, tags) of a media file."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    with av.open(str(path)) as container:
        streams = []
        for stream in container.streams:
            context = stream.codec_context
            info: dict[str, Any] = {
                "index": stream.index,
                "type": stream.type,
                "codec_name": context.codec.canonical_name,
                "language": stream.language,
                "tags": dict(stream.metadata),
                "duration_s": float(stream.duration * stream.time_base) if stream.duration else None,
            }
            if stream.type == "video":
                info.update(width=context.width, height=context.height, pix_fmt=context.pix_fmt,
                            fps=_fraction(stream.average_rate or stream.guessed_rate), frames=stream.frames or None)
            elif stream.type == "audio":
                info.update(sample_rate=context.sample_rate, channels=context.channels)
            streams.append(info)
        result = {
            "format_name": container.format.name,
            "duration_s": container.duration / 1_000_000 if container.duration else None,
            "tags": dict(container.metadata),
            "streams": streams,
        }
    for info in streams:  # containers like mkv/webm store no frame count: count packets
        if info["type"] == "video" and not info["frames"]:
            info["frames"] = count_frames(path, info["index"])
    return result


def quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that make a decoded PyAV frame upright (its display rotation)."""
    return round(getattr(frame, "rotation", 0) / 90) % 4


def decode_video(
    path: str | PurePath, start: int = 0, end: int | None = None, pixel_format: str = "rgb24"
) -> "np.ndarray":  # noqa: F821
    """Frames ``[start, end)`` of the first video stream (``end=None``: to the last) as (F, H, W, 3)
    uint8 RGB (``pixel_format="rgba"``: (F, H, W, 4) RGBA); fewer, possibly none ((0, 0, 0, C)),
    when the video is shorter. PyAV errors propagate. Frames are turned upright as ffmpeg shows them:
    a phone's portrait video stores landscape frames with a display rotation."""
    import av
    import numpy as np

    frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if end is not None and index >= end:
                break
            if index >= start:
                frames.append(np.rot90(frame.to_ndarray(format=pixel_format), quarter_turns(frame)))
    return np.stack(frames) if frames else np.empty((0, 0, 0, 4 if pixel_format == "rgba" else 3), dtype=np.uint8)
