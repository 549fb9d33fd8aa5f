"""``python -m vgen.matte``: matte videos (or images) with a mask or prompts, persist the outputs, log one
manifest row per clip (``input.video``, or several clips from ``input.videos``/``input.csv``: one queue,
the models loaded once).

Writes under ``<run_dir>/mask_outputs/``: the foreground (over black, or green with
``mask_type=greenscreen``), the alpha matte (lossless by default, see :func:`alpha_output_settings`),
an RGBA PNG ZIP (``output.save_masks=true``), the prompt mask (prompts only), every
source audio track as its own file, and the source audio re-attached to the foreground video
(``attach_audio=true``); then one row per clip in ``<run_dir>/manifests/run_history.jsonl``.

Exit codes: 0 success, 2 bad input (every clip's inputs are checked first) or a missing checkpoint
(one-line message, nothing written), 1 a clip failed (its row has status ``error``; the others run).
"""

from __future__ import annotations

import glob
import logging
import math
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vgen import __version__
from vgen.cli import RESOLVED_CONFIG_NAME, debug_enabled, launch, run_hydra_task
from vgen.config.locate import config_dir
from vgen.config.registry import register_all
from vgen.errors import ConfigError, VgenError
from vgen.hashing import canonical_json, sha256_hex
from vgen.matte.request import MatteRequest
from vgen.media.formats import AUDIO_FORMATS, CONTAINERS, IMAGE_FORMATS

log = logging.getLogger("vgen.matte")
MASK_SUBDIR = "mask_outputs"
REQUEST_OPTION_FIELDS = ("target_size", "target", "mask_type", "erode_kernel", "dilate_kernel", "resize_mask", "device",
                         "temporal_strength", "temporal_motion_threshold")
# alpha_output=lossless: one 8-bit grey plane in FFV1 (a still: PNG), decoded bit for bit as computed.
LOSSLESS_ALPHA = {
    "name": "mkv_ffv1_gray", "container": "mkv", "codec": "ffv1", "pix_fmt": "gray", "crf": None, "quality": None,
    "preset": None, "profile": None, "tag": None, "extra_args": [], "image_format": "png",
}  # fmt: skip
ALPHA_OUTPUTS = ("lossless", "output")

register_all()


# --------------------------------------------------------------------------- config -> request


def requests_from_config(cfg: DictConfig) -> list[MatteRequest]:
    """One validated :class:`MatteRequest` per clip of ``cfg`` (see :mod:`vgen.matte.clips`; input
    paths made absolute: the manifest must name the file)."""
    from vgen.matte.clips import clip_inputs
    from vgen.matte.request import validate_request

    options = {name: cfg[name] for name in REQUEST_OPTION_FIELDS}
    clips = clip_inputs(OmegaConf.to_container(cfg.input, resolve=True))
    requests = [MatteRequest(**clip, **options) for clip in clips]
    for request in requests:
        validate_request(request)
    return requests


def backend_settings(cfg: DictConfig) -> dict[str, Any]:
    """``matte.backend`` as a plain dict: ``name`` plus the options passed to ``build_backend``."""
    return OmegaConf.to_container(cfg.matte.backend, resolve=True)


def alpha_output_settings(cfg: DictConfig):
    """How the alpha matte is written: ``alpha_output=lossless`` (the default) is ``output`` with
    :data:`LOSSLESS_ALPHA` on top (codec, pixel format, image format), so the decoded alpha equals
    the RGBA archive's alpha exactly; ``alpha_output=output`` uses the ``output`` preset unchanged,
    like the foreground (smaller, lossy for most presets)."""
    from vgen.media.validation import output_settings

    if cfg.alpha_output not in ALPHA_OUTPUTS:
        raise ConfigError(f"alpha_output: expected one of {', '.join(ALPHA_OUTPUTS)}, got {cfg.alpha_output!r}")
    if cfg.alpha_output == "output":
        return output_settings(cfg.output)
    return output_settings({**OmegaConf.to_container(cfg.output, resolve=True), **LOSSLESS_ALPHA})


def check_source_timing(output_fps: Optional[float], source_fps: Optional[float]) -> None:
    """The matte keeps the source's timing: a different ``output.fps`` would retime the frames away
    from the source audio and from the source itself, so it is refused (a still has no timing)."""
    if output_fps is None or source_fps is None or math.isclose(output_fps, source_fps, rel_tol=1e-4):
        return
    raise ConfigError(
        f"output.fps={output_fps:g} differs from the source's {source_fps:g} fps; the matte keeps the source's "
        "frames and timing: leave output.fps unset (null)"
    )


def matte_job_id(request: MatteRequest, backend: dict[str, Any]) -> str:
    """Deterministic id of the run: the hash of the request and the backend settings."""
    return sha256_hex(canonical_json({"request": asdict(request), "backend": backend}))[:16]


def output_paths(run_dir: Path, stem: str) -> dict[str, Path]:
    """Final paths of a clip named ``stem`` without suffix (the output container/format decides it), by role."""
    folder = Path(run_dir) / MASK_SUBDIR
    return {
        "mask_foreground": folder / f"{stem}_foreground",
        "mask_alpha": folder / f"{stem}_alpha",
        "rgba_archive": folder / f"{stem}_rgba",
    }


def prompt_mask_path(run_dir: Path, stem: str) -> Path:
    """The mask SAM2 made from the prompts on the prompt frame (a PNG; reusable as ``input.mask``)."""
    return Path(run_dir) / MASK_SUBDIR / f"{stem}_prompt_mask"


def audio_path(run_dir: Path, stem: str, stream) -> Path:
    language = f"_{stream.language}" if stream.language else ""
    return Path(run_dir) / MASK_SUBDIR / f"{stem}_audio{stream.audio_index}{language}"


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class MatteClip:
    """One clip of the run's queue: its manifest ``job_index``, request, output name stem and job id."""

    index: int
    request: MatteRequest
    stem: str
    job_id: str


class MatteRun:
    """One matting run: the validated clips, the backend (its models load once, on the first clip),
    and how each clip's results are persisted."""

    def __init__(self, cfg: DictConfig, *, overrides: list[str]):
        from vgen.matte.backends import build_backend
        from vgen.media.context import validate_output_config
        from vgen.media.metadata_state import MetadataState

        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.overrides = overrides
        self.run_id = uuid.uuid4().hex
        requests = requests_from_config(cfg)
        self.backend_settings = backend_settings(cfg)
        options = {key: value for key, value in self.backend_settings.items() if key != "name"}
        self.backend = build_backend(self.backend_settings["name"], **options)
        self.metadata_state = MetadataState.from_config(cfg.metadata)
        validate_output_config(cfg.output)
        self.alpha_output = alpha_output_settings(cfg)
        validate_output_config(self.alpha_output)
        from vgen.matte.clips import clip_stems

        stems = clip_stems([request.video for request in requests], self.outputs_exist)
        self.clips = [
            MatteClip(index, request, stem, matte_job_id(request, self.backend_settings))
            for index, (request, stem) in enumerate(zip(requests, stems))
        ]

    def outputs_exist(self, stem: str) -> bool:
        """Whether the run dir already holds outputs named ``stem`` (an earlier run into the same dir)."""
        folder = self.run_dir / MASK_SUBDIR
        return any(found.is_file() for path in output_paths(self.run_dir, stem).values()
                   for found in folder.glob(f"{glob.escape(path.name)}.*"))

    def inputs_record(self, clip: MatteClip) -> dict[str, Any]:
        """The manifest ``inputs``: the request settings, the backend and the command-line overrides."""
        return {
            "request": asdict(clip.request),
            "backend": self.backend_settings,
            "attach_audio": bool(self.cfg.attach_audio),
            "overrides": self.overrides,
        }

    def metadata(self, clip: MatteClip, inputs, audio_tracks: list[dict[str, Any]]) -> dict[str, Any]:
        """Embedded in (or written beside) every artifact: enough to redo the clip from the file."""
        start = clip.request.start_frame
        return {
            "vgen_version": __version__,
            "run_id": self.run_id,
            "job_id": clip.job_id,
            "inputs": self.inputs_record(clip),
            "frame_range": [start, start + int(inputs.frames.shape[0])],
            "source": {"fps": inputs.fps, "size": [inputs.source_size[1], inputs.source_size[0]]},
            "audio_tracks": audio_tracks,
        }

    def plan(self, clip: MatteClip, inputs) -> str:
        """The dry-run report of one clip: what would be computed and written (nothing is)."""
        out, alpha_out, request = self.cfg.output, self.alpha_output, clip.request
        count, height, width = inputs.frames.shape[:3]
        still = inputs.fps is None
        paths = output_paths(Path("<run_dir>"), clip.stem)
        video_suffix = IMAGE_FORMATS[out.image_format][1] if still else CONTAINERS[out.container].suffix
        alpha_suffix = IMAGE_FORMATS[alpha_out.image_format][1] if still else CONTAINERS[alpha_out.container].suffix
        first = request.start_frame
        span = "still image" if still else f"frames [{first}, {first + count}) at {inputs.fps:g} fps"
        if inputs.prompts:
            marks = "; ".join(f"{item.field}: points {list(item.points)} box {item.box}" for item in inputs.prompts)
            subject = f"prompts on frame {request.prompt_start}: {len(inputs.prompts)} object(s), merged ({marks})"
        else:
            kind = f"mask of frame {request.prompt_start}"
            if inputs.is_mask_video and not still:
                kind = "per-frame mask video"
            subject = f"mask: {request.mask} ({kind})"
        lines = [
            f"vgen matte dry run, clip {clip.index + 1}/{len(self.clips)}: nothing will be computed or written.",
            f"job_id: {clip.job_id}",
            f"video: {request.video} ({span}, working size {width}x{height})",
            subject,
            f"backend: {canonical_json(self.backend_settings)} on device={request.device}",
            f"options: target={request.target} mask_type={request.mask_type} target_size={request.target_size} "
            f"erode={request.erode_kernel} dilate={request.dilate_kernel} "
            f"temporal_strength={request.temporal_strength} "
            f"temporal_motion_threshold={request.temporal_motion_threshold}",
            f"output: {out.name} ({out.container}/{out.codec}); metadata: {self.metadata_state.mode}; "
            f"save_masks: {out.save_masks}; attach_audio: {self.cfg.attach_audio}",
            f"alpha: {alpha_out.name} ({alpha_out.container}/{alpha_out.codec}, {alpha_out.pix_fmt})",
            f"audio tracks: {len(inputs.audio_streams)}",
            "would write:",
            f"  {paths['mask_foreground']}{video_suffix} (mask_foreground)",
            f"  {paths['mask_alpha']}{alpha_suffix} (mask_alpha)",
        ]
        if out.save_masks:
            lines.append(f"  {paths['rgba_archive']}.zip (rgba_archive)")
        if inputs.prompts:
            lines.append(f"  {prompt_mask_path(Path('<run_dir>'), clip.stem)}.png (prompt_mask)")
        audio_suffix = AUDIO_FORMATS[out.audio_format][1]
        for stream in inputs.audio_streams:
            lines.append(
                f"  {audio_path(Path('<run_dir>'), clip.stem, stream)}{audio_suffix} (audio: {stream.codec} "
                f"{stream.sample_rate} Hz, {stream.channels} ch, language {stream.language or 'none'})"
            )
        return "\n".join(lines)

    def compute(self, clip: MatteClip, inputs):
        """The backend's :class:`~vgen.matte.backends.Matte`, its alpha stabilised over time
        (:mod:`vgen.matte.temporal`), then ``target`` applied."""
        from vgen.matte.composite import apply_target
        from vgen.matte.temporal import stabilize

        next_report = 0.0

        def progress(done: int, total: int) -> None:  # one log line per quarter
            nonlocal next_report
            if done / total >= next_report:
                log.info("matting: %d/%d steps", done, total)
                next_report = done / total + 0.25

        request = clip.request
        matte = self.backend.run(inputs, request, progress=progress)
        alpha = stabilize(matte.alpha, inputs.frames, request.temporal_strength, request.temporal_motion_threshold)
        matte.alpha = apply_target(alpha, request.target)
        return matte

    def persist(self, clip: MatteClip, inputs, matte, media, alpha_media) -> None:
        """Write every output through ``media`` (a :class:`ManifestRecorder`), the alpha matte (and
        the prompt mask, as PNG) through ``alpha_media`` (its recorder for :attr:`alpha_output`)."""
        from vgen.matte.audio import decode_audio_stream
        from vgen.matte.composite import alpha_frames, foreground_frames, rgba_frames

        request = clip.request
        count = int(inputs.frames.shape[0])
        tracks = []
        for stream in inputs.audio_streams:
            samples = decode_audio_stream(
                request.video, stream, start_s=request.start_frame / inputs.fps, duration_s=count / inputs.fps
            )
            tracks.append((stream, samples))
        track_records = [
            {"audio_index": stream.audio_index, "stream_index": stream.index, "source_codec": stream.codec,
             "sample_rate": stream.sample_rate, "channels": stream.channels, "language": stream.language,
             "duration_s": samples.shape[0] / stream.sample_rate}
            for stream, samples in tracks
        ]  # fmt: skip
        metadata = self.metadata(clip, inputs, track_records)
        paths = output_paths(self.run_dir, clip.stem)
        alpha = matte.alpha
        foreground = foreground_frames(inputs.frames, alpha, request.mask_type)

        if inputs.fps is None:  # a still image
            media.save_image(foreground[0], paths["mask_foreground"], metadata=metadata, role="mask_foreground")
            alpha_media.save_image(alpha_frames(alpha)[0], paths["mask_alpha"], metadata=metadata, role="mask_alpha")
        else:
            attach = bool(self.cfg.attach_audio) and tracks
            media.save_video(
                foreground, paths["mask_foreground"], metadata=metadata, fps=inputs.fps, role="mask_foreground",
                audio=[(samples, stream.sample_rate) for stream, samples in tracks] if attach else None,
                audio_language=[stream.language for stream, _ in tracks] if attach else None,
            )
            alpha_media.save_video(alpha_frames(alpha), paths["mask_alpha"], metadata=metadata, fps=inputs.fps,
                                   role="mask_alpha")
        media.save_mask_archive(rgba_frames(inputs.frames, alpha), paths["rgba_archive"], metadata=metadata,
                                role="rgba_archive")
        if matte.prompt_mask is not None:
            alpha_media.save_image(
                alpha_frames(matte.prompt_mask[None].astype(np.float32))[0], prompt_mask_path(self.run_dir, clip.stem),
                metadata={**metadata, "prompt_frame": request.prompt_start}, role="prompt_mask",
                overrides={"image_format": "png"},
            )
        for (stream, samples), record in zip(tracks, track_records):
            artifact = media.save_audio(
                samples, audio_path(self.run_dir, clip.stem, stream), sample_rate=stream.sample_rate,
                metadata={**metadata, "audio_track": record}, role="audio", language=stream.language,
            )
            artifact.extra.update(source_codec=stream.codec, source_stream_index=stream.index)

    def record(self, clip: MatteClip, artifacts, timings: dict[str, float],
               error: Optional[BaseException] = None) -> dict[str, Any]:
        """Append the clip's manifest row."""
        from vgen.rundir.manifest import ManifestLog, build_row

        row = build_row(
            run_id=self.run_id, job_id=clip.job_id, job_index=clip.index,
            status="success" if error is None else "error",
            metadata_mode=self.metadata_state.mode, run_dir=self.run_dir, inputs=self.inputs_record(clip),
            adapter_payloads={}, timings=timings, artifacts=artifacts, error=error,
        )  # fmt: skip
        ManifestLog(self.run_dir).append(row)
        return row

    def fail(self, clip: MatteClip, artifacts, timings: dict[str, float], error: BaseException) -> int:
        """Log ``error``, append the clip's error row; the exit code is 1."""
        log.error("matting %s failed: %s", clip.request.video, error, exc_info=debug_enabled())
        self.record(clip, artifacts, timings, error)
        return 1


def _is_bad_input(error: BaseException) -> bool:
    """Bad input and missing checkpoints (exit 2) write nothing; everything else gets an error row."""
    return isinstance(error, VgenError) and error.exit_code == 2


def run(cfg: DictConfig) -> int:
    """Run one matting configuration (one or several clips) and return its exit code."""
    from vgen.matte.request import load_inputs

    matte = MatteRun(cfg, overrides=list(HydraConfig.get().overrides.task))
    first = None  # the first clip's inputs, kept from the check below
    for clip in matte.clips:  # every clip's inputs are checked before any model loads or anything is written
        started = time.perf_counter()
        inputs = load_inputs(clip.request)
        decode_s = time.perf_counter() - started
        check_source_timing(cfg.output.fps, inputs.fps)
        matte.backend.check(inputs, clip.request)
        if cfg.attach_audio and not inputs.audio_streams:
            log.warning("attach_audio=true: %s has no audio to attach; the foreground is written without audio",
                        clip.request.video)
        if cfg.dry_run:
            print(matte.plan(clip, inputs))
        if first is None:
            first = (inputs, decode_s)
    if cfg.dry_run:
        return 0

    status = 0
    for clip in matte.clips:
        if clip.index == 0:
            inputs, decode_s = first
        else:
            started = time.perf_counter()
            inputs = load_inputs(clip.request)
            decode_s = time.perf_counter() - started
        first = None  # frees the first clip's frames once it is done
        status = max(status, _matte_clip(matte, clip, inputs, {"decode_s": decode_s}))
    return status


def _matte_clip(matte: MatteRun, clip: MatteClip, inputs, timings: dict[str, float]) -> int:
    """Compute and persist one clip, append its row; 0, or 1 when it failed (its error row written)."""
    from vgen.rundir.manifest import ManifestRecorder
    from vgen.media.context import MediaPersistenceContext
    from vgen.media.writers import write_text_atomic

    cfg = matte.cfg
    recorder = ManifestRecorder(MediaPersistenceContext.from_config(cfg.output, matte.metadata_state, logger=log))
    alpha_recorder = ManifestRecorder(
        MediaPersistenceContext.from_config(matte.alpha_output, matte.metadata_state, logger=log)
    )
    alpha_recorder.artifacts = recorder.artifacts  # one list: the row lists the artifacts in write order
    try:
        started = time.perf_counter()
        result = matte.compute(clip, inputs)
        timings["matte_s"] = time.perf_counter() - started
    except Exception as error:
        if _is_bad_input(error) and clip.index == 0:  # e.g. a missing checkpoint: nothing written yet
            raise
        return matte.fail(clip, recorder.artifacts, timings, error)
    try:
        started = time.perf_counter()
        matte.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(matte.run_dir / RESOLVED_CONFIG_NAME, OmegaConf.to_yaml(cfg, resolve=True))
        matte.persist(clip, inputs, result, recorder, alpha_recorder)
        timings["persist_s"] = time.perf_counter() - started
    except Exception as error:  # partly written: the row says error (and lists no artifact)
        return matte.fail(clip, recorder.artifacts, timings, error)
    matte.record(clip, recorder.artifacts, timings)
    log.info("Wrote %d artifact(s) to %s (job %s)", len(recorder.artifacts), matte.run_dir / MASK_SUBDIR, clip.job_id)
    return 0


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="matte")
def hydra_entry(cfg: DictConfig) -> int:
    return run_hydra_task(run, cfg, log)


def main() -> None:
    launch(hydra_entry, "vgen.matte")


if __name__ == "__main__":
    main()
