"""ProductionManager: everything one run needs, built from the resolved config.

It holds the resident models (keyed pipeline cache, LoRA manager, prompt enhancer: shared across
the runs of one process, see ``vgen.resident``), and builds fresh per-run snapshots
(``metadata_state()``, ``media_context()``) that are passed down rather than read from globals.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
import uuid
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

from omegaconf import DictConfig, OmegaConf

from vgen import __version__
from vgen.config.schema import VgenConfig, unknown_keys
from vgen.conditioning.spec import output_kind
from vgen.conditioning.validate import validate_queue_inputs
from vgen.speed.attention import apply_attention_backend, validate_attention
from vgen.speed.compilation import cache_key as compile_key
from vgen.speed.compilation import compile_pipeline, validate_compile
from vgen.devices import validate_runtime
from vgen.errors import DISK_FULL_ERRNOS, ConfigError, DiskFullError, is_disk_full
from vgen.jobs.expand import JobSpec, expand_jobs
from vgen.rundir.manifest import ManifestLog, ManifestRecorder, build_row
from vgen.jobs.output_key import input_file_hashes, output_key, output_recipe
from vgen.models.overrides import validate_model_overrides
from vgen.pipeline_cache import PipelineKey
from vgen.speed.quantization import cache_key as quantization_key
from vgen.speed.quantization import validate_quantization
from vgen.resident import RESIDENT, ResidentModels
from vgen.runtime import GenerationResult, GenerationRuntime, StepHook, draw_seed
from vgen.speed.step_cache import apply_step_cache, validate_cache_config
from vgen.jobs.shards import select_jobs

log = logging.getLogger(__name__)
VIDEO_SUBDIR = "videos"
IMAGE_SUBDIR = "images"
AUDIO_SUBDIR = "audio"


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
        resident: ResidentModels = RESIDENT,
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.overrides = list(overrides)
        self.pipeline_cache = resident.pipelines
        self.loras = resident.loras
        self.enhancer = resident.enhancer
        self.run_id = uuid.uuid4().hex
        self.manifest = ManifestLog(self.run_dir)
        self._unreported_load_s = 0.0
        self.model_snapshot: str | None = None
        self.model_loading: dict[str, Any] = {}  # effective component dtypes and scheduler, once loaded

    # -- checks and snapshots -------------------------------------------------------------------
    def generation_defaults(self) -> dict[str, Any]:
        return OmegaConf.to_container(self.cfg.generation, resolve=True)

    def jobs(self) -> list[JobSpec]:
        queue = SimpleNamespace(**OmegaConf.to_container(self.cfg.queue, resolve=True))
        return select_jobs(expand_jobs(queue, self.generation_defaults(), self.cfg.model), queue)

    def validate(self, jobs: Sequence[JobSpec]) -> None:
        """Everything checkable before a model loads (no torch import), including each job's LoRAs."""
        from vgen.enhancer.checkpoints import check_checkpoints
        from vgen.enhancer.settings import validate_enhancer_config
        from vgen.media.context import validate_output_config

        if unknown := unknown_keys(self.cfg, VgenConfig):
            raise ConfigError(f"{unknown[0]}: unknown config key (added by a '+' override?); vgen has no such setting")
        validate_runtime(self.cfg.runtime)
        self.metadata_state()
        validate_output_config(self.cfg.output)
        check_checkpoints(validate_enhancer_config(self.cfg.enhancer))
        validate_cache_config(self.cfg.cache)
        validate_attention(self.cfg.runtime, resolve_auto=not self.cfg.dry_run)  # a dry run imports no torch
        validate_quantization(self.cfg.runtime)
        validate_compile(self.cfg.runtime)
        if self.cfg.queue.on_error not in ("continue", "stop"):
            raise ConfigError(f"queue.on_error: expected continue or stop, got {self.cfg.queue.on_error!r}")
        validate_queue_inputs(jobs, self.cfg.model)
        if (adapter := self.cfg.model.adapter) and importlib.util.find_spec(f"vgen.models.{adapter}") is None:
            raise ConfigError(f"model.adapter: no module vgen.models.{adapter}")
        if self.cfg.output.save_audio_separately and not self.cfg.model.sound:
            raise ConfigError(f"output.save_audio_separately: model {self.cfg.model.name} makes no soundtrack")
        validate_model_overrides(self.cfg.model)
        for job in jobs:
            self.resolve_loras(job)

    def resolve_loras(self, job: JobSpec, pipe: Any = None):
        """The job's LoRAs (its own ``loras``/``lora_preset`` keys win over the run's ``lora`` group)."""
        steps = job.settings["steps"]
        phase_starts = None
        if pipe is not None and self.cfg.model.experts > 1:
            from vgen.lora.adapters import expert_phase_starts

            phase_starts = expert_phase_starts(pipe, steps)
        try:
            return self.loras.resolve_job(self.cfg.lora, self.cfg.model.family, job.settings, num_steps=steps,
                                          num_phases=self.cfg.model.experts, phase_starts=phase_starts)
        except ConfigError as error:
            raise ConfigError(f"job {job.index} ({job.job_id}): {error}") from None

    @cached_property
    def lora_slots(self):
        """The LoRA slots of a compiled pipeline (``None`` uncompiled; see ``vgen.lora.hotswap``): one per
        LoRA file of the job of this run that uses the most, each padded to ``runtime.lora_max_rank``."""
        if validate_compile(self.cfg.runtime) == "off":
            return None
        from vgen.lora.hotswap import SlotLayout

        count = max((len(self.resolve_loras(job).adapter_names) for job in self.jobs()), default=0)
        return SlotLayout(count=max(count, 1), max_rank=self.cfg.runtime.lora_max_rank)

    @cached_property
    def compute_dtype(self) -> str:
        """``runtime.dtype`` with ``auto`` resolved; imports torch, so only real runs ask (never a dry run)."""
        from vgen.devices import resolve_placement

        return resolve_placement(self.cfg.runtime).dtype

    def job_output_recipe(self, job: JobSpec) -> dict[str, Any]:
        """What besides the job spec decides this job's output (see ``vgen.jobs.output_key``)."""
        return output_recipe(
            model=OmegaConf.to_container(self.cfg.model, resolve=True), dtype=self.compute_dtype,
            vae_tiling=self.cfg.runtime.vae_tiling, lora_payload=self.resolve_loras(job).payload(),
            enhancer_cfg=self.cfg.enhancer, output=OmegaConf.to_container(self.cfg.output, resolve=True),
            input_files=input_file_hashes(job.settings),
            cache=validate_cache_config(self.cfg.cache), quantization=quantization_key(self.cfg.runtime),
        )

    def job_output_key(self, job: JobSpec) -> str:
        return output_key(job.job_id, self.job_output_recipe(job))

    def metadata_state(self):
        from vgen.media.metadata_state import MetadataState

        return MetadataState.from_config(self.cfg.metadata)

    def media_context(self):
        from vgen.media.context import MediaPersistenceContext

        return MediaPersistenceContext.from_config(self.cfg.output, self.metadata_state(), logger=log)

    def artifact_kind(self, job: JobSpec) -> str:
        """"audio" (a text-to-audio model), "image" (a text-to-image model, or any single-frame job: saved
        in ``output.image_format``, not as a one-frame video) or "video"."""
        kind = output_kind(self.cfg.model)
        return "image" if kind == "video" and job.settings["num_frames"] == 1 else kind

    def output_path(self, job: JobSpec) -> Path:
        """Final artifact path without suffix: the container, image or audio format decides it."""
        folder = {"audio": AUDIO_SUBDIR, "image": IMAGE_SUBDIR, "video": VIDEO_SUBDIR}[self.artifact_kind(job)]
        return self.run_dir / folder / artifact_stem(job)

    def planned_output(self, job: JobSpec) -> str:
        """The artifact path a dry run reports, relative to the run dir."""
        output = self.cfg.output
        suffix = {"audio": output.audio_format, "image": output.image_format,
                  "video": output.container}[self.artifact_kind(job)]
        return f"{self.output_path(job).relative_to(self.run_dir).as_posix()}.{suffix}"

    # -- generation -----------------------------------------------------------------------------
    def pipeline(self) -> tuple[Any, float]:
        from vgen.devices import resolve_placement
        from vgen.models.loader import load_pipeline

        placement = resolve_placement(self.cfg.runtime)
        runtime_cfg = self.cfg.runtime
        key = PipelineKey.for_model(self.cfg.model, placement, quantization=quantization_key(runtime_cfg),
                                    compile=compile_key(runtime_cfg, self.cfg.cache))
        pipe, load_s = self.pipeline_cache.get(key, lambda: compile_pipeline(
            load_pipeline(self.cfg.model, placement, runtime_cfg.cache_dir, runtime_cfg), runtime_cfg, self.cfg.cache))
        # The folder the weights came from: an HF-cache commit hash, a local dir name, tiny_wan-vN.
        self.model_snapshot = Path(pipe.config._name_or_path).name
        from vgen.models.overrides import effective_settings

        self.model_loading = effective_settings(pipe, self.cfg.model)
        return pipe, load_s

    def load_pipeline(self) -> None:
        """Load (or reuse) the pipeline now; its load time is charged to the next job's timings."""
        _, load_s = self.pipeline()
        self._unreported_load_s += load_s

    def run_generation(
        self,
        job: JobSpec,
        *,
        step_hooks: Sequence[StepHook] = (),
        on_prompt_enhanced: Callable[[str, str], None] | None = None,
    ) -> GenerationResult:
        """Enhance the prompt, activate the job's LoRAs and run the pipeline (no file I/O here)."""
        recipe = self.job_output_recipe(job)  # before the LoRA files are read for activation
        started = time.perf_counter()
        enhancement = self.enhancer.enhance(self.cfg.enhancer, job.prompt, task=self.cfg.model.task,
                                            image=job.settings.get("image"))
        enhance_s = time.perf_counter() - started
        enhanced_prompt = None if self.cfg.enhancer.backend == "none" else enhancement.enhanced_prompt
        if enhanced_prompt is not None and on_prompt_enhanced is not None:
            on_prompt_enhanced(job.job_id, enhanced_prompt)

        pipe, load_s = self.pipeline()
        load_s, self._unreported_load_s = load_s + self._unreported_load_s, 0.0
        loras = self.resolve_loras(job, pipe)
        self.loras.activate(pipe, loras, slots=self.lora_slots)
        hooks = list(step_hooks)
        if (lora_hook := self.loras.step_callback(pipe, loras)) is not None:
            hooks.insert(0, lora_hook)

        adapter_payloads: dict[str, Any] = {}
        if payload := loras.payload():
            adapter_payloads["lora"] = payload
        if payload := self.enhancer.payload(self.cfg.enhancer, [enhancement]):
            adapter_payloads["prompt_enhancer"] = payload
        prompt = self.loras.apply_prompt(loras, enhanced_prompt or job.prompt)
        apply_attention_backend(pipe, self.cfg.runtime)
        apply_step_cache(pipe, self.cfg.cache, steps=job.settings["steps"])
        from vgen.conditioning.prepare import pipeline_for, prepare_inputs

        started = time.perf_counter()
        prepared = prepare_inputs(job.settings, self.cfg.model)
        prepare_s = time.perf_counter() - started
        runtime = GenerationRuntime(pipeline_for(pipe, prepared.pipeline_class), self.cfg.model, job, step_hooks=hooks)
        result = runtime.run(prompt=prompt, seed=draw_seed(job.settings["seed"]), adapter_payloads=adapter_payloads,
                             pipeline_inputs=prepared.pipeline_kwargs)
        result.enhanced_prompt = enhanced_prompt
        result.output_recipe = recipe
        result.input_files, result.source_images = prepared.files, prepared.source_images
        result.timings = {"load_s": load_s, "enhance_s": enhance_s, "prepare_inputs_s": prepare_s, **result.timings}
        return result

    # -- records --------------------------------------------------------------------------------
    def inputs(self, job: JobSpec, *, seed: int | None = None, enhanced_prompt: str | None = None,
               files: dict[str, Any] | None = None, output_recipe: dict[str, Any] | None = None) -> dict[str, Any]:
        """The manifest ``inputs``: the resolved job (with the seed actually used), model, overrides, the
        input files read (``files``: path, sha256, bytes; frames and fps of a video) and, for a job that
        generated, its output recipe."""
        settings = dict(job.settings)
        if seed is not None:
            settings["requested_seed"], settings["seed"] = settings["seed"], seed
        model = self.cfg.model
        inputs = {
            "job": settings,
            "prompt": job.prompt,
            "enhanced_prompt": enhanced_prompt,
            "repeat_index": job.repeat_index,
            "model": {"name": model.name, "source": model.source, "revision": model.revision,
                      "pipeline_class": model.pipeline_class, "snapshot": self.model_snapshot, **self.model_loading},
            "overrides": self.overrides,
            **({"files": files} if files else {}),
        }
        if output_recipe is not None:
            inputs["output_recipe"] = output_recipe
        return inputs

    @cached_property
    def resolved_config(self) -> dict[str, Any]:
        """The run's config with every interpolation resolved (the same for every job of the run)."""
        return OmegaConf.to_container(self.cfg, resolve=True)

    def artifact_metadata(self, result: GenerationResult, inputs: dict[str, Any]) -> dict[str, Any]:
        """What is embedded in (or written beside) each artifact: enough to rebuild the run from the file
        (the source images themselves too with ``metadata.embed_source_images``)."""
        return {
            **({"source_images": result.source_images} if result.source_images else {}),
            "vgen_version": __version__,
            "run_id": self.run_id,
            "job_id": result.job.job_id,
            "job_index": result.job.index,
            "inputs": inputs,
            "adapter_payloads": result.adapter_payloads,
            "config": self.resolved_config,
        }

    def fitted_soundtrack(self, result: GenerationResult):
        """The generated soundtrack cut or padded with silence to the video's length (frames / fps), so
        audio and video end together in the muxed file (the decoders round to their own latent steps)."""
        import numpy as np

        fps = self.cfg.output.fps or result.job.settings["fps"]
        wanted = round(len(result.frames) / fps * result.sample_rate)
        audio = result.audio[:wanted]
        return np.pad(audio, ((0, wanted - len(audio)), (0, 0))) if len(audio) < wanted else audio

    def persist(self, result: GenerationResult, media) -> dict[str, Any]:
        """Write the job's artifacts through ``media``, then its manifest row (error row on a write failure).

        A full disk is raised as :class:`DiskFullError` once its error row is written (or could not be):
        the queue must stop, since the next jobs would fail the same way.
        """
        recorder = ManifestRecorder(media)
        started = time.perf_counter()
        inputs = self.inputs(result.job, seed=result.seed, enhanced_prompt=result.enhanced_prompt,
                             files=result.input_files, output_recipe=result.output_recipe)
        error: BaseException | None = None
        try:
            path, metadata = self.output_path(result.job), self.artifact_metadata(result, inputs)
            kind = self.artifact_kind(result.job)
            if kind == "audio":
                recorder.save_audio(result.audio, path, sample_rate=result.sample_rate, metadata=metadata, role="audio")
            elif kind == "image":
                recorder.save_image(result.frames[0], path, metadata=metadata, role="image")
            else:
                soundtrack = None if result.audio is None else (self.fitted_soundtrack(result), result.sample_rate)
                recorder.save_video(result.frames, path, metadata=metadata, fps=result.job.settings["fps"],
                                    role="video", audio=soundtrack)
                if soundtrack is not None and self.cfg.output.save_audio_separately:
                    recorder.save_audio(soundtrack[0], self.run_dir / AUDIO_SUBDIR / path.name,
                                        sample_rate=result.sample_rate, metadata=metadata, role="audio")
        except Exception as exc:  # MediaWriteError and encoder failures become this job's error row
            error = exc
            if not is_disk_full(exc):
                log.error("Job %s: writing its artifacts failed: %s", result.job.job_id, exc)
            elif not isinstance(exc, DiskFullError):  # a full disk is reported by the queue that stops on it
                error = DiskFullError(f"could not write the artifacts of job {result.job.job_id}: {exc}")
        timings = {**result.timings, "persist_s": time.perf_counter() - started}
        row = build_row(
            run_id=self.run_id, job_id=result.job.job_id, job_index=result.job.index,
            status="success" if error is None else "error", metadata_mode=self.cfg.metadata.mode,
            run_dir=self.run_dir, inputs=inputs,
            adapter_payloads=result.adapter_payloads, timings=timings, artifacts=recorder.artifacts, error=error,
            output_key=output_key(result.job.job_id, result.output_recipe) if result.output_recipe else None,
        )
        try:
            self.append_row(row)
        except DiskFullError as exc:
            if isinstance(error, DiskFullError):
                raise DiskFullError(f"{error}; its error row could not be recorded either") from exc
            raise
        if isinstance(error, DiskFullError):
            raise error
        return row

    def record_failure(self, job: JobSpec, error: BaseException, *, status: str = "error",
                       timings: dict[str, float] | None = None) -> dict[str, Any]:
        row = build_row(
            run_id=self.run_id, job_id=job.job_id, job_index=job.index, status=status,
            metadata_mode=self.cfg.metadata.mode, run_dir=self.run_dir, inputs=self.inputs(job),
            adapter_payloads={}, timings=timings or {}, error=error,
        )
        self.append_row(row)
        return row

    def append_row(self, row: dict[str, Any]) -> None:
        """Append ``row`` to the manifest; a full disk there is a :class:`DiskFullError` naming the job."""
        try:
            self.manifest.append(row)
        except OSError as exc:
            if exc.errno not in DISK_FULL_ERRNOS:
                raise
            raise DiskFullError(f"could not record the {row['status']} row of job {row['job_id']} in "
                                f"{self.manifest.path}: {exc.strerror}") from exc
