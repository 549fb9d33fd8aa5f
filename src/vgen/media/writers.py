"""Every byte vgen persists goes through here: temp file in the target dir, ``os.replace``, retries.

A write is ``atomic_write(final, produce)``: ``produce(temp_path)`` writes the whole file, then the
temp file is renamed over ``final``. An ``OSError`` anywhere in an attempt removes the temp file,
logs a warning naming the path and retries with exponential backoff; after the last attempt it
becomes :class:`MediaWriteError`. A full disk (ENOSPC, EDQUOT) is not retried: it becomes
:class:`DiskFullError` at once. Other errors (bad input, an encoder refusing its settings) are
not retried. No temp file (nor the staged metadata or audio beside it) survives any failure.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vgen.config.schema import OutputConfig
from vgen.errors import DISK_FULL_ERRNOS, DiskFullError, MediaWriteError, VgenError
from vgen.media import ffmpeg
from vgen.media.formats import AUDIO_FORMATS, CONTAINERS, IMAGE_FORMATS, VIDEO_CODECS, chroma_subsampling
from vgen.media.frames import FrameSource, to_uint8_frame
from vgen.media.metadata_io import (
    EmbeddedMetadata,
    append_wav_chunks,
    ffmetadata_text,
    jpeg_with_comments,
    png_info,
    webp_xmp,
)

LOGGER = logging.getLogger("vgen.media")
NVENC_DEVICE_HINTS = ("libcuda", "nvenc", "no capable devices", "cuda", "openencodesessionex")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3  # attempts after the first
    delay_s: float = 0.2  # doubled after every failed attempt

    @classmethod
    def from_settings(cls, settings: OutputConfig) -> "RetryPolicy":
        return cls(retries=settings.retries, delay_s=settings.retry_delay_s)


def temp_path_for(final: Path) -> Path:
    """A hidden sibling of ``final`` that keeps its suffix (ffmpeg and soundfile read it)."""
    return final.with_name(f".{final.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{final.suffix}")


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _replace(source: Path, target: Path) -> None:
    """The publishing rename (one seam, so tests can inject failures).

    The data is fsynced before the rename and the directory after it, so a manifest row (itself
    fsynced) never points at a file that a power loss could leave empty or truncated.
    """
    _fsync_path(source)
    os.replace(source, target)
    _fsync_path(target.parent)


def atomic_write(
    final: Path,
    produce: Callable[[Path], Any],
    *,
    policy: RetryPolicy = RetryPolicy(),
    logger: logging.Logger | None = None,
) -> Any:
    """Run ``produce(temp)`` and rename temp -> ``final``, retrying on ``OSError``; returns produce's result."""
    logger = logger or LOGGER
    final = Path(final)
    attempts = policy.retries + 1
    for attempt in range(1, attempts + 1):
        temp = temp_path_for(final)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            result = produce(temp)
            _replace(temp, final)
            return result
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                raise DiskFullError(f"could not write {final}: {os.strerror(exc.errno)}") from exc
            logger.warning("writing %s failed (attempt %d/%d): %s", final, attempt, attempts, exc)
            if attempt == attempts:
                raise MediaWriteError(f"could not write {final} after {attempts} attempt(s): {exc}") from exc
            time.sleep(policy.delay_s * 2 ** (attempt - 1))
        finally:
            temp.unlink(missing_ok=True)
    raise AssertionError("unreachable")


def write_text_atomic(final: Path, text: str) -> None:
    """``text`` as ``final`` (UTF-8), whole or not at all: a full disk leaves no empty file under its name."""
    atomic_write(Path(final), lambda temp: temp.write_text(text, encoding="utf-8"))


# ---------------------------------------------------------------- video


def _rate(fps: float) -> str:
    fraction = Fraction(fps).limit_denominator(1001)
    return f"{fraction.numerator}/{fraction.denominator}"


def padded_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """The frame size the pix_fmt's chroma subsampling needs (odd sizes grow by padding)."""
    sub_w, sub_h = chroma_subsampling(pix_fmt)
    return -(-width // sub_w) * sub_w, -(-height // sub_h) * sub_h


def video_codec_args(settings: OutputConfig) -> list[str]:
    codec = VIDEO_CODECS[settings.codec]
    args = ["-c:v", settings.codec, "-pix_fmt", settings.pix_fmt, *codec.fixed_args]
    if settings.crf is not None:
        args += [codec.crf_flag, str(settings.crf), *codec.crf_args]
    if settings.quality is not None:
        args += [codec.quality_flag, str(settings.quality)]
    if settings.preset is not None:
        args += [codec.preset_flag, str(settings.preset)]
    if settings.profile is not None:
        args += [codec.profile_flag, str(settings.profile)]
    if settings.tag:
        args += ["-tag:v", settings.tag]
    return args + list(settings.extra_args)


def audio_codec_args(container: str, languages: Sequence[str | None] = ()) -> list[str]:
    """Encode every audio stream with the container's codec; tag stream N with ``languages[N]``."""
    spec = CONTAINERS[container]
    tags = [arg for index, language in enumerate(languages) if language
            for arg in ("-metadata:s:a:" + str(index), f"language={language}")]
    return ["-c:a", spec.audio_encoder, *spec.audio_args, *tags]


@dataclass(frozen=True)
class EncodedVideo:
    width: int
    height: int
    frames: int
    source_width: int
    source_height: int


class _AudioInput:
    """An audio track for muxing: a file path, or ``(samples, sample_rate)`` staged as a float WAV."""

    def __init__(self, audio: Any, directory: Path):
        self._staged: Path | None = None
        if isinstance(audio, (str, os.PathLike)):
            self.path = Path(audio)
            if not self.path.is_file():
                raise MediaWriteError(f"audio file to mux not found: {self.path}")
            return
        if isinstance(audio, dict):
            audio = (audio["samples"], audio["sample_rate"])
        samples, rate = audio
        import soundfile

        wav = io.BytesIO()  # encoded in memory: libsndfile would report a full disk as "System error"
        soundfile.write(wav, _as_audio_array(samples), int(rate), format="WAV", subtype="FLOAT")
        handle, name = tempfile.mkstemp(prefix=".vgen-audio-", suffix=".wav", dir=directory)
        self._staged = self.path = Path(name)
        try:
            with os.fdopen(handle, "wb") as staged:
                staged.write(wav.getbuffer())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._staged is not None:
            self._staged.unlink(missing_ok=True)


class _AudioTracks:
    """Audio to mux: one track (a path or ``(samples, rate)``) with an optional ``language``, or a
    list of tracks with a list of languages (None entries: untagged). Staged WAVs are removed on close.

    Staged inside an attempt of :func:`atomic_write` (in the temp file's directory), so a failure
    while staging is handled like any other failed write.
    """

    def __init__(self, audio: Any, language: Any, directory: Path):
        tracks = audio if isinstance(audio, list) else [audio]
        languages = list(language) if isinstance(language, (list, tuple)) else [language] * len(tracks)
        if len(languages) != len(tracks):
            raise MediaWriteError(f"{len(tracks)} audio track(s) but {len(languages)} language(s)")
        self.languages: list[str | None] = languages
        self.inputs: list[_AudioInput] = []
        try:
            for track in tracks:
                self.inputs.append(_AudioInput(track, directory))
        except BaseException:
            self.close()
            raise

    @property
    def paths(self) -> list[Path]:
        return [item.path for item in self.inputs]

    def close(self) -> None:
        for item in self.inputs:
            item.close()

    def __enter__(self) -> "_AudioTracks":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _hardware_hint(settings: OutputConfig, message: str) -> str:
    if VIDEO_CODECS[settings.codec].hardware and any(h in message.lower() for h in NVENC_DEVICE_HINTS):
        return (
            f"output.codec {settings.codec}: NVENC encoding failed; no usable NVIDIA GPU/driver here "
            f"(choose a CPU preset such as output=mp4_h264). ffmpeg said: {message}"
        )
    return message


def _encode_video(
    source: FrameSource,
    temp: Path,
    *,
    settings: OutputConfig,
    fps: float,
    metadata: EmbeddedMetadata | None,
    audio: _AudioTracks | None,
) -> EncodedVideo:
    width, height = source.width, source.height
    out_w, out_h = padded_size(width, height, settings.pix_fmt)
    container = CONTAINERS[settings.container]
    inputs = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", _rate(fps), "-i", "pipe:0"]
    maps = ["-map", "0:v:0"]
    meta_file = None
    audio_paths = audio.paths if audio is not None else []
    for number, audio_path in enumerate(audio_paths, start=1):
        inputs += ["-i", str(audio_path)]
        maps += ["-map", f"{number}:a:0"]
    if metadata is not None:
        meta_file = temp.with_name(temp.name + ".ffmeta")  # written below, removed whatever happens
        inputs += ["-f", "ffmetadata", "-i", str(meta_file)]
        maps += ["-map_metadata", str(1 + len(audio_paths))]
    filters = ["-vf", f"pad={out_w}:{out_h}:0:0"] if (out_w, out_h) != (width, height) else []
    audio_args = audio_codec_args(settings.container, audio.languages) if audio is not None else []
    command = [
        ffmpeg.ffmpeg_exe(), *ffmpeg.BASE_ARGS, *inputs, *maps, *filters, *video_codec_args(settings), *audio_args,
        *container.muxer_args, "-f", container.muxer, str(temp),
    ]
    try:
        if meta_file is not None:
            meta_file.write_text(ffmetadata_text(metadata), encoding="utf-8")
        count, code, message = _run_encoder(command, source, temp, width, height)
    finally:
        if meta_file is not None:
            meta_file.unlink(missing_ok=True)
    if code != 0:
        ffmpeg.raise_if_disk_full(message, temp)
        raise VgenError(_hardware_hint(settings, f"ffmpeg ({settings.codec}) failed writing {temp.name}: {message}"))
    return EncodedVideo(out_w, out_h, count, width, height)


def _run_encoder(command: list[str], source: FrameSource, temp: Path, width: int, height: int) -> tuple[int, int, str]:
    """Pipe ``source``'s frames into the ffmpeg ``command``; (frames written, exit code, stderr tail)."""
    count = 0
    with tempfile.TemporaryFile() as stderr:
        # Own session: a terminal Ctrl-C reaches vgen (which drains this write), not the encoder itself.
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
                                env=ffmpeg.ffmpeg_env(), start_new_session=True)
        try:
            try:
                for frame in source:
                    if frame.shape[:2] != (height, width):
                        raise MediaWriteError(
                            f"{temp.name}: frame {count} is {frame.shape[1]}x{frame.shape[0]}, expected {width}x{height}"
                        )
                    proc.stdin.write(frame.data)
                    count += 1
            except BrokenPipeError:
                pass  # ffmpeg exited early; its stderr says why
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        stderr.seek(0)
        message = ffmpeg.stderr_tail(stderr.read().decode("utf-8", "replace")) if code != 0 else ""
    return count, code, message


def write_video(
    frames: Any,
    path: Path,
    *,
    settings: OutputConfig,
    fps: float,
    metadata: EmbeddedMetadata | None = None,
    audio: Any = None,
    audio_language: str | None = None,
    policy: RetryPolicy = RetryPolicy(),
    logger: logging.Logger | None = None,
) -> EncodedVideo:
    """Encode ``frames`` to ``path`` (suffix must match the container), optionally muxing ``audio``
    (one track or a list of tracks, see :class:`_AudioTracks`)."""
    source = frames if isinstance(frames, FrameSource) else FrameSource(frames)

    def produce(temp: Path) -> EncodedVideo:
        if audio is None:
            return _encode_video(source, temp, settings=settings, fps=fps, metadata=metadata, audio=None)
        with _AudioTracks(audio, audio_language, temp.parent) as tracks:
            return _encode_video(source, temp, settings=settings, fps=fps, metadata=metadata, audio=tracks)

    return atomic_write(Path(path), produce, policy=policy, logger=logger)


def mux_audio(
    video_path: Path,
    audio: Any,
    *,
    out_path: Path | None = None,
    language: str | list[str | None] | None = None,
    policy: RetryPolicy = RetryPolicy(),
    logger: logging.Logger | None = None,
) -> Path:
    """Put ``audio`` (a file path or ``(samples, sample_rate)``, or a list of them with a list of
    ``language`` tags) into an existing video, copying its video stream and tags; writes ``out_path``
    (default: replaces ``video_path``) atomically.

    Audio codec by container: aac for mp4/mov, opus for webm, flac for mkv (every track).
    """
    video_path = Path(video_path)
    out_path = Path(out_path or video_path)
    container = next((c for c in CONTAINERS.values() if c.suffix == video_path.suffix.lower()), None)
    if container is None:
        raise MediaWriteError(f"cannot mux audio into {video_path}: unknown container {video_path.suffix!r}")

    def produce(temp: Path) -> None:
        with _AudioTracks(audio, language, temp.parent) as tracks:
            inputs = [arg for track_path in tracks.paths for arg in ("-i", str(track_path))]
            maps = [arg for number in range(1, len(tracks.paths) + 1) for arg in ("-map", f"{number}:a:0")]
            ffmpeg.run_ffmpeg(
                ["-i", str(video_path), *inputs, "-map", "0:v:0", *maps,
                 "-map_metadata", "0", "-c:v", "copy", *audio_codec_args(container.name, tracks.languages),
                 *container.muxer_args, "-f", container.muxer, str(temp)],
                what=out_path,
            )

    atomic_write(out_path, produce, policy=policy, logger=logger)
    return out_path


# ---------------------------------------------------------------- images, audio, archives, sidecars


def to_pil_image(image: Any):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    return Image.fromarray(to_uint8_frame(image, channels=(1, 3, 4)))


def write_image(
    image: Any,
    path: Path,
    *,
    settings: OutputConfig,
    metadata: EmbeddedMetadata | None = None,
    policy: RetryPolicy = RetryPolicy(),
    logger: logging.Logger | None = None,
):
    """Write a PIL image or HxWx{1,3,4} array as ``settings.image_format``; returns the PIL image written."""
    pil_format = IMAGE_FORMATS[settings.image_format][0]
    picture = to_pil_image(image)
    if pil_format == "JPEG" and picture.mode not in ("RGB", "L"):
        picture = picture.convert("RGB")

    def produce(temp: Path) -> None:
        if pil_format == "PNG":
            picture.save(temp, "PNG", pnginfo=png_info(metadata) if metadata else None)
        elif pil_format == "JPEG":
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=settings.image_quality)
            data = buffer.getvalue()
            temp.write_bytes(jpeg_with_comments(data, metadata) if metadata else data)
        else:
            extra = {"xmp": webp_xmp(metadata)} if metadata else {}
            picture.save(temp, "WEBP", quality=settings.image_quality, **extra)

    atomic_write(Path(path), produce, policy=policy, logger=logger)
    return picture


def _as_audio_array(samples: Any):
    import numpy as np

    if hasattr(samples, "detach"):
        samples = samples.detach().cpu().numpy()
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise MediaWriteError(f"audio samples must be (N,) or (N, C), got shape {array.shape}")
    return array


def write_audio(
    samples: Any,
    path: Path,
    *,
    sample_rate: int,
    settings: OutputConfig,
    metadata: EmbeddedMetadata | None = None,
    policy: RetryPolicy = RetryPolicy(),
    logger: logging.Logger | None = None,
) -> tuple[int, int, int]:
    """Write float samples as ``settings.audio_format``; returns (sample_rate, channels, frames) written."""
    import soundfile

    array = _as_audio_array(samples)
    rate = int(sample_rate)
    if settings.audio_sample_rate and settings.audio_sample_rate != rate:
        array, rate = ffmpeg.resample_audio(array, rate, settings.audio_sample_rate), settings.audio_sample_rate
    sf_format = AUDIO_FORMATS[settings.audio_format][0]

    def produce(temp: Path) -> None:
        with soundfile.SoundFile(temp, "w", samplerate=rate, channels=array.shape[1], format=sf_format,
                                 subtype=settings.audio_subtype) as handle:
            if metadata and sf_format != "WAV":
                handle.comment = metadata.entries["metadata"]
            handle.write(array)
        if metadata and sf_format == "WAV":
            append_wav_chunks(temp, metadata)

    atomic_write(Path(path), produce, policy=policy, logger=logger)
    return rate, array.shape[1], array.shape[0]


def write_archive(
    path: Path,
    members: Callable[[], Iterable[tuple[str, bytes]]],
    *,
    policy: RetryPolicy = RetryPolicy(),
    logger: logging.Logger | None = None,
) -> int:
    """A ZIP of ``members()`` (called once per attempt, streamed one member at a time); returns the count."""
    import zipfile

    def produce(temp: Path) -> int:
        count = 0
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in members():
                archive.writestr(name, data)
                count += 1
        return count

    return atomic_write(Path(path), produce, policy=policy, logger=logger)


def write_metadata_bundle(
    path: Path,
    document: dict,
    *,
    policy: RetryPolicy = RetryPolicy(),
    logger: logging.Logger | None = None,
) -> Path:
    """A JSON sidecar (indent 2), written atomically like the media it describes."""
    import json

    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    atomic_write(Path(path), lambda temp: temp.write_text(text, encoding="utf-8"), policy=policy, logger=logger)
    return Path(path)
