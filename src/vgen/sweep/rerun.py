"""The command that reruns a sweep's missing and failed jobs (``python -m vgen.merge --rerun-missing``).

It is the sweep's own command (a run dir's saved task overrides and launcher choice, without its
shard and run-dir settings) plus ``queue.only_jobs=FILE`` listing the jobs to run, as a new sweep
under ``SWEEP_DIR/reruns/<UTC time>/``, so the next merge of SWEEP_DIR sees its rows too. Points whose
commands differ (a sweep over settings) each get their own command, in ``reruns/<UTC time>/<n>/``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vgen.cli import RESOLVED_CONFIG_NAME
from vgen.errors import ConfigError
from vgen.merge import HYDRA_CONFIG, find_run_dirs

RERUNS_DIR = "reruns"
JOB_LIST_NAME = "only_jobs.txt"
# Task overrides that choose which jobs of the queue a run did or where it wrote: the rerun sets its own.
DROPPED_KEYS = ("queue.shard", "queue.num_shards", "queue.only_jobs", "queue.resume", "queue.resume_from",
                "dry_run", "hydra.run.dir", "hydra.sweep.dir")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def saved_command(run_dir: Path) -> tuple[list[str], Path]:
    """``(the run's task overrides and launcher overrides, the dir it was started from)``."""
    from omegaconf import OmegaConf

    hydra = OmegaConf.load(run_dir / HYDRA_CONFIG).hydra
    task = [str(item) for item in hydra.overrides.task if override_key(str(item)) not in DROPPED_KEYS]
    launcher = [str(item) for item in hydra.overrides.hydra
                if override_key(str(item)) == "hydra/launcher" or override_key(str(item)).startswith("hydra.launcher.")]
    return [*task, *launcher], Path(hydra.runtime.cwd)


def hydra_quoted(path: Path) -> str:
    """``path`` as a quoted Hydra override value: unquoted, Hydra's grammar refuses non-ASCII letters.
    Quotes are escaped, and so are the backslashes just before a quote or the end (Hydra's rule)."""
    return "'" + re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), str(path)) + "'"


def rerun_groups(sweep_dir: Path, job_ids: list[str]) -> list[tuple[list[str], Path, list[str]]]:
    """``(overrides, cwd, job ids)`` per distinct command of the sweep's run dirs: shards of one queue share
    a command; points of a sweep over settings (``generation.seed=1,2``) each have their own queue and
    rerun with their own overrides. Each job id goes to the first command whose queue holds it."""
    from vgen.merge import expected_job_ids

    wanted, expanded = dict.fromkeys(job_ids), {}
    groups: dict[tuple[tuple[str, ...], Path], list[str]] = {}
    for run_dir in find_run_dirs(sweep_dir):
        if not (run_dir / HYDRA_CONFIG).is_file() or not wanted:
            continue
        overrides, cwd = saved_command(run_dir)
        expected = set(expected_job_ids(run_dir, expanded)[1]) if (run_dir / RESOLVED_CONFIG_NAME).is_file() else set()
        mine = [job_id for job_id in wanted if job_id in expected]
        for job_id in mine:
            del wanted[job_id]
        if mine:
            groups.setdefault((tuple(overrides), cwd), []).extend(mine)
    return [(list(overrides), cwd, ids) for (overrides, cwd), ids in groups.items()]


def rerun_missing(sweep_dir: Path, report: dict[str, Any], *, launch: bool) -> bool:
    """Print (and with ``launch`` run) the rerun command(s); True when a rerun ran."""
    job_ids = [*report["missing_job_ids"], *report["failed_job_ids"]]
    if not job_ids:
        print("rerun: nothing to rerun (no missing or failed job)")
        return False
    if report["running_run_dirs"]:
        run_dir, pid = next(iter(report["running_run_dirs"].items()))
        raise ConfigError(f"rerun: {run_dir} is still running (pid {pid}); rerunning its unfinished jobs now "
                          "would run them twice: wait for it to end, then merge again")
    if not any((run_dir / HYDRA_CONFIG).is_file() for run_dir in find_run_dirs(sweep_dir)):
        raise ConfigError(f"{sweep_dir}: no run dir with a saved {HYDRA_CONFIG}: cannot tell the sweep's command")
    groups = rerun_groups(sweep_dir, job_ids)
    unplaced = len(job_ids) - sum(len(ids) for _, _, ids in groups)
    if unplaced:
        print(f"rerun: {unplaced} job(s) are in no run dir's saved queue with its command: not rerun")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S-%fZ")
    commands = []
    for number, (overrides, cwd, ids) in enumerate(groups):
        rerun_dir = (sweep_dir / RERUNS_DIR / stamp / (str(number) if len(groups) > 1 else "")).resolve()
        rerun_dir.mkdir(parents=True)
        job_list = rerun_dir / JOB_LIST_NAME
        job_list.write_text("".join(f"{job_id}\n" for job_id in ids), encoding="utf-8")
        command = [sys.executable, "-m", "vgen", "-m", *overrides, f"queue.only_jobs={hydra_quoted(job_list)}",
                   f"hydra.sweep.dir={hydra_quoted(rerun_dir)}"]
        print(f"rerun: {len(ids)} job(s) listed in {job_list}; the command:")
        print(f"cd {shlex.quote(str(cwd))} && {shlex.join(command)}")
        commands.append((command, cwd))
    if not launch:
        return False
    for command, cwd in commands:
        completed = subprocess.run(command, cwd=cwd)
        print(f"rerun: exited with code {completed.returncode}")
    return True
