"""Sweep summary: a Hydra callback recording each sweep point's outcome and the whole sweep's table.

``on_job_start``/``on_job_end`` run where the point runs (the sweep process for the basic launcher,
the worker for submitit): they write the point's record file into its run dir, first as
``running`` (with the SLURM job id, host and pid), then with the outcome. The submitting process
gathers those records into ``multirun_summary.jsonl`` (one row per point) and
``multirun_summary.md`` (a readable table) when the sweep ends, however it ends: ``vgen.cli.launch``
calls :func:`finish_started_sweeps` after Hydra returned or raised (Hydra skips its own
``on_multirun_end`` when a point ended in an exception). A point that never reported is resolved
from what is left: its SLURM job's state (``sacct``) or its process, see :func:`resolve_unreported`.

``python -m vgen.sweep.summary SWEEP_DIR`` rebuilds the summary at any time, e.g. after requeued
points finished or a point was rerun by hand (a rerun in a point's dir updates its record).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vgen.sweep.attempt_logs import split_attempt_logs, this_attempt
from vgen.cli import RESOLVED_CONFIG_NAME
from vgen.jobs.grid import grid_keys
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, latest_rows, read_rows, utc_timestamp
from vgen.errors import VgenError

log = logging.getLogger(__name__)
POINT_RECORD_NAME = "sweep_point.json"
SUMMARY_JSONL_NAME = "multirun_summary.jsonl"
SUMMARY_TABLE_NAME = "multirun_summary.md"
GRID_SUMMARY_NAME = "grid_summary.md"  # a single run's table of its queue.grid cells
# vgen's exit codes (see vgen.app) as sweep point statuses.
EXIT_STATUS = {0: "success", 1: "failed", 2: "error", 130: "interrupted", 143: "interrupted"}
RUNNING = "running"  # a record's status while its point runs; never left in a summary
# SLURM job states (sacct) in which the job may still run and report.
SLURM_ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
                       "SUSPENDED", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT"}
# Sweep dirs whose sweep started in this process (on_multirun_start), finished by vgen.cli.launch.
_started_sweeps: list[tuple[Path, Any]] = []  # (sweep dir, its report config)


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The run's saved resolved config as plain data ({} when it has none)."""
    import yaml

    path = run_dir / RESOLVED_CONFIG_NAME
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def jobs_outcome(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Job counts by status and the success artifacts of some jobs' latest manifest rows."""
    counts = Counter(row["status"] for row in rows)
    artifacts = [artifact["path"] for row in rows if row["status"] == "success" for artifact in row.get("artifacts", [])]
    return {"jobs": dict(sorted(counts.items())), "artifacts": artifacts}


def grid_outcome(run_dir: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per ``queue.grid`` cell of the run (in queue order): its values (``cell``), job counts and
    artifacts; empty when the run has no job grid. The grid keys are axes like a sweep's overrides."""
    keys = grid_keys(load_run_config(run_dir))
    if not keys:
        return []
    cells: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for row in rows:
        job = row.get("inputs", {}).get("job", {})
        cell = {key: job.get(key) for key in keys}
        cells.setdefault(json.dumps(cell, sort_keys=True), (cell, []))[1].append(row)
    return [{"cell": cell, **jobs_outcome(cell_rows)} for cell, cell_rows in cells.values()]


def manifest_outcome(run_dir: Path) -> dict[str, Any]:
    """Job counts by status and the success artifacts, from the latest manifest row of every job, in
    all and per grid cell."""
    rows = latest_rows(read_rows(run_dir / MANIFEST_RELATIVE_PATH))
    return {**jobs_outcome(rows), "grid": grid_outcome(run_dir, rows)}


def job_outcome(job_return: JobReturn) -> dict[str, Any]:
    """status, exit_code and error of the task function ``vgen.app.hydra_entry``'s return."""
    value = job_return._return_value  # the public property re-raises a failed job's exception
    if job_return.status == JobStatus.COMPLETED and isinstance(value, int):
        status = EXIT_STATUS.get(value, "failed" if value else "success")
        return {"status": status, "exit_code": value, "error": None}
    error = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else repr(value)
    return {"status": "failed", "exit_code": None, "error": error}


def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / POINT_RECORD_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_record(record: dict[str, Any]) -> None:
    """Replace the point's record atomically (the submitting process may read it at any time)."""
    from vgen.media.writers import write_text_atomic

    write_text_atomic(Path(record["run_dir"]) / POINT_RECORD_NAME,
                      json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def point_record(config: DictConfig, outcome: dict[str, Any]) -> dict[str, Any] | None:
    """The record of the point ``config`` runs, or None when it is not a sweep point.

    A sweep point (multirun) is identified by its job number and overrides. A single run in a
    point's dir (one that holds a point record, or is named by its number next to the sweep's
    multirun.yaml) is that point rerun by hand: it keeps the point's number.
    """
    run_dir = Path(config.hydra.runtime.output_dir)
    overrides = list(OmegaConf.to_container(config.hydra.overrides.task))
    if config.hydra.mode == RunMode.MULTIRUN:
        identity = {"num": int(config.hydra.job.num), "overrides": overrides}
    elif (earlier := read_record(run_dir)) is not None:
        identity = {"num": earlier["num"], "overrides": earlier["overrides"]}
    elif run_dir.name.isdigit() and (run_dir.parent / "multirun.yaml").is_file():
        identity = {"num": int(run_dir.name), "overrides": overrides}
    else:
        return None
    return {
        **identity, **outcome,
        "attempts": attempts_so_far(run_dir, outcome["status"] == RUNNING),
        "run_dir": str(run_dir),
        "slurm_job_id": slurm_job_id(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "finished": None if outcome["status"] == RUNNING else utc_timestamp(),
        **manifest_outcome(run_dir),
    }


def attempts_so_far(run_dir: Path, starting: bool) -> list[dict[str, Any]]:
    """The point's SLURM attempts (a requeued task runs again in the same run dir): those its record
    lists, plus this one when it is ``starting`` in a SLURM task (then only those of the same SLURM
    job: a new sweep in an old dir starts afresh; a rerun by hand outside SLURM keeps them)."""
    earlier = (read_record(run_dir) or {}).get("attempts", [])
    attempt = this_attempt() if starting else None
    if attempt is None:
        return earlier
    return [*(entry for entry in earlier if entry["slurm_job_id"] == attempt["slurm_job_id"]), attempt]


def slurm_job_id() -> str | None:
    """This process's SLURM job as squeue and sacct name it: ``ARRAYJOB_TASK`` for an array task."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")


def slurm_job_state(job_id: str) -> str | None:
    """The job's state as ``sacct`` reports it (e.g. ``CANCELLED by 0``), None when sacct cannot tell."""
    try:
        result = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = result.stdout.strip().splitlines()
    return lines[0].strip() if result.returncode == 0 and lines else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_unreported(record: dict[str, Any]) -> dict[str, Any]:
    """A point whose record still says ``running``: ``missing`` while it may still report, else
    ``failed`` (its SLURM job or process ended without an outcome: killed, out of memory, node lost)
    or ``interrupted`` (it ran in this process, which a signal is stopping)."""
    if record["slurm_job_id"]:
        state = slurm_job_state(record["slurm_job_id"])
        if state is None or state.split()[0] in SLURM_ACTIVE_STATES:
            where = f"SLURM state {state}" if state else "sacct cannot tell"
            return {**record, "status": "missing", "error": f"still running or never reported ({where})"}
        return {**record, "status": "failed",
                "error": f"SLURM job {record['slurm_job_id']} ended {state} without reporting an outcome"}
    if record["host"] == socket.gethostname() and record["pid"] == os.getpid():
        return {**record, "status": "interrupted", "error": "stopped by a signal"}
    if record["host"] == socket.gethostname() and process_alive(record["pid"]):
        return {**record, "status": "missing", "error": f"still running (pid {record['pid']})"}
    return {**record, "status": "failed",
            "error": f"its process (pid {record['pid']} on {record['host']}) ended without reporting an outcome"}


def missing_record(point_dir: Path) -> dict[str, Any] | None:
    """A point that started (Hydra saved its overrides) but never wrote a record; None when the dir
    is no sweep point (no job number in its hydra.yaml, e.g. rewritten by a single run, nor as name)."""
    overrides = OmegaConf.load(point_dir / ".hydra" / "overrides.yaml")
    hydra_cfg = OmegaConf.load(point_dir / ".hydra" / "hydra.yaml")
    num = OmegaConf.select(hydra_cfg, "hydra.job.num", default=None, throw_on_missing=False)
    if num is None and not point_dir.name.isdigit():
        return None
    return {
        "num": int(num if num is not None else point_dir.name),
        "overrides": list(OmegaConf.to_container(overrides)),
        "status": "missing",
        "exit_code": None,
        "error": "the point never reported an outcome (killed, timed out or still running)",
        "run_dir": str(point_dir),
        "slurm_job_id": None,
        "host": None,
        "pid": None,
        "finished": None,
        **manifest_outcome(point_dir),
    }


def planned_points(sweep_dir: Path) -> list[list[str]]:
    """Every point's overrides, expanded from the sweep's multirun.yaml as Hydra's basic sweeper
    does (point N = item N); empty for another sweeper or a sweep the parser cannot expand."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    config_file = sweep_dir / "multirun.yaml"
    if not config_file.is_file():
        return []
    hydra_cfg = OmegaConf.load(config_file).hydra
    if OmegaConf.select(hydra_cfg, "sweeper._target_") != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
        return []
    params = [f"{key}={value}" for key, value in (OmegaConf.select(hydra_cfg, "sweeper.params") or {}).items()]
    try:
        overrides = OverridesParser.create().parse_overrides([*params, *hydra_cfg.overrides.task])
        return [point for batch in BasicSweeper.split_arguments(overrides, None) for point in batch]
    except HydraException:
        return []


def never_started_record(num: int, overrides: list[str], sweep_dir: Path) -> dict[str, Any]:
    return {
        "num": num, "overrides": overrides, "status": "missing", "exit_code": None,
        "error": "the point never started (cancelled while pending, or the sweep stopped before it)",
        "run_dir": str(sweep_dir / str(num)), "slurm_job_id": None, "host": None, "pid": None,
        "finished": None, "jobs": {}, "artifacts": [], "grid": [],
    }


def gather_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every point of the sweep, ordered by its job number."""
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sweep_dir.rglob(POINT_RECORD_NAME)]
    records = [resolve_unreported(record) if record["status"] == RUNNING else record for record in records]
    reported = {Path(record["run_dir"]).resolve() for record in records}
    for overrides_file in sweep_dir.rglob(".hydra/overrides.yaml"):
        point_dir = overrides_file.parent.parent
        if point_dir.resolve() not in reported and (point_dir / ".hydra" / "hydra.yaml").is_file():
            records.append(missing_record(point_dir))
    records = [record for record in records if record is not None]
    seen = {record["num"] for record in records}
    records += [never_started_record(num, overrides, sweep_dir)
                for num, overrides in enumerate(planned_points(sweep_dir)) if num not in seen]
    return sorted(records, key=lambda record: record["num"])


def sweep_exit_code(records: list[dict[str, Any]]) -> int:
    """The worst point's exit code: 0 only when every point succeeded."""
    codes = [record["exit_code"] if record["exit_code"] is not None else int(record["status"] != "success")
             for record in records]
    return max(codes, default=0)


def cell_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def jobs_text(jobs: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in jobs.items()) or "none"


def logs_text(record: dict[str, Any]) -> str:
    """Each SLURM attempt's log files (relative to the point's run dir)."""
    return "<br>".join(f"attempt {entry['attempt']}: " + " ".join(filter(None, (entry["stdout"], entry["stderr"])))
                       for entry in record.get("logs", [])) or "-"


def table_line(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def format_table(records: list[dict[str, Any]], sweep_dir: Path, title: str = "Sweep", points: bool = True) -> str:
    """A Markdown table: one line per point, or per point and grid cell when points have job grids.
    The sweep's axes (overrides whose values differ between points) and the ``queue.grid`` keys each
    get a column."""
    from vgen.report.layout import axes_of, override_coordinates  # vgen.report imports this module

    point_axes = [axis.key for axis in axes_of([override_coordinates(record["overrides"]) for record in records])]
    keys = list(dict.fromkeys(key for record in records for cell in record.get("grid", []) for key in cell["cell"]))
    logs = any(record.get("logs") for record in records)
    header = ["#", *point_axes, *keys, "status", "jobs", "overrides", "run dir", "artifacts", "error",
              *(["logs"] if logs else [])]
    lines = [f"# {title} {sweep_dir}", "", table_line(header),
             "|" + "|".join("-" * (len(name) + 2) for name in header) + "|"]
    for record in records:
        run_dir = Path(record["run_dir"])
        shown_dir = run_dir.relative_to(sweep_dir) if run_dir.is_relative_to(sweep_dir) else run_dir
        coords = override_coordinates(record["overrides"])
        point_values = [coords.get(key, "-") for key in point_axes]
        common = [" ".join(record["overrides"]) or "(none)", str(shown_dir)]
        error = " ".join((record["error"] or "-").split())
        for cell in record.get("grid") or [{"cell": {}, "jobs": record["jobs"], "artifacts": record["artifacts"]}]:
            values = [cell_text(cell["cell"][key]) if key in cell["cell"] else "-" for key in keys]
            lines.append(table_line([str(record["num"]), *point_values, *values, record["status"], jobs_text(cell["jobs"]), *common,
                                     "<br>".join(cell["artifacts"]) or "-", error, *([logs_text(record)] if logs else [])]))
    counts = Counter(record["status"] for record in records)
    if points:
        lines += ["", "Points: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))]
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """(Re)write the sweep dir's summary files from its point records; returns the records."""
    sweep_dir = Path(sweep_dir).resolve()
    from vgen.media.writers import write_text_atomic

    records = gather_records(sweep_dir)
    for record in records:
        if record.get("attempts"):
            record["logs"] = split_attempt_logs(Path(record["run_dir"]), record["attempts"])
    # each file whole or not at all: the report and merge read them
    write_text_atomic(sweep_dir / SUMMARY_JSONL_NAME,
                      "".join(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n" for record in records))
    write_text_atomic(sweep_dir / SUMMARY_TABLE_NAME, format_table(records, sweep_dir))
    return records


def write_grid_summary(run_dir: Path, overrides: list[str], exit_code: int) -> Path | None:
    """A single run with a ``queue.grid``: ``grid_summary.md``, the sweep table's layout with one
    line per grid cell. None (nothing written) for a run without a job grid."""
    outcome = manifest_outcome(run_dir)
    if not outcome["grid"]:
        return None
    record = {"num": 0, "overrides": overrides, "status": EXIT_STATUS.get(exit_code, "failed"), "error": None,
              "run_dir": str(run_dir), **outcome}
    target = run_dir / GRID_SUMMARY_NAME
    target.write_text(format_table([record], run_dir.resolve(), title="Run", points=False), encoding="utf-8")
    return target


def finish_started_sweeps() -> int:
    """Write the summary of every sweep this process started; returns the worst point's exit code."""
    code = 0
    while _started_sweeps:
        sweep_dir, report_cfg = _started_sweeps.pop(0)
        if not sweep_dir.is_dir():  # nothing ran (e.g. the launcher failed before the first point)
            continue
        try:
            records = write_summary(sweep_dir)
        except VgenError as exc:  # a full disk: the points' own records stand; rebuild it with vgen.sweep.summary
            log.error("Sweep summary not written: %s", exc)
            code = max(code, exc.exit_code)
            continue
        counts = Counter(record["status"] for record in records)
        log.info("Sweep summary (%s): %s", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
                 sweep_dir.resolve() / SUMMARY_TABLE_NAME)
        from vgen.report import write_report_after_run

        write_report_after_run(sweep_dir, report_cfg)
        code = max(code, sweep_exit_code(records))
    return code


class SweepSummaryCallback(Callback):
    """Registered under ``hydra.callbacks.sweep_summary`` in conf/config.yaml."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _started_sweeps.append((Path(str(config.hydra.sweep.dir)).absolute(), config.report))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        record = point_record(config, {"status": RUNNING, "exit_code": None, "error": None})
        if record is not None:
            write_record(record)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        record = point_record(config, job_outcome(job_return))
        if record is not None:
            write_record(record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vgen.sweep.summary",
        description="Rebuild a sweep's multirun_summary.jsonl and .md from its points' records. "
                    "Exit code: the worst point's (0 every point succeeded, 1 a point failed or is "
                    "missing, 2 bad input or a point with bad config, 130/143 interrupted).")
    parser.add_argument("sweep_dir", type=Path, help="the sweep dir (hydra.sweep.dir; holds one dir per point)")
    args = parser.parse_args(argv)
    if not (args.sweep_dir / "multirun.yaml").is_file():
        print(f"error: {args.sweep_dir}: not a sweep dir (no multirun.yaml)", file=sys.stderr)
        return 2
    try:
        records = write_summary(args.sweep_dir)
    except VgenError as exc:  # a full disk
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(format_table(records, args.sweep_dir.resolve()), end="")
    return sweep_exit_code(records)


if __name__ == "__main__":
    sys.exit(main())
