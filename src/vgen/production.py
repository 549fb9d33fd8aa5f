"""ProductionManager: everything one run needs, built from the resolved config.

It owns the (process-wide, keyed) pipeline cache handle, the adapters (LoRA manager, prompt
enhancer), and builds fresh per-run snapshots (``metadata_state()``, ``media_context()``) that are
passed down rather than read from globals.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from vgen import __version__
from vgen.devices import validate_runtime
from vgen.jobs import JobSpec, expand_jobs
from vgen.manifest import ManifestLog, ManifestRecorder, build_row
from vgen.pipeline_cache import PIPELINE_CACHE, PipelineCache, PipelineKey
from vgen.runtime import GenerationResult, GenerationRuntime, StepHook, draw_seed

log = logging.getLogger(__name__)
VIDEO_SUBDIR = "videos"


def prompt_slug(prompt: str, limit: int = 40) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", prompt).strip("-").lower()
    return slug[:limit].rstrip("-") or "untitled"


def artifact_stem(job: JobSpec) -> str:
    """Deterministic per job: a rerun of the same job overwrites (never duplicates) its own file."""
    return f"{job.index:04d}_{job.job_id[:8]}_{prompt_slug(job.prompt)}"


class ProductionManager:
    def __init__(
        self,
        cfg: DictConfig,
        *,
        run_dir: str | Path,
        overrides: Sequence[str] = (),
        pipeline_cache: PipelineCache = PIPELINE_CACHE,
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.overrides = list(overrides)
        self.pipeline_cache = pipeline_cache
        self.run_id = uuid.uuid4().hex
        self.manifest = ManifestLog(self.run_dir)
        self._unreported_load_s = 0.0

    # -- checks and snapshots -------------------------------------------------------------------
    def jobs(self) -> list[JobSpec]:
        return expand_jobs(self.cfg.queue, OmegaConf.to_container(self.cfg.generation, resolve=True))

    def validate(self) -> None:
        """Everything checkable before a model loads (no torch import)."""
        from vgen.media.context import validate_output_config

        validate_runtime(self.cfg.runtime)
        self.metadata_state()
        validate_output_config(self.cfg.output)
        if self.cfg.queue.on_error not in ("continue", "stop"):
            from vgen.errors import ConfigError

            raise ConfigError(f"queue.on_error: expected continue or stop, got {self.cfg.queue.on_error!r}")

    def metadata_state(self):
        from vgen.media.metadata_state import MetadataState

        return MetadataState.from_config(self.cfg.metadata)

    def media_context(self):
        from vgen.media.context import MediaPersistenceContext

        return MediaPersistenceContext.from_config(self.cfg.output, self.metadata_state(), logger=log)

    def output_path(self, job: JobSpec) -> Path:
        """Final artifact path without suffix: the container decides it."""
        return self.run_dir / VIDEO_SUBDIR / artifact_stem(job)

    # -- generation -----------------------------------------------------------------------------
    def pipeline(self) -> tuple[Any, float]:
        from vgen.devices import resolve_placement
        from vgen.models.loader import load_pipeline

        placement = resolve_placement(self.cfg.runtime)
        key = PipelineKey.for_model(self.cfg.model, placement)
        return self.pipeline_cache.get(key, lambda: load_pipeline(self.cfg.model, placement, self.cfg.runtime.cache_dir))

    def load_pipeline(self) -> None:
        """Load (or reuse) the pipeline now; its load time is charged to the next job's timings."""
        _, load_s = self.pipeline()
        self._unreported_load_s += load_s

    def run_generation(self, job: JobSpec, *, step_hooks: Sequence[StepHook] = ()) -> GenerationResult:
        pipe, load_s = self.pipeline()
        load_s, self._unreported_load_s = load_s + self._unreported_load_s, 0.0
        seed = draw_seed(job.settings["seed"])
        adapter_payloads: dict[str, Any] = {}
        runtime = GenerationRuntime(pipe, self.cfg.model, job, step_hooks=list(step_hooks))
        result = runtime.run(prompt=job.prompt, seed=seed, adapter_payloads=adapter_payloads)
        result.timings = {"load_s": load_s, "enhance_s": 0.0, **result.timings}
        return result

    # -- records --------------------------------------------------------------------------------
    def inputs(self, job: JobSpec, *, seed: int | None = None, enhanced_prompt: str | None = None) -> dict[str, Any]:
        """The manifest ``inputs``: the resolved job (with the seed actually used), model and overrides."""
        settings = dict(job.settings)
        if seed is not None:
            settings["requested_seed"], settings["seed"] = settings["seed"], seed
        model = self.cfg.model
        return {
            "job": settings,
            "prompt": job.prompt,
            "enhanced_prompt": enhanced_prompt,
            "repeat_index": job.repeat_index,
            "model": {"name": model.name, "source": model.source, "revision": model.revision,
                      "pipeline_class": model.pipeline_class},
            "overrides": self.overrides,
        }

    def artifact_metadata(self, result: GenerationResult) -> dict[str, Any]:
        """What is embedded in (or written beside) each artifact: enough to rebuild the run from the file."""
        return {
            "vgen_version": __version__,
            "run_id": self.run_id,
            "job_id": result.job.job_id,
            "job_index": result.job.index,
            "inputs": self.inputs(result.job, seed=result.seed, enhanced_prompt=result.enhanced_prompt),
            "adapter_payloads": result.adapter_payloads,
            "config": OmegaConf.to_container(self.cfg, resolve=True),
        }

    def persist(self, result: GenerationResult, media) -> dict[str, Any]:
        """Write the job's artifacts through ``media``, then its manifest row (error row on a write failure)."""
        recorder = ManifestRecorder(media)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            recorder.save_video(
                result.frames, self.output_path(result.job), metadata=self.artifact_metadata(result),
                fps=result.job.settings["fps"], role="video",
            )
        except Exception as exc:  # MediaWriteError and encoder failures become this job's error row
            error = exc
            log.error("Job %s: writing its artifacts failed: %s", result.job.job_id, exc)
        timings = {**result.timings, "persist_s": time.perf_counter() - started}
        row = build_row(
            run_id=self.run_id, job_id=result.job.job_id, job_index=result.job.index,
            status="success" if error is None else "error", metadata_mode=self.cfg.metadata.mode,
            run_dir=self.run_dir, inputs=self.inputs(result.job, seed=result.seed, enhanced_prompt=result.enhanced_prompt),
            adapter_payloads=result.adapter_payloads, timings=timings, artifacts=recorder.artifacts, error=error,
        )
        self.manifest.append(row)
        return row

    def record_failure(self, job: JobSpec, error: BaseException, *, status: str = "error",
                       timings: dict[str, float] | None = None) -> dict[str, Any]:
        row = build_row(
            run_id=self.run_id, job_id=job.job_id, job_index=job.index, status=status,
            metadata_mode=self.cfg.metadata.mode, run_dir=self.run_dir, inputs=self.inputs(job),
            adapter_payloads={}, timings=timings or {}, error=error,
        )
        self.manifest.append(row)
        return row
