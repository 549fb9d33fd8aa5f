"""The report's own files under ``report_assets/``: a poster JPEG per artifact (at most 320 px wide)
and, with ``report.previews=true``, a small h264 preview of each video a browser cannot play.

Both are named by the artifact's sha256, so a file already made for the same content is reused
(rewriting a report after a resumed run only makes posters for the new artifacts). Made with the
ffmpeg bundled in imageio-ffmpeg, a few at a time, each written under a temporary name first.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgen.hashing import file_sha256
from vgen.media.ffmpeg import FfmpegError, run_ffmpeg

log = logging.getLogger(__name__)
ASSETS_DIR_NAME = "report_assets"
POSTER_WIDTH = 320
PREVIEW_WIDTH = 480
# What Chromium decodes: per container, the codec families it plays (h264 only as 8-bit 4:2:0).
PLAYABLE = {"mp4": {"h264", "vp9", "av1"}, "webm": {"vp8", "vp9", "av1"}}
H264_PLAYABLE_PIX_FMTS = {"yuv420p", "yuvj420p", None}
CODEC_NAMES = {"hevc": "h265 (hevc)", "prores": "ProRes", "ffv1": "FFV1"}


def playback_problem(artifact: dict[str, Any]) -> str | None:
    """Why a browser cannot play this video artifact, or None when it can."""
    container, codec = artifact.get("container"), artifact.get("codec")
    if codec not in PLAYABLE.get(container, ()):
        return f"browsers do not play {CODEC_NAMES.get(codec, codec)} in .{container}"
    pix_fmt = (artifact.get("extra") or {}).get("pix_fmt")
    if codec == "h264" and pix_fmt not in H264_PLAYABLE_PIX_FMTS:
        return f"browsers do not play h264 with pixel format {pix_fmt}"
    return None


@dataclass(frozen=True)
class AssetTask:
    source: Path
    target: Path
    kind: str  # "poster-video", "poster-image", "poster-audio", "preview"
    seek_s: float = 0.0


def content_key(artifact: dict[str, Any], source: Path) -> str:
    return artifact.get("sha256") or file_sha256(source)


def poster_task(assets_dir: Path, artifact: dict[str, Any], source: Path) -> AssetTask | None:
    """The poster of an artifact (None for kinds without one, e.g. a mask archive)."""
    kind = artifact.get("kind")
    if kind not in ("video", "image", "audio"):
        return None
    target = assets_dir / "posters" / f"{content_key(artifact, source)}.jpg"
    seek = (artifact.get("duration_s") or 0.0) / 2 if kind == "video" else 0.0  # the middle frame
    return AssetTask(source, target, f"poster-{kind}", seek)


def preview_task(assets_dir: Path, artifact: dict[str, Any], source: Path) -> AssetTask:
    return AssetTask(source, assets_dir / "previews" / f"{content_key(artifact, source)}.mp4", "preview")


def ffmpeg_args(task: AssetTask, output: Path) -> list[str]:
    fit = f"scale=w='min({POSTER_WIDTH},iw)':h=-2"
    if task.kind == "poster-video":
        return ["-ss", f"{task.seek_s:.3f}", "-i", str(task.source), "-frames:v", "1", "-vf", fit,
                "-q:v", "4", "-threads", "1", str(output)]
    if task.kind == "poster-image":
        return ["-i", str(task.source), "-frames:v", "1", "-vf", fit, "-q:v", "4", str(output)]
    if task.kind == "poster-audio":
        return ["-i", str(task.source), "-filter_complex", f"showwavespic=s={POSTER_WIDTH}x120:colors=0x3366cc",
                "-frames:v", "1", "-q:v", "4", str(output)]
    return ["-i", str(task.source), "-an", "-vf", f"scale=w='min({PREVIEW_WIDTH},iw)':h=-2,format=yuv420p",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-movflags", "+faststart",
            "-threads", "1", "-f", "mp4", str(output)]


def make_asset(task: AssetTask) -> str | None:
    """Write one asset unless it exists; the error text when ffmpeg could not."""
    if task.target.is_file():
        return None
    task.target.parent.mkdir(parents=True, exist_ok=True)
    partial = task.target.with_name(f".{task.target.stem}.{os.getpid()}.partial{task.target.suffix}")
    try:
        run_ffmpeg(ffmpeg_args(task, partial), what=task.target)
        os.replace(partial, task.target)
    except FfmpegError as error:
        log.warning("report: no %s for %s: %s", task.kind, task.source, error)
        return str(error)
    finally:
        partial.unlink(missing_ok=True)  # a full disk raises OSError: no partial file stays behind either
    return None


def make_assets(tasks: list[AssetTask], workers: int | None = None) -> dict[Path, str]:
    """Make every missing asset, ``workers`` ffmpeg processes at a time; failures by target."""
    unique = list({task.target: task for task in tasks}.values())
    workers = workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(make_asset, unique)
        return {task.target: error for task, error in zip(unique, results) if error}
