"""The dry-run plan: what a run would do, printed without importing torch or loading any model."""

from __future__ import annotations

from typing import Callable, Sequence

from vgen.conditioning.spec import job_inputs
from vgen.config.model_defaults import generation_sources
from vgen.jobs.expand import JobSpec
from vgen.lora.resolution import ResolvedLoras
from vgen.jobs.shards import shard_line


def format_loras(resolved: ResolvedLoras) -> str:
    """``name:weight name:weight (preset P)``: each LoRA with its multiplier in Wan2GP syntax."""
    text = " ".join(f"{entry.name}:{entry.schedule.to_text()}" for entry in resolved.entries) or "none"
    return f"{text} (preset {resolved.preset})" if resolved.preset else text


def job_shape(settings) -> str:
    """WxHxF fps=N for a video, WxH for an image, duration=Ns for audio (the keys its output kind has)."""
    if "height" not in settings:
        return f"duration={settings['duration_s']}s" if "duration_s" in settings else "duration=model default"
    size = f"{settings['width']}x{settings['height']}"
    return f"{size}x{settings['num_frames']} fps={settings['fps']}" if "fps" in settings else size


def format_generation_sources(cfg, overrides: Sequence[str]) -> list[str]:
    """The generation defaults a model may set, grouped by where each value came from (unset ones left out)."""
    by_source: dict[str, list[str]] = {}
    for key, (value, source) in generation_sources(cfg, overrides).items():
        if value is not None:
            by_source.setdefault(source, []).append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    precedence = ("command line", "experiment")  # then the model's, then config.yaml's
    ordered = sorted(by_source, key=lambda source: precedence.index(source) if source in precedence
                     else len(precedence) + (source == "config.yaml"))
    return ["generation defaults (command line > experiment > model > config.yaml):",
            *(f"  {source}: {' '.join(by_source[source])}" for source in ordered)]


def format_plan(
    cfg,
    jobs: Sequence[JobSpec],
    planned_output: Callable[[JobSpec], str],
    resolve_loras: Callable[[JobSpec], ResolvedLoras],
    overrides: Sequence[str] = (),
) -> str:
    """The plan; ``resolve_loras`` gives a job's LoRAs and prompt transform (resolved without torch),
    ``overrides`` the command line's (to tell its generation values from an experiment's)."""
    model = cfg.model
    out = cfg.output
    lines = [
        "vgen dry run: nothing will be generated or written.",
        f"model: {model.name} ({model.pipeline_class} from {model.source}"
        f"{', revision ' + model.revision if model.revision else ''})",
        f"runtime: device={cfg.runtime.device} dtype={cfg.runtime.dtype} offload={cfg.runtime.offload} "
        f"vae_tiling={cfg.runtime.vae_tiling}",
        f"output: {out.name} ({out.container}/{out.codec}, pix_fmt={out.pix_fmt}); metadata: {cfg.metadata.mode}; "
        f"lora: {cfg.lora.name}{f' (preset {cfg.lora.preset})' if cfg.lora.preset else ''}; "
        f"enhancer: {cfg.enhancer.backend}",
        *format_generation_sources(cfg, overrides),
        f"jobs: {len(jobs)}",
    ]
    if shard := shard_line(jobs, cfg.queue):
        lines.append(shard)
    for job in jobs:
        s = job.settings
        loras = resolve_loras(job)
        prompt = loras.prompt.apply(job.prompt)
        lines.append(
            f"  [{job.index}] {job.job_id} seed={s['seed']} {job_shape(s)} "
            f"steps={s['steps']} cfg={s['guidance_scale']} -> "
            f"<run_dir>/{planned_output(job)}\n      loras: {format_loras(loras)}\n      prompt: {prompt}"
        )
        if prompt != job.prompt:
            lines.append(f"      job prompt (before the LoRA prompt settings): {job.prompt}")
        if inputs := job_inputs(s):
            listed = ", ".join(f"{key}={value}" for key, value in inputs.items())
            fitting = f" (fit={s['fit']}, loop_video={s['loop_video']})" if "fit" in s else ""
            lines.append(f"      inputs: {listed}{fitting}")
    return "\n".join(lines)
