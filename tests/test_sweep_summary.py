"""Hydra multirun sweeps: one model load per basic-launcher sweep, per-point records, sweep summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import read_manifest, run_vgen
from lora_fixtures import make_unfitting_lora_file
from vgen.sweep.summary import POINT_RECORD_NAME, SUMMARY_JSONL_NAME, SUMMARY_TABLE_NAME, write_summary

pytestmark = pytest.mark.slow
SMALL = ["+experiment=tiny_smoke", "runtime.progress=false", "generation.steps=2", "generation.num_frames=5"]


def sweep_dir_of(work: Path) -> Path:
    (summary,) = work.rglob(SUMMARY_JSONL_NAME)
    return summary.parent


def summary_rows(sweep_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (sweep_dir / SUMMARY_JSONL_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def basic_sweep(tmp_path_factory) -> tuple[Path, object]:
    work = tmp_path_factory.mktemp("sweep")
    result = run_vgen("-m", "generation.guidance_scale=3,5,7", *SMALL, f"hydra.sweep.dir={work / 'sweep'}", cwd=work)
    return work / "sweep", result


def test_basic_sweep_loads_the_model_once(basic_sweep):
    sweep_dir, result = basic_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count("Loaded WanPipeline") == 1, log[-3000:]
    run_dirs = sorted(path.parent.parent for path in sweep_dir.glob("*/manifests/run_history.jsonl"))
    assert [path.name for path in run_dirs] == ["0", "1", "2"]
    for run_dir in run_dirs:
        assert [row["status"] for row in read_manifest(run_dir)] == ["success", "success"]


def test_summary_lists_every_point_with_overrides_status_and_artifacts(basic_sweep):
    sweep_dir, _ = basic_sweep
    rows = summary_rows(sweep_dir)
    assert [row["num"] for row in rows] == [0, 1, 2]
    assert [row["status"] for row in rows] == ["success"] * 3
    assert [row["exit_code"] for row in rows] == [0] * 3
    for row, scale in zip(rows, ("3", "5", "7")):
        assert f"generation.guidance_scale={scale}" in row["overrides"]
        assert row["jobs"] == {"success": 2}
        assert len(row["artifacts"]) == 2
        assert all((Path(row["run_dir"]) / artifact).is_file() for artifact in row["artifacts"])
    table = (sweep_dir / SUMMARY_TABLE_NAME).read_text()
    assert table.count("| success |") == 3 and "generation.guidance_scale=7" in table
    assert "Points: 3 success" in table


def copy_of_sweep(sweep_dir: Path, target: Path) -> Path:
    shutil.copytree(sweep_dir, target)
    # Records hold absolute run dirs: point them at the copy.
    for record_file in target.glob(f"*/{POINT_RECORD_NAME}"):
        record = json.loads(record_file.read_text())
        record["run_dir"] = str(record_file.parent)
        record_file.write_text(json.dumps(record))
    return target


def test_point_without_record_is_listed_as_missing(basic_sweep, tmp_path):
    """A worker killed before it wrote any record leaves a point dir without one: it must not vanish."""
    sweep_dir, _ = basic_sweep
    copy = copy_of_sweep(sweep_dir, tmp_path / "sweep")
    (copy / "1" / POINT_RECORD_NAME).unlink()
    records = write_summary(copy)
    assert [(r["num"], r["status"]) for r in records] == [(0, "success"), (1, "missing"), (2, "success")]
    assert records[1]["overrides"][0] == "generation.guidance_scale=5"
    assert records[1]["jobs"] == {"success": 2}  # its manifest still tells what finished
    assert "| 1 | 5 | missing |" in (copy / SUMMARY_TABLE_NAME).read_text()  # its swept value has a column


def test_point_that_never_started_is_listed_as_missing(basic_sweep, tmp_path):
    """A point cancelled while pending has no dir at all: the sweep's multirun.yaml still names it."""
    sweep_dir, _ = basic_sweep
    copy = copy_of_sweep(sweep_dir, tmp_path / "sweep")
    shutil.rmtree(copy / "2")
    records = write_summary(copy)
    assert [(r["num"], r["status"]) for r in records] == [(0, "success"), (1, "success"), (2, "missing")]
    assert records[2]["overrides"][0] == "generation.guidance_scale=7" and "never started" in records[2]["error"]


def test_summary_is_rebuilt_after_a_point_was_rerun_by_hand(basic_sweep, tmp_path):
    """A killed point rerun as docs/SLURM.md shows (a single run in its dir, which rewrites its
    .hydra/hydra.yaml without a job number) is listed under its number with the rerun's outcome."""
    sweep_dir, _ = basic_sweep
    copy = copy_of_sweep(sweep_dir, tmp_path / "sweep")
    overrides = json.loads((copy / "1" / POINT_RECORD_NAME).read_text())["overrides"]
    (copy / "1" / POINT_RECORD_NAME).unlink()
    for name in (SUMMARY_JSONL_NAME, SUMMARY_TABLE_NAME):
        (copy / name).unlink()
    rerun = run_vgen(f"hydra.run.dir={copy / '1'}", "queue.resume=true", *overrides, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "2 job(s) already succeeded and skipped" in rerun.stdout + rerun.stderr
    rebuilt = run_vgen(str(copy), module="vgen.sweep.summary", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert "Points: 3 success" in rebuilt.stdout
    assert [(row["num"], row["status"], row["jobs"]) for row in summary_rows(copy)] == [
        (0, "success", {"success": 2}), (1, "success", {"success": 2}), (2, "success", {"success": 2})]


def test_summary_command_usage_and_bad_input(tmp_path):
    usage = run_vgen("--help", module="vgen.sweep.summary", cwd=tmp_path)
    assert usage.returncode == 0 and "sweep_dir" in usage.stdout
    not_a_sweep = run_vgen(str(tmp_path), module="vgen.sweep.summary", cwd=tmp_path)
    assert not_a_sweep.returncode == 2
    assert not_a_sweep.stderr.strip() == f"error: {tmp_path}: not a sweep dir (no multirun.yaml)"
    assert not list(tmp_path.iterdir())


def test_failed_point_is_reported_failed(tmp_path):
    """A point whose queue has a failing job exits 1 and shows as failed; the sweep still summarises."""
    make_unfitting_lora_file(tmp_path / "loras" / "other_model.safetensors")
    jobs = "queue.jobs=[{prompt: fine},{prompt: unfitting lora, loras: [other_model]}]"
    result = run_vgen("-m", "generation.seed=1,2", "runtime.progress=false", "generation.steps=2",
                      "generation.num_frames=5", jobs, f"lora.dirs=[{tmp_path / 'loras'}]",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    rows = summary_rows(tmp_path / "sweep")
    assert [(row["status"], row["exit_code"], row["jobs"]) for row in rows] == [
        ("failed", 1, {"error": 1, "success": 1})] * 2


def test_single_run_writes_no_sweep_files(tmp_path):
    result = run_vgen(*SMALL, "queue.jobs=[{prompt: one}]", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "run" / POINT_RECORD_NAME).exists()
    assert not list(tmp_path.rglob(SUMMARY_JSONL_NAME))


def test_submitit_local_sweep_completes_and_exits_like_its_failed_point(tmp_path):
    """Point 1's job fails (width 65) in a worker process: the sweep still exits non-zero."""
    result = run_vgen("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "generation.width=64,65",
                      *SMALL, "queue.jobs=[{prompt: one}]", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
                      timeout=600)
    assert [row["status"] for row in read_manifest(tmp_path / "sweep" / "0")] == ["success"]
    for num in ("0", "1"):
        assert (tmp_path / "sweep" / num / POINT_RECORD_NAME).is_file()  # written in the worker process
    rows = summary_rows(tmp_path / "sweep")
    assert [(row["num"], row["status"]) for row in rows[:1]] == [(0, "success")]
    assert rows[1]["status"] in ("failed", "error") and rows[1]["exit_code"] in (1, 2), rows[1]
    assert result.returncode == rows[1]["exit_code"], (result.stdout + result.stderr)[-3000:]
