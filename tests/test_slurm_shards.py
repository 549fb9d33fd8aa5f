"""Shards of one queue as one SLURM array on the real one-node cluster (scripts/slurm_cluster.sh):
merge, a task cancelled mid-run, rerun-missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_manifest, run_vgen
from test_slurm_sweep import slurm_env  # noqa: F401 - the module's private cluster fixture
from vgen.merge import COVERAGE_NAME
from vgen.sweep.summary import POINT_RECORD_NAME

pytestmark = pytest.mark.slow
BASE = ["runtime.progress=false", "generation.steps=2", "queue.jobs=[]", "queue.prompts_file=shots.csv",
        "hydra/launcher=slurm_local"]


def write_shots(work: Path, count: int = 12) -> None:
    (work / "shots.csv").write_text("prompt,seed\n" + "".join(f"shot {i},{i}\n" for i in range(count)))


def merge(sweep: Path, *args: str, env: dict, cwd: Path):
    return run_vgen(str(sweep), *args, module="vgen.merge", cwd=cwd, env=env, timeout=900)


def test_twelve_jobs_in_three_array_tasks_merge_to_twelve_successes(slurm_env, tmp_path):
    write_shots(tmp_path)
    started = time.perf_counter()
    result = run_vgen("-m", *BASE, "queue.num_shards=3", "queue.shard=range(0,3)", "hydra.sweep.dir=sweep",
                      cwd=tmp_path, env=slurm_env, timeout=900)
    sharded_s = time.perf_counter() - started
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    shards = [read_manifest(tmp_path / "sweep" / str(num)) for num in range(3)]
    assert sorted(len(rows) for rows in shards) == [4, 4, 4]  # equal costs: an even split
    merged = merge(tmp_path / "sweep", env=slurm_env, cwd=tmp_path)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "coverage: 12 expected, 12 succeeded exactly once, 0 failed, 0 missing, 0 duplicated" in merged.stdout

    started = time.perf_counter()  # the same 12 jobs as one task, for the wall-time comparison
    single = run_vgen("-m", *BASE, "hydra.sweep.dir=single", cwd=tmp_path, env=slurm_env, timeout=900)
    single_s = time.perf_counter() - started
    assert single.returncode == 0, (single.stdout + single.stderr)[-4000:]
    assert len(read_manifest(tmp_path / "single" / "0")) == 12
    print(f"\n[slurm] 12 jobs: 1 task {single_s:.1f}s, 3 array tasks {sharded_s:.1f}s "
          f"(ratio {single_s / sharded_s:.2f}; array_parallelism=2 on {os.cpu_count()} CPUs)")


def test_cancelled_task_is_missing_then_rerun_missing_completes_the_sweep(slurm_env, tmp_path):
    write_shots(tmp_path)
    sweep = tmp_path / "sweep"
    sweep_run = subprocess.Popen(
        [sys.executable, "-m", "vgen", "-m", *BASE, "queue.num_shards=3", "queue.shard=range(0,3)",
         f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env={**os.environ, **slurm_env},
        stdout=(tmp_path / "sweep.log").open("w"), stderr=subprocess.STDOUT)
    manifest = sweep / "1" / "manifests" / "run_history.jsonl"
    deadline = time.monotonic() + 900
    while not (manifest.is_file() and manifest.read_text().count("\n") >= 1):  # shard 1 is mid-run
        assert time.monotonic() < deadline and sweep_run.poll() is None, "shard 1 never started"
        time.sleep(0.2)
    task = next(path.name for path in (sweep / ".submitit").iterdir() if path.name.endswith("_1"))
    subprocess.run(["scancel", task], env={**os.environ, **slurm_env}, check=True, timeout=60)
    others = [sweep / str(num) / POINT_RECORD_NAME for num in (0, 2)]
    while not all(record.is_file() for record in others):  # the other two tasks run to their end
        assert time.monotonic() < deadline, "shards 0 and 2 did not finish"
        time.sleep(0.5)
    try:
        sweep_run.wait(timeout=60)
    except subprocess.TimeoutExpired:  # without accounting (sacct) submitit never sees the cancelled task end
        sweep_run.terminate()
        sweep_run.wait(timeout=60)
    assert sweep_run.returncode != 0

    first = merge(sweep, env=slurm_env, cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    coverage = json.loads((sweep / COVERAGE_NAME).read_text())
    assert coverage["expected"] == 12 and coverage["missing"] >= 1 and coverage["duplicated"] == 0
    assert coverage["succeeded_once"] + coverage["missing"] + coverage["failed"] == 12
    assert "missing: " in first.stdout

    rerun = merge(sweep, "--rerun-missing", "--launch", env=slurm_env, cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert "hydra/launcher=slurm_local" in rerun.stdout  # the rerun went to SLURM like the sweep
    final = merge(sweep, env=slurm_env, cwd=tmp_path)
    assert final.returncode == 0 and "12 succeeded exactly once, 0 failed, 0 missing" in final.stdout


def test_grid_loads_the_model_once_where_a_sweep_loads_it_per_point(slurm_env, tmp_path):
    common = ["runtime.progress=false", "generation.steps=2", "queue.jobs=[{prompt: grid}]", "hydra/launcher=slurm_local"]
    grid = run_vgen("-m", *common, "queue.grid={seed: [1, 2, 3], guidance_scale: [3.0, 5.0]}", "hydra.sweep.dir=grid",
                    cwd=tmp_path, env=slurm_env, timeout=900)
    assert grid.returncode == 0, (grid.stdout + grid.stderr)[-4000:]
    sweep = run_vgen("-m", *common, "generation.seed=1,2,3", "generation.guidance_scale=3.0,5.0", "hydra.sweep.dir=sweep",
                     cwd=tmp_path, env=slurm_env, timeout=900)
    assert sweep.returncode == 0, (sweep.stdout + sweep.stderr)[-4000:]
    loads = {name: sum((path.read_text().count("Loaded WanPipeline")) for path in (tmp_path / name).glob("*/vgen.log"))
             for name in ("grid", "sweep")}
    rows = {name: sum(len(read_manifest(path.parent.parent)) for path in (tmp_path / name).glob("*/manifests/*.jsonl"))
            for name in ("grid", "sweep")}
    assert rows == {"grid": 6, "sweep": 6} and loads == {"grid": 1, "sweep": 6}
    print(f"\n[slurm] 6 generations: model loads {loads['grid']} as a 2x3 grid, {loads['sweep']} as a 6-point sweep")
