"""What vgen can write: video containers and codecs, image and audio formats (pure tables)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Container:
    name: str
    muxer: str  # ffmpeg -f name
    suffix: str
    codecs: frozenset[str]  # codec families it can hold
    audio_encoder: str  # used when muxing audio into it
    audio_args: tuple[str, ...] = ()
    muxer_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class VideoCodec:
    encoder: str  # ffmpeg encoder name (what output.codec holds)
    family: str  # codec name as probed (h264, hevc, ...)
    crf_flag: str | None = None  # how crf reaches the encoder (None: crf not supported)
    crf_range: tuple[int, int] | None = None
    quality_flag: str | None = None  # how output.quality reaches the encoder
    quality_range: tuple[int, int] | None = None
    fixed_args: tuple[str, ...] = ()  # always passed (e.g. constant-quality mode for vp9)
    crf_args: tuple[str, ...] = ()  # passed together with crf
    preset_flag: str | None = "-preset"
    presets: tuple[str, ...] = ()  # the values output.preset may take (through preset_flag)
    profile_flag: str | None = "-profile:v"
    hardware: bool = False  # needs a device (NVENC): checked by trying, not by validation
    fallback: str | None = None  # same-family encoder used when this ffmpeg build lacks this one


MOV_FLAGS = ("-movflags", "+use_metadata_tags+faststart")
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7", "slow", "medium", "fast")


def _int_presets(low: int, high: int) -> tuple[str, ...]:
    return tuple(str(n) for n in range(low, high + 1))


CONTAINERS: dict[str, Container] = {
    c.name: c
    for c in (
        Container("mp4", "mp4", ".mp4", frozenset({"h264", "hevc", "av1"}), "aac", ("-b:a", "192k"), MOV_FLAGS),
        Container("mov", "mov", ".mov", frozenset({"h264", "hevc", "prores"}), "aac", ("-b:a", "192k"), MOV_FLAGS),
        Container("mkv", "matroska", ".mkv", frozenset({"h264", "hevc", "vp9", "av1", "prores", "ffv1"}), "flac"),
        # libopus only takes 48/24/16/12/8 kHz: resample to 48 kHz.
        Container("webm", "webm", ".webm", frozenset({"vp9", "av1"}), "libopus", ("-b:a", "128k", "-ar", "48000")),
    )
}

VIDEO_CODECS: dict[str, VideoCodec] = {
    c.encoder: c
    for c in (
        VideoCodec("libx264", "h264", "-crf", (0, 51), fixed_args=("-x264-params", "log-level=error"),
                   presets=X26X_PRESETS),
        VideoCodec("libx265", "hevc", "-crf", (0, 51), fixed_args=("-x265-params", "log-level=error"),
                   presets=X26X_PRESETS),
        # vp9: preset is the deadline (good/best/realtime); crf needs -b:v 0 for constant quality.
        VideoCodec("libvpx-vp9", "vp9", "-crf", (0, 63), crf_args=("-b:v", "0"), preset_flag="-deadline",
                   presets=("good", "best", "realtime")),
        VideoCodec("libsvtav1", "av1", "-crf", (1, 63), presets=_int_presets(-2, 13), fallback="libaom-av1"),
        # libaom: preset is the speed (-cpu-used 0..8).
        VideoCodec("libaom-av1", "av1", "-crf", (0, 63), crf_args=("-b:v", "0"), preset_flag="-cpu-used",
                   presets=_int_presets(0, 8), profile_flag=None),
        # prores_ks: profile 0..5 (proxy, lt, standard, hq, 4444, 4444xq); quality = qscale (lower is better).
        VideoCodec("prores_ks", "prores", quality_flag="-qscale:v", quality_range=(0, 32), preset_flag=None,
                   fixed_args=("-vendor", "apl0")),
        VideoCodec("ffv1", "ffv1", preset_flag=None, profile_flag=None, fixed_args=("-level", "3")),  # lossless
        VideoCodec("h264_nvenc", "h264", "-cq", (0, 51), crf_args=("-rc", "vbr", "-b:v", "0"), hardware=True,
                   presets=NVENC_PRESETS),
        VideoCodec("hevc_nvenc", "hevc", "-cq", (0, 51), crf_args=("-rc", "vbr", "-b:v", "0"), hardware=True,
                   presets=NVENC_PRESETS),
        VideoCodec("av1_nvenc", "av1", "-cq", (0, 51), crf_args=("-rc", "vbr", "-b:v", "0"), hardware=True,
                   presets=NVENC_PRESETS),
    )
}

IMAGE_FORMATS: dict[str, tuple[str, str]] = {  # output.image_format -> (Pillow format, suffix)
    "png": ("PNG", ".png"),
    "jpeg": ("JPEG", ".jpg"),
    "jpg": ("JPEG", ".jpg"),
    "webp": ("WEBP", ".webp"),
}

AUDIO_FORMATS: dict[str, tuple[str, str]] = {  # output.audio_format -> (soundfile format, suffix)
    "wav": ("WAV", ".wav"),
    "flac": ("FLAC", ".flac"),
    "ogg": ("OGG", ".ogg"),
}


def chroma_subsampling(pix_fmt: str) -> tuple[int, int]:
    """(horizontal, vertical) chroma subsampling factor of a planar YUV pix_fmt; (1, 1) for the rest.

    Frame sizes are padded to multiples of these so any encoder accepts them.
    """
    if re.match(r"^(nv12|nv21|p01[026])", pix_fmt):
        return 2, 2
    if re.match(r"^(nv16|nv20|p21[026])", pix_fmt):
        return 2, 1
    match = re.match(r"^yuva?j?(4\d\d)", pix_fmt)
    return {"420": (2, 2), "422": (2, 1), "440": (1, 2), "411": (4, 1), "410": (4, 4)}.get(
        match.group(1) if match else "", (1, 1)
    )
