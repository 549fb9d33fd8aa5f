"""The ffmpeg binary shipped by imageio-ffmpeg: locating it, asking what it can encode, running it."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

from vgen.errors import DISK_FULL_ERRNOS, VgenError

# Quiet the encoders that log on their own channel (SVT-AV1 prints its banner to stderr).
ENCODER_ENV = {"SVT_LOG": "1"}
BASE_ARGS = ("-hide_banner", "-loglevel", "error", "-nostdin", "-y")


class FfmpegError(VgenError):
    """ffmpeg exited non-zero; the message carries the tail of its stderr."""


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_env() -> dict[str, str]:
    return {**os.environ, **ENCODER_ENV}


@functools.lru_cache(maxsize=1)
def available_encoders() -> frozenset[str]:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True, check=True)
    names = set()
    for line in out.stdout.splitlines():
        match = re.match(r"^\s*[VAS][A-Z.]{5}\s+(\S+)\s", line)
        if match:
            names.add(match.group(1))
    return frozenset(names)


@functools.lru_cache(maxsize=None)
def encoder_pix_fmts(encoder: str) -> tuple[str, ...]:
    """Pixel formats ``encoder`` accepts in this ffmpeg build (empty when ffmpeg does not say)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-h", f"encoder={encoder}"], capture_output=True, text=True, check=False
    )
    match = re.search(r"Supported pixel formats:\s*(.+)", out.stdout)
    return tuple(match.group(1).split()) if match else ()


def stderr_tail(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def raise_if_disk_full(stderr: str, path: Path | str) -> None:
    """ffmpeg exits 1 whatever went wrong; a full disk shows only in its stderr. Raise it as the
    ``OSError`` it was, so the writer stops at once instead of retrying or calling it an encoder error."""
    for code in DISK_FULL_ERRNOS:
        if os.strerror(code) in stderr:
            raise OSError(code, os.strerror(code), str(path))


def run_ffmpeg(args: list[str], *, what: Path | str) -> None:
    """Run ffmpeg with ``args`` (after the base flags); raise :class:`FfmpegError` naming ``what``
    (``OSError`` when the disk is full)."""
    proc = subprocess.run(
        [ffmpeg_exe(), *BASE_ARGS, *args], capture_output=True, text=True, env=ffmpeg_env(), check=False,
        start_new_session=True,  # like the encoder: Ctrl-C stops vgen gracefully, not this child
    )
    if proc.returncode != 0:
        raise_if_disk_full(proc.stderr, what)
        raise FfmpegError(f"ffmpeg failed writing {what}: {stderr_tail(proc.stderr)}")


def resample_audio(samples, rate_in: int, rate_out: int):
    """Resample float32 ``samples`` (N, C) with ffmpeg's resampler (soxr quality)."""
    import numpy as np

    channels = samples.shape[1]
    proc = subprocess.run(
        [
            ffmpeg_exe(), *BASE_ARGS,
            "-f", "f32le", "-ar", str(rate_in), "-ac", str(channels), "-i", "pipe:0",
            "-af", "aresample=resampler=soxr", "-ar", str(rate_out), "-f", "f32le", "pipe:1",
        ],
        input=np.ascontiguousarray(samples, dtype="<f4").tobytes(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise FfmpegError(f"ffmpeg failed resampling audio {rate_in} -> {rate_out} Hz: {stderr_tail(proc.stderr.decode(errors='replace'))}")
    return np.frombuffer(proc.stdout, dtype="<f4").reshape(-1, channels).copy()
