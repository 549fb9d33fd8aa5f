"""queue.grid keys are axes like a sweep's overrides: in the summary tables and in the report, through
real tiny ``python -m vgen`` runs (a single run with a 2x2 grid; a 2-point sweep whose points each
have a 2-cell grid)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import run_vgen
from vgen.report.collect import collect
from vgen.sweep.summary import GRID_SUMMARY_NAME, SUMMARY_JSONL_NAME, SUMMARY_TABLE_NAME

pytestmark = pytest.mark.slow
SMALL = ["+experiment=tiny_smoke", "runtime.progress=false", "generation.steps=2", "generation.num_frames=5",
         "queue.jobs=[{prompt: one}]"]


def table_rows(table: str) -> list[dict[str, str]]:
    """The Markdown table's lines as {column: cell}."""
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split(" | ")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split(" | ")))) for line in lines[1:]]


def report_cells(page: Path) -> list[tuple[str, str]]:
    """(row, column) of every grid cell of the report page that holds an entry that succeeded."""
    html = page.read_text()
    return re.findall(r'<div class="cell" data-row="([^"]*)" data-col="([^"]*)"><article class="entry ok"', html)


def test_single_run_grid_is_laid_out_by_its_keys(tmp_path):
    run = tmp_path / "run"
    result = run_vgen(*SMALL, "queue.grid={seed: [1, 2], guidance_scale: [3.0, 5.0]}", f"hydra.run.dir={run}",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table_rows((run / GRID_SUMMARY_NAME).read_text())
    assert [(row["seed"], row["guidance_scale"], row["status"], row["jobs"]) for row in rows] == [
        ("1", "3.0", "success", "1 success"), ("1", "5.0", "success", "1 success"),
        ("2", "3.0", "success", "1 success"), ("2", "5.0", "success", "1 success")]
    assert len({row["artifacts"] for row in rows}) == 4 and all((run / row["artifacts"]).is_file() for row in rows)
    source = collect(run)
    assert [(axis.key, axis.values) for axis in source.axes] == [
        ("queue.grid.seed", ("1", "2")), ("queue.grid.guidance_scale", ("3.0", "5.0"))]
    page = (run / "report.html").read_text()
    assert "queue.grid.seed ↓ / queue.grid.guidance_scale →" in page
    assert report_cells(run / "report.html") == [("1", "3.0"), ("1", "5.0"), ("2", "3.0"), ("2", "5.0")]


def test_single_run_without_grid_writes_no_grid_summary(tmp_path):
    result = run_vgen(*SMALL, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "run" / GRID_SUMMARY_NAME).exists()


def test_sweep_of_grids_combines_sweep_axes_and_grid_axes(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_vgen("-m", *SMALL, "generation.steps=2,3", "queue.grid={seed: [1, 2]}", f"hydra.sweep.dir={sweep}",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (sweep / SUMMARY_JSONL_NAME).read_text().splitlines()]
    assert [[(cell["cell"], cell["jobs"]) for cell in record["grid"]] for record in records] == [
        [({"seed": 1}, {"success": 1}), ({"seed": 2}, {"success": 1})]] * 2
    rows = table_rows((sweep / SUMMARY_TABLE_NAME).read_text())
    assert [(row["#"], row["generation.steps"], row["seed"], row["status"]) for row in rows] == [
        ("0", "2", "1", "success"), ("0", "2", "2", "success"), ("1", "3", "1", "success"), ("1", "3", "2", "success")]
    assert all((sweep / row["run dir"] / row["artifacts"]).is_file() for row in rows)
    source = collect(sweep)
    assert [(axis.key, axis.values) for axis in source.axes] == [
        ("generation.steps", ("2", "3")), ("queue.grid.seed", ("1", "2"))]
    assert report_cells(sweep / "report.html") == [("2", "1"), ("2", "2"), ("3", "1"), ("3", "2")]
