"""Sweep summary: a Hydra callback recording each sweep point's outcome and the whole sweep's table.

``on_job_end`` runs where the job ran (the sweep process for the basic launcher, the worker for
submitit), so it writes a per-point record file into the point's run dir; ``on_multirun_end`` runs
in the submitting process and gathers those records from the sweep dir into
``multirun_summary.jsonl`` (one row per point) and ``multirun_summary.md`` (a readable table).
A point whose dir exists but holds no record (its worker was killed) is listed as ``missing``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vgen.manifest import MANIFEST_RELATIVE_PATH, latest_rows, read_rows, utc_timestamp

log = logging.getLogger(__name__)
POINT_RECORD_NAME = "sweep_point.json"
SUMMARY_JSONL_NAME = "multirun_summary.jsonl"
SUMMARY_TABLE_NAME = "multirun_summary.md"
# vgen's exit codes (see vgen.app) as sweep point statuses.
EXIT_STATUS = {0: "success", 1: "failed", 2: "error", 130: "interrupted", 143: "interrupted"}


def manifest_outcome(run_dir: Path) -> dict[str, Any]:
    """Job counts by status and the success artifacts, from the latest manifest row of every job."""
    rows = latest_rows(read_rows(run_dir / MANIFEST_RELATIVE_PATH))
    counts = Counter(row["status"] for row in rows)
    artifacts = [artifact["path"] for row in rows if row["status"] == "success" for artifact in row.get("artifacts", [])]
    return {"jobs": dict(sorted(counts.items())), "artifacts": artifacts}


def point_record(config: DictConfig, job_return: JobReturn) -> dict[str, Any]:
    """The outcome of one sweep point (``job_return`` of the task function ``vgen.app.hydra_entry``)."""
    value = job_return._return_value  # the public property re-raises a failed job's exception
    if job_return.status == JobStatus.COMPLETED and isinstance(value, int):
        exit_code, error = value, None
        status = EXIT_STATUS.get(value, "failed" if value else "success")
    else:
        exit_code, status = None, "error"
        error = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else repr(value)
    run_dir = Path(config.hydra.runtime.output_dir)
    return {
        "num": int(config.hydra.job.num),
        "overrides": list(OmegaConf.to_container(config.hydra.overrides.task)),
        "status": status,
        "exit_code": exit_code,
        "error": error,
        "run_dir": str(run_dir),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "finished": utc_timestamp(),
        **manifest_outcome(run_dir),
    }


def missing_record(point_dir: Path) -> dict[str, Any]:
    """A point that started (Hydra saved its overrides) but never reported back."""
    overrides = OmegaConf.load(point_dir / ".hydra" / "overrides.yaml")
    hydra_cfg = OmegaConf.load(point_dir / ".hydra" / "hydra.yaml")
    return {
        "num": int(hydra_cfg.hydra.job.num),
        "overrides": list(OmegaConf.to_container(overrides)),
        "status": "missing",
        "exit_code": None,
        "error": "the point never reported an outcome (killed, timed out or still running)",
        "run_dir": str(point_dir),
        "slurm_job_id": None,
        "finished": None,
        **manifest_outcome(point_dir),
    }


def gather_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every point of the sweep, ordered by its job number."""
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sweep_dir.rglob(POINT_RECORD_NAME)]
    reported = {Path(record["run_dir"]).resolve() for record in records}
    for overrides_file in sweep_dir.rglob(".hydra/overrides.yaml"):
        point_dir = overrides_file.parent.parent
        if point_dir.resolve() not in reported and (point_dir / ".hydra" / "hydra.yaml").is_file():
            records.append(missing_record(point_dir))
    return sorted(records, key=lambda record: record["num"])


def format_table(records: list[dict[str, Any]], sweep_dir: Path) -> str:
    """A Markdown table: one line per point."""
    lines = [
        f"# Sweep {sweep_dir}",
        "",
        "| # | status | jobs | overrides | run dir | artifacts |",
        "|---|--------|------|-----------|---------|-----------|",
    ]
    for record in records:
        jobs = ", ".join(f"{count} {status}" for status, count in record["jobs"].items()) or "none"
        run_dir = Path(record["run_dir"])
        shown_dir = run_dir.relative_to(sweep_dir) if run_dir.is_relative_to(sweep_dir) else run_dir
        cells = [
            str(record["num"]), record["status"], jobs, " ".join(record["overrides"]) or "(none)",
            str(shown_dir), "<br>".join(record["artifacts"]) or "-",
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    counts = Counter(record["status"] for record in records)
    lines += ["", "Points: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))]
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """(Re)write the sweep dir's summary files from its point records; returns the records."""
    sweep_dir = Path(sweep_dir).resolve()
    records = gather_records(sweep_dir)
    with open(sweep_dir / SUMMARY_JSONL_NAME, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
    (sweep_dir / SUMMARY_TABLE_NAME).write_text(format_table(records, sweep_dir), encoding="utf-8")
    return records


class SweepSummaryCallback(Callback):
    """Registered under ``hydra.callbacks.sweep_summary`` in conf/config.yaml."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        record = point_record(config, job_return)
        target = Path(record["run_dir"]) / POINT_RECORD_NAME
        target.write_text(json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():  # nothing ran (e.g. the launcher failed before the first point)
            return
        records = write_summary(sweep_dir)
        counts = Counter(record["status"] for record in records)
        log.info("Sweep summary (%s): %s", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
                 sweep_dir.resolve() / SUMMARY_TABLE_NAME)
        from vgen.report import write_report_after_run

        write_report_after_run(sweep_dir, config.report)
