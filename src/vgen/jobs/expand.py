"""Job specs: expansion of the queue config into concrete, validated jobs with deterministic ids.

Pure logic, no torch: the dry run and the config tests use it directly.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping  # typing.Mapping's isinstance is slow: it runs once per job
from typing import Any, Container

from vgen.conditioning.spec import CONDITIONING_KEYS, conditioning_settings, resolve_input_paths
from vgen.config.schema import GenerationConfig
from vgen.errors import ConfigError
from vgen.jobs.grid import expand_grid
from vgen.hashing import canonical_json, sha256_hex
from vgen.jobs.validation import SEED_LIMIT, settings_for_output, validate_job_values

GENERATION_KEYS = {f.name: f.type for f in dataclasses.fields(GenerationConfig)}
_KEY_TYPES = {"int": int, "float": (int, float), "str": str}
# Job keys that are not generation settings; their values are validated by the adapters that use them
# (duration_s by the output-kind rules of vgen.jobs.validation).
ADAPTER_JOB_KEYS = {"loras", "lora_preset", "repeats", "duration_s", *CONDITIONING_KEYS}


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
            known = ", ".join(sorted({*GENERATION_KEYS, *ADAPTER_JOB_KEYS}))
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
    if suffix not in (".txt", ".jsonl", ".csv"):
        raise ConfigError(f"queue.prompts_file: unsupported file type {suffix!r} for {path} (use .txt, .jsonl or .csv)")
    text = read_text_file(path, "queue.prompts_file")
    if suffix == ".txt":
        prompts = (line.strip() for line in text.splitlines())
        jobs = [{"prompt": prompt} for prompt in prompts if prompt and not prompt.startswith("#")]
    elif suffix == ".jsonl":
        jobs = []
        # Lines end at \n, \r\n or \r only: json.dumps(ensure_ascii=False) leaves U+2028 and U+0085 raw.
        for number, line in enumerate(io.StringIO(text, newline=None), start=1):
            if not line.strip():
                continue
            try:
                jobs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"queue.prompts_file: {path}:{number}: invalid JSON ({exc.msg})") from None
    else:
        jobs = _csv_jobs(text, path)
    if not jobs:
        raise ConfigError(f"queue.prompts_file: {path} holds no jobs (it is empty or only comments and blank lines)")
    return jobs


def read_text_file(path: Path, field: str) -> str:
    """The file as UTF-8 text (a BOM is dropped); a binary or non-UTF-8 file is refused naming ``field``
    and its first bad line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{field}: cannot read {path}: {exc.strerror}") from None
    if b"\0" not in data:
        try:
            return data.decode("utf-8-sig")  # the usual case: no need to look for the bad line
        except UnicodeDecodeError:
            pass
    for number, line in enumerate(data.splitlines(), start=1):
        if b"\0" in line:
            raise ConfigError(f"{field}: {path}:{number}: NUL byte (a binary file, not text)")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_byte = f"byte 0x{line[exc.start]:02x} at column {exc.start + 1}"
            raise ConfigError(f"{field}: {path}:{number}: not UTF-8 text ({bad_byte})") from None
    return data.decode("utf-8-sig")


def _csv_jobs(text: str, path: Path) -> list[dict[str, Any]]:
    """One job per CSV record; a quoted cell may span lines (its line breaks stay in the value)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    named = [name for name in header if name]
    for name in named:
        if named.count(name) > 1:
            raise ConfigError(f"queue.prompts_file: {path}:1: column {name!r} appears twice")
    jobs = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or a spreadsheet's empty row (",,,")
        if len(cells) > len(header):
            raise ConfigError(f"queue.prompts_file: {path}:{reader.line_num}: {len(cells)} cells but the header has "
                              f"{len(header)} columns (quote a cell that holds a comma)")
        jobs.append(_coerce_csv_row(dict(zip(header, cells)), f"{path}:{reader.line_num}"))
    return jobs


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


def job_settings(
    job: Mapping[str, Any], generation_defaults: Mapping[str, Any], where: str, model_cfg: Any,
    base_dir: str | Path | None = None,
) -> tuple[dict, int]:
    """``(settings, repeats)`` of one raw job: its keys laid over the defaults, all checked against the model
    (relative input paths made absolute against ``base_dir``, default the working dir)."""
    job = validate_job_keys(job, where)
    repeats = job.pop("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ConfigError(f"{where}.repeats: must be an integer >= 1, got {repeats!r}")
    settings = conditioning_settings({**generation_defaults, **job}, where, base_dir)
    if not str(settings.get("prompt", "")).strip():
        raise ConfigError(f"{where}.prompt: empty prompt")
    settings = settings_for_output(settings, model_cfg, where, own_keys=job)
    validate_job_values(settings, model_cfg, where, own_keys=job)
    return settings, repeats


def expand_jobs(queue_cfg: Any, generation_defaults: Mapping[str, Any], model_cfg: Any,
                base_dir: str | Path | None = None) -> list[JobSpec]:
    """Resolve every job of the queue (``queue.jobs`` then ``queue.prompts_file``, else ``queue.default_jobs``);
    ``base_dir``: what relative input paths of ``queue.jobs``/``generation`` are relative to (default: the
    working dir; a merge passes the run's launch dir)."""
    raw_jobs = [(f"queue.jobs[{i}]", job) for i, job in enumerate(queue_cfg.jobs or [])]
    if queue_cfg.prompts_file:
        folder = Path(queue_cfg.prompts_file).expanduser().absolute().parent  # input paths are relative to it
        raw_jobs += [(f"{queue_cfg.prompts_file}[{i}]", resolve_input_paths(job, folder))
                     for i, job in enumerate(read_prompts_file(queue_cfg.prompts_file))]
    if not raw_jobs:
        raw_jobs = [(f"queue.default_jobs[{i}]", job) for i, job in enumerate(queue_cfg.default_jobs or [])]
    raw_jobs = expand_grid(raw_jobs, getattr(queue_cfg, "grid", None), validate_job_keys)
    if queue_cfg.repeats < 1:
        raise ConfigError(f"queue.repeats: must be >= 1, got {queue_cfg.repeats}")
    specs: list[JobSpec] = []
    taken: set[str] = set()
    for where, raw in raw_jobs:
        settings, repeats = job_settings(raw, generation_defaults, where, model_cfg, base_dir)
        for repeat in range(repeats * queue_cfg.repeats):
            resolved = dict(settings)
            if repeat and resolved["seed"] != -1:
                # Repeats of a fixed seed give distinct videos; the seed stays below 2**32.
                resolved["seed"] = (resolved["seed"] + repeat) % SEED_LIMIT
            job_id = unique_job_id(job_id_for(resolved, repeat), taken)
            taken.add(job_id)
            specs.append(JobSpec(index=len(specs), job_id=job_id, settings=resolved, repeat_index=repeat))
    if not specs:
        raise ConfigError("queue: no jobs (set queue.jobs, queue.prompts_file, or use queue=default)")
    return specs
