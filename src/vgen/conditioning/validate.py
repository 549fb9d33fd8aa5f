"""Check every job's inputs against what the model declares, before any model loads.

A model config says which inputs it takes (``model.inputs``: key -> pipeline argument, required or
not). A job that sets an input the model does not take, lacks a required one, or names a file that
is missing, not decodable or (for a video) too short is a :class:`ConfigError` naming the job and key.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from vgen.conditioning.media import MediaInfo, decodable_frames, probe_input
from vgen.conditioning.spec import IMAGE_KEYS, INPUT_KEYS, LIST_KEYS, MASK_KEYS, TASKS, job_input_files, job_inputs
from vgen.errors import ConfigError


def declared_inputs(model_cfg: Any) -> dict[str, Mapping[str, Any]]:
    """``{key: {"arg": ..., "required": ...}}`` of the model, checked against the known keys and tasks."""
    if model_cfg.task not in TASKS:
        raise ConfigError(f"model.task: expected one of {', '.join(TASKS)}, got {model_cfg.task!r}")
    declared = dict(model_cfg.get("inputs") or {}) if hasattr(model_cfg, "get") else dict(model_cfg.inputs or {})
    for key in declared:
        if key not in INPUT_KEYS:
            raise ConfigError(f"model.inputs.{key}: unknown input (known: {', '.join(INPUT_KEYS)})")
    return declared


def input_kind(label: str) -> str:
    """What a file input must decode as: "image", "video" or "image_or_video" (masks)."""
    key = label.split("[", 1)[0]
    if key in (*IMAGE_KEYS, *LIST_KEYS):
        return "image"
    return "image_or_video" if key in MASK_KEYS else "video"


def validate_job_inputs(index: int, settings: Mapping[str, Any], model_cfg: Any,
                        probes: dict[tuple[str, str | int], MediaInfo | int] | None = None) -> None:
    """Raise a ConfigError naming ``job[index].<key>`` for the first problem with this job's inputs.

    ``probes`` caches what each file holds, ``(path, kind)``, and how many of a video's first N frames
    decode, ``(path, N)``, across the jobs of a queue (many jobs share an input).
    """
    probes = {} if probes is None else probes
    declared = declared_inputs(model_cfg)
    where = f"job[{index}]"
    described = f"model {model_cfg.name} (task {model_cfg.task})"
    for key in job_inputs(settings):
        if key not in declared:
            takes = ", ".join(declared) or "no inputs: text only"
            raise ConfigError(f"{where}.{key}: {described} does not take {key} (it takes {takes})")
    for key, declaration in declared.items():
        if declaration.get("required") and key not in settings:
            raise ConfigError(f"{where}.{key}: {described} requires {key}")
    for label, path in job_input_files(settings):
        kind = input_kind(label)
        if (path, kind) not in probes:
            try:
                probes[(path, kind)] = probe_input(path, kind)
            except ConfigError as exc:
                raise ConfigError(f"{where}.{label}: {exc}") from None
        info = probes[(path, kind)]
        if info.kind != "video":
            continue
        if info.frames < settings["num_frames"] and not settings.get("loop_video"):
            raise ConfigError(
                f"{where}.{label}: {path} has {info.frames} frame(s), the job needs num_frames={settings['num_frames']} "
                f"(use a longer video, fewer frames, or generation.loop_video=true)"
            )
        needed = min(info.frames, settings["num_frames"])  # the frames generation will decode
        if (path, needed) not in probes:
            try:
                probes[(path, needed)] = decodable_frames(path, needed)
            except ConfigError as exc:
                raise ConfigError(f"{where}.{label}: {exc}") from None
        if probes[(path, needed)] < needed:
            raise ConfigError(f"{where}.{label}: {path} claims {info.frames} frame(s) but only "
                              f"{probes[(path, needed)]} decode (a truncated file?)")


def validate_queue_inputs(jobs: Iterable[Any], model_cfg: Any) -> None:
    """:func:`validate_job_inputs` for every job (``JobSpec``) of the queue, sharing one probe cache."""
    probes: dict[tuple[str, str | int], MediaInfo | int] = {}
    declared_inputs(model_cfg)
    for job in jobs:
        validate_job_inputs(job.index, job.settings, model_cfg, probes)
