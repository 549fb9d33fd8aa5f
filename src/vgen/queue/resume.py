"""Resume: rerun only the jobs of a queue that have no matching ``success`` row yet.

``queue.resume=true`` reads the run dir's own manifest (``hydra.run.dir=<existing dir>``); on the
command line it also brings back the run's saved overrides (``resume_in_place_argv``), so the resume
runs the run's own queue. A task that SLURM/submitit requeued (after a timeout or preemption) resumes
the same way on its own, so a requeue never redoes finished jobs. ``queue.resume_from=DIR`` reads
another run's manifest and writes into the new run dir (both together read both manifests). A job is
done when a ``success`` row has its ``job_id`` and its ``output_key`` (same model, dtype, LoRA files,
enhancer and output settings: see ``vgen.jobs.output_key``).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from vgen.cli import argv_value
from vgen.errors import ConfigError
from vgen.jobs.expand import JobSpec
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, read_manifest
from vgen.queue.signals import remove_temp_files

log = logging.getLogger(__name__)
SAVED_OVERRIDES = Path(".hydra") / "overrides.yaml"
# Where a resume in place records its own overrides and resolved config (the run's own stay as they were).
RESUME_RECORDS = Path(".hydra") / "resumes"
_TRUE_VALUES = ("true", "True", "1")


@dataclass
class ResumePlan:
    todo: list[JobSpec]
    skipped: int = 0
    in_place: bool = False  # the run dir's own manifest was read (queue.resume=true or a requeue)


def requeued_here(run_dir: Path) -> bool:
    """A requeued SLURM/submitit task reruns the same sweep point in the same run dir.

    submitit's local executor requeues without SLURM variables, but each of its run dirs belongs to
    one sweep point, so an existing manifest there can only come from an earlier attempt.
    """
    if not (run_dir / MANIFEST_RELATIVE_PATH).is_file():
        return False
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0 or bool(os.environ.get("SUBMITIT_EXECUTOR"))


def resume_sources(queue_cfg, run_dir: Path) -> tuple[list[Path], bool]:
    """``(run dirs whose manifests say what is done, whether run_dir itself is one)``."""
    sources = []
    if queue_cfg.resume_from:
        source = Path(queue_cfg.resume_from).expanduser()
        if not (source / MANIFEST_RELATIVE_PATH).is_file():
            raise ConfigError(f"queue.resume_from: no manifest at {source / MANIFEST_RELATIVE_PATH}")
        sources.append(source)
    in_place = bool(queue_cfg.resume) or requeued_here(run_dir)
    if in_place and run_dir not in sources:
        sources.append(run_dir)
    return sources, in_place


def jobs_to_run(queue_cfg, run_dir: Path, jobs: Sequence[JobSpec],
                output_key: Callable[[JobSpec], str]) -> ResumePlan:
    """The jobs still to run; also clears temp files a killed run left in ``run_dir``.

    A resume in place whose jobs match none of the job ids in the run's manifest is a ConfigError
    (another queue than the run's own), raised before anything is touched.
    """
    sources, in_place = resume_sources(queue_cfg, run_dir)
    if not sources:
        return ResumePlan(list(jobs))
    keys_by_job: dict[str, set[str | None]] = defaultdict(set)
    torn = 0
    for source in sources:
        contents = read_manifest(source / MANIFEST_RELATIVE_PATH)  # logs the lines it skips
        torn += len(contents.skipped_lines)
        if in_place and source == run_dir:
            check_same_queue(run_dir, {row.get("job_id") for row in contents.rows}, jobs)
        for row in contents.rows:
            if row.get("status") == "success" and "job_id" in row:
                keys_by_job[row["job_id"]].add(row.get("output_key"))
    removed = remove_temp_files(run_dir)
    if removed:
        log.info("Resume: removed %d temp file(s) left by an interrupted run", removed)
    todo, changed, unkeyed = [], 0, 0
    for job in jobs:
        recorded = keys_by_job.get(job.job_id)
        if recorded and output_key(job) in recorded:
            continue
        todo.append(job)
        changed += bool(recorded and recorded - {None})
        unkeyed += recorded == {None}
    if changed:
        log.warning("Resume: %d job(s) succeeded before with another model, dtype, LoRA file, enhancer, output "
                    "setting or input file (output_key differs): running them again", changed)
    if unkeyed:
        log.warning("Resume: %d job(s) have success rows without an output_key (written by an older vgen), so "
                    "what made them is unknown: running them again", unkeyed)
    skipped = len(jobs) - len(todo)
    shown = ", ".join(str(source) for source in sources)
    log.info("Resume from %s: %d job(s) already succeeded and skipped, %d to run%s", shown, skipped, len(todo),
             f" ({torn} torn manifest line(s) ignored)" if torn else "")
    return ResumePlan(todo, skipped, in_place)


def check_same_queue(run_dir: Path, recorded_job_ids: set, jobs: Sequence[JobSpec]) -> None:
    if recorded_job_ids and not recorded_job_ids & {job.job_id for job in jobs}:
        raise ConfigError(
            f"queue.resume: none of this config's {len(jobs)} job(s) is in the manifest of {run_dir} "
            f"({len(recorded_job_ids)} job id(s)): it is not that run's queue, so nothing was run or written. "
            "Drop the overrides that change its jobs (queue.*, generation.*), or resume into a new run dir "
            f"with queue.resume_from={run_dir}"
        )


# ---------------------------------------------------------------------------- resume in place, argv


def saved_overrides(run_dir: Path) -> list[str] | None:
    """The overrides the run was made with (Hydra's ``.hydra/overrides.yaml``), None when not saved."""
    path = run_dir / SAVED_OVERRIDES
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    return [str(item) for item in OmegaConf.load(path)]


def override_keys(overrides: Sequence[str]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return [override.key_or_group for override in OverridesParser.create().parse_overrides(list(overrides))]


def resume_in_place_argv(argv: list[str]) -> list[str]:
    """``hydra.run.dir=RUN queue.resume=true [more]`` -> RUN's saved overrides, then the new ones on top.

    Saved overrides whose key the command line sets again are dropped. Hydra then writes nothing into
    RUN (``hydra.output_subdir=null``): the run's own ``.hydra`` stays as it was, and the resume
    records its overrides under ``.hydra/resumes/`` once it really runs (``write_run_config``).
    Anything else (a sweep, no saved overrides, no ``queue.resume=true``) is returned unchanged.
    """
    if "-m" in argv or "--multirun" in argv or argv_value(argv, "queue.resume") not in _TRUE_VALUES:
        return argv
    run_dir = argv_value(argv, "hydra.run.dir")
    saved = saved_overrides(Path(run_dir)) if run_dir else None
    if saved is None:
        return argv
    given = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    try:
        given_keys = set(override_keys(given))
        kept = [text for text, key in zip(saved, override_keys(saved)) if key not in given_keys]
    except Exception:  # noqa: BLE001 - an override Hydra cannot parse: let Hydra report it as usual
        return argv
    first = argv.index(given[0])
    return [*argv[:first], *kept, *argv[first:], "hydra.output_subdir=null"]


def write_run_config(run_dir: Path, plan: ResumePlan, overrides: Sequence[str], resolved_yaml: str,
                     config_name: str) -> None:
    """A run writes its resolved config as ``config_name``; a resume in place keeps the run's own and
    records its overrides and resolved config under ``.hydra/resumes/<UTC time>_<pid>/`` instead."""
    from vgen.media.writers import write_text_atomic

    if not (plan.in_place and (run_dir / config_name).is_file()):
        write_text_atomic(run_dir / config_name, resolved_yaml)  # merge/diff/resume read it: never a torn one
        return
    from omegaconf import OmegaConf

    saved = saved_overrides(run_dir) or []
    log.info("Resume in place: the run's saved overrides %s, then %s", saved,
             [override for override in overrides if override not in saved])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S-%fZ")
    folder = run_dir / RESUME_RECORDS / f"{stamp}_{os.getpid()}"
    folder.mkdir(parents=True)
    write_text_atomic(folder / "overrides.yaml", OmegaConf.to_yaml(list(overrides)))
    write_text_atomic(folder / config_name, resolved_yaml)
    log.info("Resume config recorded in %s (the run's own .hydra and %s are kept)", folder, config_name)
