"""Resume: rerun only the jobs of a queue that have no ``success`` row yet.

``queue.resume=true`` reads the run dir's own manifest (``hydra.run.dir=<existing dir>``). A task that
SLURM/submitit requeued (after a timeout or preemption) resumes the same way on its own, so a requeue
never redoes finished jobs. ``queue.resume_from=DIR`` reads another run's manifest and
writes into the new run dir. Jobs are matched by their deterministic ``job_id``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

from vgen.errors import ConfigError
from vgen.jobs import JobSpec
from vgen.manifest import MANIFEST_RELATIVE_PATH, read_rows
from vgen.signals import remove_temp_files

log = logging.getLogger(__name__)


def succeeded_job_ids(rows: Iterable[dict]) -> set[str]:
    return {row["job_id"] for row in rows if row.get("status") == "success" and "job_id" in row}


def resume_source(queue_cfg, run_dir: Path) -> Path | None:
    """The run dir whose manifest says what is done, or None when not resuming."""
    if queue_cfg.resume_from:
        source = Path(queue_cfg.resume_from).expanduser()
        if not (source / MANIFEST_RELATIVE_PATH).is_file():
            raise ConfigError(f"queue.resume_from: no manifest at {source / MANIFEST_RELATIVE_PATH}")
        return source
    return run_dir if queue_cfg.resume or requeued_here(run_dir) else None


def requeued_here(run_dir: Path) -> bool:
    """A requeued SLURM/submitit task reruns the same sweep point in the same run dir.

    submitit's local executor requeues without SLURM variables, but each of its run dirs belongs to
    one sweep point, so an existing manifest there can only come from an earlier attempt.
    """
    if not (run_dir / MANIFEST_RELATIVE_PATH).is_file():
        return False
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0 or bool(os.environ.get("SUBMITIT_EXECUTOR"))


def jobs_to_run(queue_cfg, run_dir: Path, jobs: Sequence[JobSpec]) -> tuple[list[JobSpec], int]:
    """``(jobs still to run, number skipped)``; also clears temp files a killed run left in ``run_dir``."""
    source = resume_source(queue_cfg, run_dir)
    if source is None:
        return list(jobs), 0
    removed = remove_temp_files(run_dir)
    if removed:
        log.info("Resume: removed %d temp file(s) left by an interrupted run", removed)
    done = succeeded_job_ids(read_rows(source / MANIFEST_RELATIVE_PATH))
    todo = [job for job in jobs if job.job_id not in done]
    skipped = len(jobs) - len(todo)
    log.info("Resume from %s: %d job(s) already succeeded and skipped, %d to run", source, skipped, len(todo))
    return todo, skipped
