"""``python -m vgen.matte``: matte one video (or image) with a mask, persist the outputs, log one manifest row.

Writes under ``<run_dir>/mask_outputs/``: the foreground (over black, or green with
``mask_type=greenscreen``), the alpha matte, an RGBA PNG ZIP (``output.save_masks=true``), every
source audio track as its own file, and the source audio re-attached to the foreground video
(``attach_audio=true``); then one row in ``<run_dir>/manifests/run_history.jsonl``.

Exit codes: 0 success, 2 bad input or a missing checkpoint (one-line message, nothing written),
1 any other failure (the manifest row has status ``error``).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import hydra
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
REQUEST_INPUT_FIELDS = ("video", "mask", "start_frame", "end_frame")
REQUEST_OPTION_FIELDS = ("target_size", "target", "mask_type", "erode_kernel", "dilate_kernel", "resize_mask", "device")

register_all()


# --------------------------------------------------------------------------- config -> request


def request_from_config(cfg: DictConfig) -> MatteRequest:
    """The :class:`MatteRequest` of ``cfg`` (input paths made absolute: the manifest must name the file)."""
    for name in ("video", "mask"):
        if OmegaConf.is_missing(cfg.input, name):
            raise ConfigError(f"input.{name}: required (python -m vgen.matte input.video=CLIP input.mask=MASK)")
    fields = {name: cfg.input[name] for name in REQUEST_INPUT_FIELDS}
    fields.update({name: cfg[name] for name in REQUEST_OPTION_FIELDS})
    fields["video"], fields["mask"] = str(Path(fields["video"]).absolute()), str(Path(fields["mask"]).absolute())
    return MatteRequest(**fields)


def backend_settings(cfg: DictConfig) -> dict[str, Any]:
    """``matte.backend`` as a plain dict: ``name`` plus the options passed to ``build_backend``."""
    return OmegaConf.to_container(cfg.matte.backend, resolve=True)


def matte_job_id(request: MatteRequest, backend: dict[str, Any]) -> str:
    """Deterministic id of the run: the hash of the request and the backend settings."""
    return sha256_hex(canonical_json({"request": asdict(request), "backend": backend}))[:16]


def output_paths(run_dir: Path, request: MatteRequest) -> dict[str, Path]:
    """Final paths without suffix (the output container/format decides it), by manifest role."""
    stem = Path(request.video).stem
    folder = Path(run_dir) / MASK_SUBDIR
    return {
        "mask_foreground": folder / f"{stem}_foreground",
        "mask_alpha": folder / f"{stem}_alpha",
        "rgba_archive": folder / f"{stem}_rgba",
    }


def audio_path(run_dir: Path, request: MatteRequest, stream) -> Path:
    language = f"_{stream.language}" if stream.language else ""
    return Path(run_dir) / MASK_SUBDIR / f"{Path(request.video).stem}_audio{stream.audio_index}{language}"


# --------------------------------------------------------------------------- the run


class MatteRun:
    """One matting run: validated request, decoded inputs, backend, and how its results are persisted."""

    def __init__(self, cfg: DictConfig, *, overrides: list[str]):
        from vgen.matte.backends import build_backend
        from vgen.media.context import validate_output_config
        from vgen.media.metadata_state import MetadataState

        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.overrides = overrides
        self.run_id = uuid.uuid4().hex
        self.request = request_from_config(cfg)
        self.backend_settings = backend_settings(cfg)
        options = {key: value for key, value in self.backend_settings.items() if key != "name"}
        self.backend = build_backend(self.backend_settings["name"], **options)
        self.metadata_state = MetadataState.from_config(cfg.metadata)
        validate_output_config(cfg.output)
        self.job_id = matte_job_id(self.request, self.backend_settings)

    def inputs_record(self) -> dict[str, Any]:
        """The manifest ``inputs``: the request settings, the backend and the command-line overrides."""
        return {
            "request": asdict(self.request),
            "backend": self.backend_settings,
            "attach_audio": bool(self.cfg.attach_audio),
            "overrides": self.overrides,
        }

    def metadata(self, inputs, audio_tracks: list[dict[str, Any]]) -> dict[str, Any]:
        """Embedded in (or written beside) every artifact: enough to redo the run from the file."""
        start = self.request.start_frame
        return {
            "vgen_version": __version__,
            "run_id": self.run_id,
            "job_id": self.job_id,
            "inputs": self.inputs_record(),
            "frame_range": [start, start + int(inputs.frames.shape[0])],
            "source": {"fps": inputs.fps, "size": [inputs.source_size[1], inputs.source_size[0]]},
            "audio_tracks": audio_tracks,
        }

    def plan(self, inputs) -> str:
        """The dry-run report: what would be computed and written (nothing is)."""
        out, request = self.cfg.output, self.request
        count, height, width = inputs.frames.shape[:3]
        still = inputs.fps is None
        paths = output_paths(Path("<run_dir>"), request)
        video_suffix = IMAGE_FORMATS[out.image_format][1] if still else CONTAINERS[out.container].suffix
        first = request.start_frame
        span = "still image" if still else f"frames [{first}, {first + count}) at {inputs.fps:g} fps"
        mask_kind = "per-frame mask video" if inputs.is_mask_video and not still else "first-frame mask"
        lines = [
            "vgen matte dry run: nothing will be computed or written.",
            f"job_id: {self.job_id}",
            f"video: {request.video} ({span}, working size {width}x{height})",
            f"mask: {request.mask} ({mask_kind})",
            f"backend: {canonical_json(self.backend_settings)} on device={request.device}",
            f"options: target={request.target} mask_type={request.mask_type} target_size={request.target_size} "
            f"erode={request.erode_kernel} dilate={request.dilate_kernel}",
            f"output: {out.name} ({out.container}/{out.codec}); metadata: {self.metadata_state.mode}; "
            f"save_masks: {out.save_masks}; attach_audio: {self.cfg.attach_audio}",
            f"audio tracks: {len(inputs.audio_streams)}",
            "would write:",
            f"  {paths['mask_foreground']}{video_suffix} (mask_foreground)",
            f"  {paths['mask_alpha']}{video_suffix} (mask_alpha)",
        ]
        if out.save_masks:
            lines.append(f"  {paths['rgba_archive']}.zip (rgba_archive)")
        audio_suffix = AUDIO_FORMATS[out.audio_format][1]
        for stream in inputs.audio_streams:
            lines.append(
                f"  {audio_path(Path('<run_dir>'), request, stream)}{audio_suffix} (audio: {stream.codec} "
                f"{stream.sample_rate} Hz, {stream.channels} ch, language {stream.language or 'none'})"
            )
        return "\n".join(lines)

    def compute(self, inputs):
        """The alpha (F, H, W) in [0, 1], ``target`` applied."""
        from vgen.matte.composite import apply_target

        next_report = 0.0

        def progress(done: int, total: int) -> None:  # one log line per quarter
            nonlocal next_report
            if done / total >= next_report:
                log.info("matting: %d/%d steps", done, total)
                next_report = done / total + 0.25

        return apply_target(self.backend.run(inputs, self.request, progress=progress), self.request.target)

    def persist(self, inputs, alpha, media) -> None:
        """Write every output through ``media`` (a :class:`ManifestRecorder`)."""
        from vgen.matte.audio import decode_audio_stream
        from vgen.matte.composite import alpha_frames, foreground_frames, rgba_frames

        count = int(inputs.frames.shape[0])
        tracks = []
        for stream in inputs.audio_streams:
            samples = decode_audio_stream(
                self.request.video, stream, start_s=self.request.start_frame / inputs.fps, duration_s=count / inputs.fps
            )
            tracks.append((stream, samples))
        track_records = [
            {"audio_index": stream.audio_index, "stream_index": stream.index, "source_codec": stream.codec,
             "sample_rate": stream.sample_rate, "channels": stream.channels, "language": stream.language,
             "duration_s": samples.shape[0] / stream.sample_rate}
            for stream, samples in tracks
        ]  # fmt: skip
        metadata = self.metadata(inputs, track_records)
        paths = output_paths(self.run_dir, self.request)
        foreground = foreground_frames(inputs.frames, alpha, self.request.mask_type)

        if inputs.fps is None:  # a still image
            media.save_image(foreground[0], paths["mask_foreground"], metadata=metadata, role="mask_foreground")
            media.save_image(alpha_frames(alpha)[0], paths["mask_alpha"], metadata=metadata, role="mask_alpha")
        else:
            attach = bool(self.cfg.attach_audio) and tracks
            media.save_video(
                foreground, paths["mask_foreground"], metadata=metadata, fps=inputs.fps, role="mask_foreground",
                audio=[(samples, stream.sample_rate) for stream, samples in tracks] if attach else None,
                audio_language=[stream.language for stream, _ in tracks] if attach else None,
            )
            media.save_video(alpha_frames(alpha), paths["mask_alpha"], metadata=metadata, fps=inputs.fps,
                             role="mask_alpha")
        media.save_mask_archive(rgba_frames(inputs.frames, alpha), paths["rgba_archive"], metadata=metadata,
                                role="rgba_archive")
        for (stream, samples), record in zip(tracks, track_records):
            artifact = media.save_audio(
                samples, audio_path(self.run_dir, self.request, stream), sample_rate=stream.sample_rate,
                metadata={**metadata, "audio_track": record}, role="audio", language=stream.language,
            )
            artifact.extra.update(source_codec=stream.codec, source_stream_index=stream.index)

    def record(self, artifacts, timings: dict[str, float], error: Optional[BaseException] = None) -> dict[str, Any]:
        """Append the run's one manifest row."""
        from vgen.manifest import ManifestLog, build_row

        row = build_row(
            run_id=self.run_id, job_id=self.job_id, job_index=0, status="success" if error is None else "error",
            metadata_mode=self.metadata_state.mode, run_dir=self.run_dir, inputs=self.inputs_record(),
            adapter_payloads={}, timings=timings, artifacts=artifacts, error=error,
        )  # fmt: skip
        ManifestLog(self.run_dir).append(row)
        return row

    def fail(self, artifacts, timings: dict[str, float], error: BaseException) -> int:
        """Log ``error``, append the run's error row; the exit code is 1."""
        log.error("matting %s failed: %s", self.request.video, error, exc_info=debug_enabled())
        self.record(artifacts, timings, error)
        return 1


def _is_bad_input(error: BaseException) -> bool:
    """Bad input and missing checkpoints (exit 2) write nothing; everything else gets an error row."""
    return isinstance(error, VgenError) and error.exit_code == 2


def run(cfg: DictConfig) -> int:
    """Run one matting configuration and return its exit code."""
    from vgen.manifest import ManifestRecorder
    from vgen.matte.request import load_inputs
    from vgen.media.context import MediaPersistenceContext

    matte = MatteRun(cfg, overrides=list(HydraConfig.get().overrides.task))
    started = time.perf_counter()
    inputs = load_inputs(matte.request)
    timings = {"decode_s": time.perf_counter() - started}
    if cfg.dry_run:
        print(matte.plan(inputs))
        return 0

    recorder = ManifestRecorder(MediaPersistenceContext.from_config(cfg.output, matte.metadata_state, logger=log))
    try:
        started = time.perf_counter()
        alpha = matte.compute(inputs)
        timings["matte_s"] = time.perf_counter() - started
    except Exception as error:
        if _is_bad_input(error):  # e.g. an empty first mask for SAM2, a missing checkpoint: nothing written
            raise
        return matte.fail(recorder.artifacts, timings, error)
    try:
        started = time.perf_counter()
        matte.run_dir.mkdir(parents=True, exist_ok=True)
        (matte.run_dir / RESOLVED_CONFIG_NAME).write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
        matte.persist(inputs, alpha, recorder)
        timings["persist_s"] = time.perf_counter() - started
    except Exception as error:  # partly written: the row says error (and lists no artifact)
        return matte.fail(recorder.artifacts, timings, error)
    matte.record(recorder.artifacts, timings)
    log.info("Wrote %d artifact(s) to %s (job %s)", len(recorder.artifacts), matte.run_dir / MASK_SUBDIR, matte.job_id)
    return 0


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="matte")
def hydra_entry(cfg: DictConfig) -> int:
    return run_hydra_task(run, cfg, log)


def main() -> None:
    launch(hydra_entry, "vgen.matte")


if __name__ == "__main__":
    main()
