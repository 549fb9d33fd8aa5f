"""What a report shows, read from a run dir or a sweep dir: one entry per job (the latest manifest row
of each job), or per sweep point that never produced a row (it failed before its queue started).

A run dir holds ``manifests/run_history.jsonl``; a sweep dir holds ``multirun_summary.jsonl`` (written
by :mod:`vgen.sweep.summary`) listing each point with its overrides. Entries carry coordinates: the
point's swept overrides and the values of the run's ``queue.grid`` keys, from which
:mod:`vgen.report.layout` builds the grid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgen.errors import ConfigError
from vgen.jobs.grid import grid_keys
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, latest_rows, read_rows
from vgen.report.layout import Axis, axes_of, override_coordinates
from vgen.sweep.summary import SUMMARY_JSONL_NAME, load_run_config

LOG_NAME = "vgen.log"


@dataclass
class Entry:
    """One job of a run (``row`` is its latest manifest row) or a point that produced no row."""

    run_dir: Path
    status: str
    coords: dict[str, str]
    config: dict[str, Any]
    row: dict[str, Any] | None = None
    error: str | None = None

    @property
    def job(self) -> dict[str, Any]:
        return (self.row or {}).get("inputs", {}).get("job", {})

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return (self.row or {}).get("artifacts", [])


@dataclass
class ReportSource:
    """Everything one report shows."""

    directory: Path
    kind: str  # "run" or "sweep"
    entries: list[Entry]
    axes: list[Axis] = field(default_factory=list)


def row_error(row: dict[str, Any]) -> str | None:
    error = row.get("error")
    return f"{error.get('type', 'Error')}: {error.get('message', '')}" if error else None


def log_errors(run_dir: Path) -> str | None:
    """The ERROR lines of a run's log: the only record of a point that failed before its queue."""
    path = run_dir / LOG_NAME
    if not path.is_file():
        return None
    lines = [line.split("] - ", 1)[-1].strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
             if "][ERROR]" in line]
    return "\n".join(lines) or None


def run_entries(run_dir: Path, coords: dict[str, str]) -> list[Entry]:
    config = load_run_config(run_dir)
    keys = grid_keys(config)
    entries = []
    for row in latest_rows(read_rows(run_dir / MANIFEST_RELATIVE_PATH)):
        job = row.get("inputs", {}).get("job", {})
        job_coords = {**coords, **{f"queue.grid.{key}": json.dumps(job.get(key)) for key in keys}}
        entries.append(Entry(run_dir, row["status"], job_coords, config, row, row_error(row)))
    return entries


def point_dir(sweep_dir: Path, record: dict[str, Any]) -> Path:
    """The point's run dir: records hold absolute paths, so in a copied (or moved) sweep dir the
    point's own subdir wins over the recorded path, which may be the original or gone."""
    recorded = Path(record["run_dir"])
    inside = sweep_dir / recorded.name
    return inside if inside.is_dir() else recorded


def sweep_entries(sweep_dir: Path) -> list[Entry]:
    records = [json.loads(line) for line in (sweep_dir / SUMMARY_JSONL_NAME).read_text(encoding="utf-8").splitlines()
               if line.strip()]
    entries = []
    for record in records:
        run_dir = point_dir(sweep_dir, record)
        coords = override_coordinates(record.get("overrides", []))
        point = run_entries(run_dir, coords)
        if not point:
            error = record.get("error") or log_errors(run_dir) or f"the point ended with status {record['status']}"
            point = [Entry(run_dir, record["status"], coords, load_run_config(run_dir), None, error)]
        entries += point
    return entries


def collect(directory: str | Path) -> ReportSource:
    """Read a run dir or a sweep dir (bad input: :class:`ConfigError` naming the dir)."""
    directory = Path(directory).resolve()
    if (directory / SUMMARY_JSONL_NAME).is_file():
        entries, kind = sweep_entries(directory), "sweep"
    elif (directory / MANIFEST_RELATIVE_PATH).is_file():
        entries, kind = run_entries(directory, {}), "run"
    elif directory.is_dir():
        raise ConfigError(f"{directory}: not a vgen run or sweep dir (no {MANIFEST_RELATIVE_PATH} "
                          f"or {SUMMARY_JSONL_NAME})")
    else:
        raise ConfigError(f"{directory}: no such directory")
    return ReportSource(directory, kind, entries, axes_of([entry.coords for entry in entries]))
