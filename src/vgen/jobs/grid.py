"""Job grids: ``queue.grid`` crosses every job of the queue with the cartesian product of job keys.

``queue.grid={seed: [1, 2], guidance_scale: [3.0, 5.0]}`` turns each job into 4 jobs (grid values
override the job's own keys), all run by one process on one model load. Each cell is an ordinary job,
so it gets its own ``job_id`` from its resolved settings. Pure logic: the dry run and merge use it.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping, Sequence

from vgen.errors import ConfigError

RawJob = tuple[str, Any]  # (where the job was written, e.g. ``queue.jobs[2]``; the raw job mapping)


def grid_cells(grid: Mapping[str, Any] | None, check_keys: Callable[[Mapping[str, Any], str], Any]) -> list[dict]:
    """Every combination of the grid's values in the order written (the last key varies fastest).

    ``check_keys`` validates each value like a job key (unknown key or wrong type: ConfigError naming
    ``queue.grid.<key>``), so a bad grid fails before any model loads.
    """
    if not grid:
        return [{}]
    if not isinstance(grid, Mapping):
        raise ConfigError(f"queue.grid: expected a mapping of job key -> list of values, got {grid!r}")
    axes = []
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"queue.grid.{key}: expected a non-empty list of values, got {values!r}")
        if key == "prompt":
            raise ConfigError("queue.grid.prompt: prompts come from the queue's jobs, not the grid")
        for value in values:
            check_keys({key: value}, "queue.grid")
        axes.append([(key, value) for value in values])
    return [dict(cell) for cell in itertools.product(*axes)]


def expand_grid(raw_jobs: Sequence[RawJob], grid: Mapping[str, Any] | None,
                check_keys: Callable[[Mapping[str, Any], str], Any]) -> list[RawJob]:
    """Each raw job once per grid cell (job-major: all cells of the first job, then the next job)."""
    cells = grid_cells(grid, check_keys)
    if cells == [{}]:
        return list(raw_jobs)
    expanded = []
    for where, job in raw_jobs:
        if not isinstance(job, Mapping):
            expanded.append((where, job))  # job_settings reports it with its location
            continue
        for cell in cells:
            label = ",".join(f"{key}={value}" for key, value in cell.items())
            expanded.append((f"{where}[grid {label}]", {**job, **cell}))
    return expanded


def grid_keys(config: Mapping[str, Any]) -> list[str]:
    """The job keys a resolved config's ``queue.grid`` expands over (empty without a job grid): a
    summary or report lays them out like sweep axes."""
    grid = (config.get("queue") or {}).get("grid") or {}
    return list(grid) if isinstance(grid, Mapping) else []
