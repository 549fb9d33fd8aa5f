"""GenerationRuntime: run one job on the resident pipeline and hand back frames plus everything recorded."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from vgen.jobs import JobSpec

# A step hook sees diffusers' callback arguments; it may pause, abort or change adapter weights.
StepHook = Callable[[Any, int, Any, dict], None]


@dataclass
class GenerationResult:
    job: JobSpec
    frames: Any  # numpy (F, H, W, 3) float32 in [0, 1]
    seed: int
    prompt: str
    enhanced_prompt: str | None
    adapter_payloads: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    output_recipe: dict[str, Any] | None = None  # see vgen.output_key; set by ProductionManager.run_generation
    input_files: dict[str, Any] = field(default_factory=dict)  # manifest records of the job's input files
    source_images: dict[str, Any] = field(default_factory=dict)  # embedded with metadata.embed_source_images



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

        settings = self.job.settings
        call_kwargs = dict(
            prompt=prompt,
            negative_prompt=settings["negative_prompt"] or None,
            height=settings["height"],
            width=settings["width"],
            num_inference_steps=settings["steps"],
            guidance_scale=settings["guidance_scale"],
            generator=torch.Generator(device="cpu").manual_seed(seed),
            output_type="np",
            callback_on_step_end=self._on_step_end,
            **dict(self.model_cfg.pipeline_kwargs),
            **dict(pipeline_inputs or {}),
        )
        if frames_kwarg := self.model_cfg.get("frames_kwarg", "num_frames"):  # v2v: the source video's length
            call_kwargs[frames_kwarg] = settings["num_frames"]
        if self.model_cfg.fps_kwarg:
            call_kwargs[self.model_cfg.fps_kwarg] = settings["fps"]
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.pipe(**call_kwargs)
        frames = output.frames[0]
        return GenerationResult(
            job=self.job, frames=frames, seed=seed, prompt=settings["prompt"], enhanced_prompt=None,
            adapter_payloads=adapter_payloads, timings={"generate_s": time.perf_counter() - started},
        )
