"""The conditioning keys a job may carry, their types, and how they are normalised at queue expansion.

Pure logic, no file I/O beyond path arithmetic: runs while the queue is expanded (dry runs too).
Which keys a model takes, and the pipeline argument each maps to, is declared per model in YAML
(``model.inputs``); :mod:`vgen.conditioning.validate` checks jobs against it.
"""

from __future__ import annotations

import os
from pathlib import Path
from collections.abc import Mapping  # typing.Mapping's isinstance is slow: it runs once per job
from typing import Any

from vgen.errors import ConfigError

# Keys naming input files: a start/end image, reference images, a source/control video, a mask.
IMAGE_KEYS = ("image", "image_end")
LIST_KEYS = ("images_ref",)
VIDEO_KEYS = ("video",)
MASK_KEYS = ("mask",)  # an image (held for every frame) or a video, white = generate
FILE_KEYS = (*IMAGE_KEYS, *LIST_KEYS, *VIDEO_KEYS, *MASK_KEYS)
# Numeric inputs a model may take (video-to-video strength, the low-noise expert's guidance).
SCALAR_KEYS = ("strength", "guidance_scale_2")
INPUT_KEYS = (*FILE_KEYS, *SCALAR_KEYS)
# How inputs are prepared; kept in a job's settings only when it has input files.
FIT_POLICIES = ("crop", "pad", "stretch")
PREPARATION_KEYS = ("fit", "loop_video")
CONDITIONING_KEYS = (*INPUT_KEYS, *PREPARATION_KEYS)
TASKS = ("t2v", "i2v", "flf2v", "v2v", "vace", "ti2v", "t2i", "t2a")
# What a task's job produces (every other task makes a video); decides the artifact's kind and folder.
TASK_OUTPUTS = {"t2i": "image", "t2a": "audio"}
LIST_SEPARATOR = ";"  # images_ref in a CSV cell: "a.png;b.png"


def output_kind(model_cfg: Any) -> str:
    """"video", "image" or "audio": what a job of this model writes."""
    return TASK_OUTPUTS.get(getattr(model_cfg, "task", "t2v"), "video")  # t2v: the schema default


def _absolute(value: Any, base_dir: str | Path) -> Any:
    if not isinstance(value, str) or not value.strip():
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (Path(base_dir) / path).absolute())


def resolve_input_paths(job: Any, base_dir: str | Path) -> Any:
    """``job`` with its input paths made absolute against ``base_dir`` (a prompts file's folder, or the
    working dir for ``queue.jobs`` and ``generation``); a CSV cell's ``a.png;b.png`` becomes a list."""
    if not isinstance(job, Mapping):
        return job  # the key validation names the problem
    resolved = dict(job)
    for key in FILE_KEYS:
        value = resolved.get(key)
        if value is None:
            continue  # most jobs have no input files: no path work (a 100k-job queue expands in a merge)
        if key in LIST_KEYS and isinstance(value, str):
            value = [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]
        if isinstance(value, (list, tuple)):
            resolved[key] = [_absolute(item, base_dir) for item in value]
        else:
            resolved[key] = _absolute(value, base_dir)
    return resolved


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, str):  # a CSV cell
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(f"{where}.{key}: expected a number, got {type(value).__name__} {value!r}")


def _flag(value: Any, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConfigError(f"{where}.{key}: expected true or false, got {value!r}")


def _path(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: expected a file path, got {type(value).__name__} {value!r}")
    return value


def conditioning_settings(settings: Mapping[str, Any], where: str, base_dir: str | Path | None = None) -> dict[str, Any]:
    """Type-check the conditioning keys of a resolved job and drop the unset ones; relative input paths
    are made absolute against ``base_dir`` (default: the working dir).

    Unset inputs (None) are removed, and ``fit``/``loop_video`` are kept only when the job has input
    files, so a text-to-video job's settings (and so its job id) do not change with this feature.
    """
    if not any(key in settings for key in CONDITIONING_KEYS):
        return dict(settings)  # nothing to check (most jobs): the loops below would leave it as it is
    clean = resolve_input_paths(settings, os.getcwd() if base_dir is None else base_dir)
    for key in CONDITIONING_KEYS:
        if clean.get(key) is None:
            clean.pop(key, None)
    for key in (*IMAGE_KEYS, *VIDEO_KEYS, *MASK_KEYS):
        if key in clean:
            clean[key] = _path(clean[key], where, key)
    for key in LIST_KEYS:
        if key in clean:
            if not isinstance(clean[key], list) or not clean[key]:
                raise ConfigError(f"{where}.{key}: expected a non-empty list of file paths, got {clean[key]!r}")
            clean[key] = [_path(item, where, f"{key}[{i}]") for i, item in enumerate(clean[key])]
    for key in SCALAR_KEYS:
        if key in clean:
            clean[key] = _number(clean[key], where, key)
    if "strength" in clean and not 0.0 < clean["strength"] <= 1.0:
        raise ConfigError(f"{where}.strength: must be in (0, 1], got {clean['strength']}")
    fit = clean.get("fit", FIT_POLICIES[0])
    if fit not in FIT_POLICIES:
        raise ConfigError(f"{where}.fit: expected one of {', '.join(FIT_POLICIES)}, got {fit!r}")
    loop_video = _flag(clean.get("loop_video", False), where, "loop_video")
    if any(key in clean for key in FILE_KEYS):
        clean["fit"], clean["loop_video"] = fit, loop_video
    else:
        clean.pop("fit", None)
        clean.pop("loop_video", None)
    return clean


def job_input_files(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(label, path)]`` of a job's input files, ``images_ref`` entries labelled ``images_ref[i]``."""
    files = []
    for key in FILE_KEYS:
        value = settings.get(key)
        if isinstance(value, list):
            files += [(f"{key}[{index}]", path) for index, path in enumerate(value)]
        elif value is not None:
            files.append((key, value))
    return files


def job_inputs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The input keys a resolved job sets (files and scalars), in declaration order."""
    return {key: settings[key] for key in INPUT_KEYS if key in settings}
