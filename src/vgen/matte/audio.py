"""Probe and decode every audio stream of a source file (PyAV for probing, ffmpeg for decoding).

The bundled ffmpeg (``imageio_ffmpeg.get_ffmpeg_exe()``) ships without ffprobe, so stream facts
come from PyAV; decoding pipes raw float32 PCM out of ffmpeg.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from vgen.errors import ConfigError, VgenError

_DURATION_TAG = re.compile(r"^(\d+):(\d+):(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream: ``index`` is the container stream index, ``audio_index`` its position
    among audio streams (ffmpeg's ``0:a:N``)."""

    index: int
    audio_index: int
    codec: str
    sample_rate: int
    channels: int
    language: Optional[str]
    duration: Optional[float]  # seconds


def probe_audio_streams(path: str) -> List[AudioStreamInfo]:
    """Every audio stream of ``path`` (empty for a still image or a silent video)."""
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise ConfigError(f"video: cannot probe audio of {path} ({error})") from error
    with container:
        container_duration = container.duration / 1_000_000 if container.duration else None
        return [
            AudioStreamInfo(
                index=stream.index,
                audio_index=position,
                codec=stream.codec_context.name,
                sample_rate=int(stream.codec_context.sample_rate or stream.rate or 0),
                channels=int(stream.codec_context.channels),
                language=_language(stream),
                duration=_duration(stream, container_duration),
            )
            for position, stream in enumerate(container.streams.audio)
        ]


def decode_audio_stream(
    path: str, stream: AudioStreamInfo, start_s: float = 0.0, duration_s: Optional[float] = None
) -> np.ndarray:
    """Samples of one audio stream as float32 ``(N, channels)`` at its own sample rate,
    optionally only ``[start_s, start_s + duration_s)`` (used to follow a video frame range)."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error"]
    if start_s > 0:
        command += ["-ss", f"{start_s:.6f}"]
    command += ["-i", str(path)]
    if duration_s is not None:
        command += ["-t", f"{duration_s:.6f}"]
    command += [
        "-map", f"0:a:{stream.audio_index}",
        "-f", "f32le", "-acodec", "pcm_f32le",
        "-ac", str(stream.channels), "-ar", str(stream.sample_rate), "-",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise VgenError(f"decoding audio stream {stream.audio_index} of {path} failed: {message}")
    samples = np.frombuffer(result.stdout, dtype="<f4")
    return samples.reshape(-1, stream.channels).astype(np.float32, copy=False)


def _language(stream) -> Optional[str]:
    language = stream.metadata.get("language") or stream.metadata.get("LANGUAGE")
    return None if language in (None, "", "und") else language


def _duration(stream, container_duration: Optional[float]) -> Optional[float]:
    """Stream duration, else Matroska's per-stream DURATION tag, else the container's."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = _DURATION_TAG.match(stream.metadata.get("DURATION", "") or stream.metadata.get("duration", ""))
    if tag:
        hours, minutes, seconds = tag.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return container_duration
