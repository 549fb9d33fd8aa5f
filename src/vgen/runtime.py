"""GenerationRuntime: run one job on the resident pipeline and hand back frames plus everything recorded."""

from __future__ import annotations

import importlib
import inspect
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from vgen.jobs.expand import JobSpec

# A step hook sees diffusers' callback arguments; it may pause, abort or change adapter weights.
StepHook = Callable[[Any, int, Any, dict], None]


@dataclass
class GenerationResult:
    job: JobSpec
    frames: Any  # numpy (F, H, W, 3) float32 in [0, 1]; an image job's one frame; None for audio
    seed: int
    prompt: str
    enhanced_prompt: str | None
    adapter_payloads: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    output_recipe: dict[str, Any] | None = None  # see vgen.jobs.output_key; set by ProductionManager.run_generation
    input_files: dict[str, Any] = field(default_factory=dict)  # manifest records of the job's input files
    source_images: dict[str, Any] = field(default_factory=dict)  # embedded with metadata.embed_source_images
    audio: Any = None  # numpy (samples, channels) float32: an audio job's output, or a video's soundtrack
    sample_rate: int | None = None


def draw_seed(requested: int) -> int:
    """``-1`` draws a fresh seed (recorded in the manifest); anything else is used as given."""
    return secrets.randbelow(2**31 - 1) if requested == -1 else requested


class GenerationRuntime:
    """Executes one job: seed, prompt, step hooks, the pipeline call. No I/O beyond the model."""

    def __init__(self, pipe: Any, model_cfg, job: JobSpec, *, step_hooks: list[StepHook] = ()) -> None:
        self.pipe = pipe
        self.model_cfg = model_cfg
        self.job = job
        self.step_hooks = list(step_hooks)

    def _on_step_end(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        for hook in self.step_hooks:
            hook(pipe, step, timestep, callback_kwargs)
        return callback_kwargs

    def run(self, *, prompt: str, seed: int, adapter_payloads: dict[str, Any],
            pipeline_inputs: Mapping[str, Any] | None = None) -> GenerationResult:
        """Call the pipeline; ``pipeline_inputs`` are the job's prepared conditioning arguments."""
        import torch

        settings, model = self.job.settings, self.model_cfg
        call_kwargs = dict(
            prompt=prompt,
            negative_prompt=settings["negative_prompt"] or None,
            num_inference_steps=settings["steps"],
            generator=torch.Generator(device="cpu").manual_seed(seed),
            output_type="np",
            **self._step_callback(),
        )
        call_kwargs[model.get("guidance_kwarg", "guidance_scale")] = settings["guidance_scale"]
        if "height" in settings:  # an audio job has no size
            call_kwargs.update(height=settings["height"], width=settings["width"])
        if (frames_kwarg := model.get("frames_kwarg", "num_frames")) and "num_frames" in settings:  # v2v, images: none
            call_kwargs[frames_kwarg] = settings["num_frames"]
        if model.fps_kwarg and "fps" in settings:
            call_kwargs[model.fps_kwarg] = settings["fps"]
        if (duration_kwarg := model.get("duration_kwarg")) and "duration_s" in settings:
            call_kwargs[duration_kwarg] = settings["duration_s"]
        call_kwargs.update({**model.pipeline_kwargs, **(pipeline_inputs or {})})
        started = time.perf_counter()
        with torch.inference_mode(), model_adapter(model).calling(self.pipe, call_kwargs, self._on_step_end) as kwargs:
            output = self.pipe(**kwargs)
        frames, audio = pipeline_output(output)
        return GenerationResult(
            job=self.job, frames=frames, seed=seed, prompt=settings["prompt"], enhanced_prompt=None,
            adapter_payloads=adapter_payloads, timings={"generate_s": time.perf_counter() - started},
            audio=audio, sample_rate=None if audio is None else pipeline_sample_rate(self.pipe),
        )

    def _step_callback(self) -> dict[str, Any]:
        """The step hooks as the pipeline takes them: ``callback_on_step_end``, or the older per-step
        ``callback(step, timestep, latents)`` (Stable Audio)."""
        parameters = inspect.signature(self.pipe.__call__).parameters
        if "callback_on_step_end" in parameters or "callback" not in parameters:
            return {"callback_on_step_end": self._on_step_end}

        def legacy(step: int, timestep: Any, latents: Any) -> None:
            self._on_step_end(self.pipe, step, timestep, {"latents": latents})

        return {"callback": legacy, "callback_steps": 1}


class _NoAdapter:
    @staticmethod
    @contextmanager
    def calling(pipe: Any, call_kwargs: dict[str, Any], on_step_end: Callable) -> Iterator[dict[str, Any]]:
        yield call_kwargs


def model_adapter(model_cfg) -> Any:
    """``vgen.models.<model.adapter>`` for a family whose pipeline call needs code (see hunyuan_video15),
    else a pass-through: its ``calling(pipe, call_kwargs, on_step_end)`` yields the call's arguments."""
    if not (name := model_cfg.get("adapter")):
        return _NoAdapter
    return importlib.import_module(f"vgen.models.{name}")


def pipeline_output(output: Any) -> tuple[Any, Any]:
    """``(frames, audio)`` of a diffusers output: video frames (F,H,W,3), an image as one frame, and
    audio as (samples, channels) float32 (a text-to-audio pipeline's, or a video's soundtrack)."""
    import numpy as np

    frames = output.frames[0] if hasattr(output, "frames") else getattr(output, "images", None)
    if frames is not None and hasattr(output, "images"):
        frames = np.asarray(frames)[:1]
    audio = getattr(output, "audios", None)
    if audio is None:
        audio = getattr(output, "audio", None)
    if audio is not None:
        first = audio[0]
        first = first.float().cpu().numpy() if hasattr(first, "cpu") else np.asarray(first, dtype=np.float32)
        audio = np.ascontiguousarray(first.reshape(-1, first.shape[-1]).T if first.ndim > 1 else first[:, None])
    return frames, audio


def pipeline_sample_rate(pipe: Any) -> int:
    """The sample rate of the audio ``pipe`` generates, from the component config that holds it."""
    for component, key in (("vae", "sampling_rate"), ("vocoder", "output_sampling_rate"), ("audio_vae", "sample_rate")):
        config = getattr(getattr(pipe, component, None), "config", None)
        if config is not None and config.get(key):
            return int(config[key])
    raise ValueError(f"{type(pipe).__name__}: no audio sample rate found on its vae/vocoder config")
