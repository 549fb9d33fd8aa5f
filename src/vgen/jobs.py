"""Job specs: expansion of the queue config into concrete, validated jobs with deterministic ids.

Pure logic, no torch: the dry run and the config tests use it directly.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Container, Mapping

from vgen.config.schema import GenerationConfig
from vgen.errors import ConfigError
from vgen.grid import expand_grid
from vgen.hashing import canonical_json, sha256_hex

GENERATION_KEYS = {f.name: f.type for f in dataclasses.fields(GenerationConfig)}
_KEY_TYPES = {"int": int, "float": (int, float), "str": str}
# Job keys that are not generation settings; their values are validated by the adapters that use them.
ADAPTER_JOB_KEYS = {"loras", "lora_preset", "image", "repeats"}


@dataclass(frozen=True)
class JobSpec:
    """One job of the queue: the generation defaults overlaid with the job's own keys."""

    index: int
    job_id: str
    settings: dict[str, Any]
    repeat_index: int = 0

    @property
    def prompt(self) -> str:
        return self.settings["prompt"]


def validate_job_keys(job: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Reject unknown keys and wrong types, naming ``where`` (e.g. ``queue.jobs[2]``) and the key."""
    if not isinstance(job, Mapping):
        raise ConfigError(f"{where}: a job must be a mapping of settings, got {type(job).__name__}: {job!r}")
    clean: dict[str, Any] = {}
    for key, value in job.items():
        if key in ADAPTER_JOB_KEYS:
            clean[key] = value
            continue
        if key not in GENERATION_KEYS:
            known = ", ".join(sorted([*GENERATION_KEYS, *ADAPTER_JOB_KEYS]))
            raise ConfigError(f"{where}.{key}: unknown job key (known keys: {known})")
        expected = _KEY_TYPES[GENERATION_KEYS[key]]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ConfigError(
                f"{where}.{key}: expected {GENERATION_KEYS[key]}, got {type(value).__name__} {value!r}"
            )
        clean[key] = value
    return clean


def read_prompts_file(path: str | Path) -> list[dict[str, Any]]:
    """Jobs from a .txt (one prompt per line, ``#`` comments), .jsonl (one job per line) or .csv (header)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"queue.prompts_file: file not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".txt":
        return [{"prompt": line.strip()} for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if suffix == ".jsonl":
        jobs = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                jobs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"queue.prompts_file: {path}:{number}: invalid JSON ({exc.msg})") from None
        return jobs
    if suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        return [_coerce_csv_row(row, f"{path}:{number}") for number, row in enumerate(rows, start=2)]
    raise ConfigError(f"queue.prompts_file: unsupported file type {suffix!r} for {path} (use .txt, .jsonl or .csv)")


def _coerce_csv_row(row: Mapping[str, str], where: str) -> dict[str, Any]:
    job: dict[str, Any] = {}
    for key, raw in row.items():
        if raw is None or raw == "":
            continue
        kind = GENERATION_KEYS.get(key)
        try:
            job[key] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
        except ValueError:
            raise ConfigError(f"queue.prompts_file: {where}: column {key!r} expects {kind}, got {raw!r}") from None
    return job


def job_id_for(settings: Mapping[str, Any], repeat_index: int) -> str:
    """Deterministic id: the hash of the resolved spec (see ``unique_job_id`` for identical specs)."""
    return sha256_hex(canonical_json({"settings": settings, "repeat": repeat_index}))[:16]


def unique_job_id(job_id: str, taken: Container[str]) -> str:
    """``job_id``, or ``job_id-N`` (N = 2, 3, ...) when an identical job already holds it."""
    candidate, count = job_id, 1
    while candidate in taken:
        count += 1
        candidate = f"{job_id}-{count}"
    return candidate


def job_settings(job: Mapping[str, Any], generation_defaults: Mapping[str, Any], where: str) -> tuple[dict, int]:
    """``(settings, repeats)`` of one raw job: its keys validated and laid over the defaults."""
    job = validate_job_keys(job, where)
    repeats = job.pop("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ConfigError(f"{where}.repeats: must be an integer >= 1, got {repeats!r}")
    settings = {**generation_defaults, **job}
    if not str(settings.get("prompt", "")).strip():
        raise ConfigError(f"{where}.prompt: empty prompt")
    return settings, repeats


def expand_jobs(queue_cfg: Any, generation_defaults: Mapping[str, Any]) -> list[JobSpec]:
    """Resolve every job of the queue (``queue.jobs`` then ``queue.prompts_file``), with repeats."""
    raw_jobs = [(f"queue.jobs[{i}]", job) for i, job in enumerate(queue_cfg.jobs or [])]
    if queue_cfg.prompts_file:
        raw_jobs += [(f"{queue_cfg.prompts_file}[{i}]", job) for i, job in enumerate(read_prompts_file(queue_cfg.prompts_file))]
    raw_jobs = expand_grid(raw_jobs, getattr(queue_cfg, "grid", None), validate_job_keys)
    if queue_cfg.repeats < 1:
        raise ConfigError(f"queue.repeats: must be >= 1, got {queue_cfg.repeats}")
    specs: list[JobSpec] = []
    taken: set[str] = set()
    for where, raw in raw_jobs:
        settings, repeats = job_settings(raw, generation_defaults, where)
        for repeat in range(repeats * queue_cfg.repeats):
            resolved = dict(settings)
            if repeat and resolved["seed"] != -1:
                resolved["seed"] = resolved["seed"] + repeat  # repeats of a fixed seed give distinct videos
            job_id = unique_job_id(job_id_for(resolved, repeat), taken)
            taken.add(job_id)
            specs.append(JobSpec(index=len(specs), job_id=job_id, settings=resolved, repeat_index=repeat))
    if not specs:
        raise ConfigError("queue: no jobs (set queue.jobs, queue.prompts_file, or use queue=default)")
    return specs
