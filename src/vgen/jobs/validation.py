"""The value rules every job must pass before any model loads (queue jobs and ``vgen-ctl enqueue`` alike).

Key names and types are checked by :func:`vgen.jobs.expand.validate_job_keys`; this module checks the
values: finite numbers within sane bounds, and a shape the model can produce (its YAML's
``size_multiple`` and ``frame_multiple``: Wan and CogVideoX need sizes that are multiples of 16 and
4k+1 frames, LTX multiples of 32 and 8k+1 frames, as their diffusers pipelines require).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Container, Mapping

from vgen.conditioning.spec import output_kind
from vgen.config.schema import GenerationConfig
from vgen.errors import ConfigError

MAX_SIDE = 4096  # pixels per side; real video models are trained at 1280x720 or less
MAX_FRAMES = 1025  # 4k+1 and 8k+1
MAX_STEPS = 10_000  # real runs use 20-100; long test jobs use a few thousand on the tiny model
MAX_FPS = 240
MAX_GUIDANCE = 100.0
SEED_LIMIT = 2**32  # seeds are 0 <= seed < 2**32 (numpy's range, Wan2GP's); -1 draws one
MAX_DURATION_S = 600.0
BUILTIN_GENERATION = {field.name: field.default for field in dataclasses.fields(GenerationConfig)}
# Job keys that mean nothing for an output kind: dropped from its settings, refused when set.
UNUSED_KEYS = {
    "video": ("duration_s",),
    "image": ("num_frames", "fps", "duration_s"),
    "audio": ("height", "width", "num_frames", "fps"),
}


def settings_for_output(settings: Mapping[str, Any], model_cfg: Any, where: str,
                        own_keys: Container[str]) -> dict[str, Any]:
    """``settings`` without the keys the model's output kind does not use (an image job keeps
    ``num_frames=1``). Such a key set by the job, or a generation default changed from vgen's own, is a
    :class:`ConfigError` naming it (81 frames for an image model, a size for an audio model)."""
    kind = output_kind(model_cfg)
    clean = dict(settings)
    for key in UNUSED_KEYS[kind]:
        value = clean.pop(key, None)
        if value is None or (kind == "image" and key == "num_frames" and value == 1):
            continue
        reason = f"model {model_cfg.name} (task {model_cfg.task}) makes {kind}, which has no {key}"
        if key in own_keys:
            raise ConfigError(f"{where}.{key}={value!r}: {reason}")
        if value != BUILTIN_GENERATION[key]:
            raise ConfigError(f"generation.{key}={value!r} (job {where}): {reason}")
    if kind == "image":
        clean["num_frames"] = 1
    duration = clean.pop("duration_s", None)
    if duration is None:
        return clean
    if (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                 or not 0 < duration <= MAX_DURATION_S):
        raise ConfigError(f"{where}.duration_s={duration!r}: must be a number of seconds in (0, {MAX_DURATION_S:g}]")
    return {**clean, "duration_s": duration}


def validate_job_values(settings: Mapping[str, Any], model_cfg: Any, where: str, own_keys: Container[str]) -> None:
    """Raise :class:`ConfigError` for the first value ``model_cfg`` cannot generate or that is out of bounds.

    A key in ``own_keys`` (set by the job itself) is named ``<where>.<key>``; one taken from the
    generation defaults is named ``generation.<key>`` and the job it broke.
    """

    def fail(key: str, reason: str) -> None:
        if key in own_keys:
            raise ConfigError(f"{where}.{key}={settings[key]!r}: {reason}")
        raise ConfigError(f"generation.{key}={settings[key]!r} (job {where}): {reason}")

    size = model_cfg.size_multiple
    for key in ("height", "width"):
        value = settings.get(key, size)  # absent for an audio job
        if not 0 < value <= MAX_SIDE or value % size:
            fail(key, f"model {model_cfg.name} needs a positive multiple of {size} up to {MAX_SIDE}")
    frames, multiple = settings.get("num_frames", 1), model_cfg.frame_multiple
    if not 1 <= frames <= MAX_FRAMES or (frames - 1) % multiple:
        fail("num_frames", f"model {model_cfg.name} needs {multiple}*k+1 frames "
                           f"({', '.join(str(multiple * k + 1) for k in (0, 1, 2, 4))}, ... up to {MAX_FRAMES})")
    if not 1 <= settings["steps"] <= MAX_STEPS:
        fail("steps", f"must be in [1, {MAX_STEPS}]")
    if not 1 <= settings.get("fps", 1) <= MAX_FPS:
        fail("fps", f"must be in [1, {MAX_FPS}]")
    guidance = settings["guidance_scale"]
    if not (math.isfinite(guidance) and 0 <= guidance <= MAX_GUIDANCE):
        fail("guidance_scale", f"must be a finite number in [0, {MAX_GUIDANCE:g}]")
    seed = settings["seed"]
    if seed != -1 and not 0 <= seed < SEED_LIMIT:
        fail("seed", "must be in [0, 2**32) or -1 (draw one)")
