"""A real single-node SLURM cluster (scripts/slurm_cluster.sh, with accounting): submitit_slurm
sweeps run to the end, and points that are killed, preempted or time out end as the summary says."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, read_manifest, run_vgen
from vgen.sweep.summary import POINT_RECORD_NAME, SUMMARY_JSONL_NAME, SUMMARY_TABLE_NAME

pytestmark = pytest.mark.slow
CLUSTER_SCRIPT = REPO_ROOT / "scripts" / "slurm_cluster.sh"
CANNOT_RUN_HERE = 3  # the script's exit code when SLURM cannot be installed or run on this machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def slurm_env():
    """Start a private cluster (own state dir and ports, so a developer's cluster is untouched); stop it after."""
    # Not under pytest's tmp dir: that is mode 0700 and munged runs as the munge user.
    parent = Path(tempfile.mkdtemp(prefix="vgen-slurm-test-"))
    parent.chmod(0o755)
    env = {**os.environ, "VGEN_SLURM_DIR": str(parent / "cluster"),
           "VGEN_SLURM_CTLD_PORT": str(free_port()), "VGEN_SLURM_D_PORT": str(free_port()),
           "VGEN_SLURM_DBD_PORT": str(free_port()), "VGEN_SLURM_DB_PORT": str(free_port())}
    started = time.perf_counter()
    start = subprocess.run([str(CLUSTER_SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600)
    try:
        if start.returncode == CANNOT_RUN_HERE:
            pytest.skip(f"SLURM cannot run on this machine: {start.stderr.strip()[-500:]}")
        assert start.returncode == 0, start.stderr
        print(f"SLURM cluster start: {time.perf_counter() - started:.1f}s")
        assert start.stdout.startswith("export SLURM_CONF=")
        yield {"SLURM_CONF": start.stdout.strip().removeprefix("export SLURM_CONF=")}
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(parent, ignore_errors=True)


def summary_rows(sweep: Path) -> list[dict]:
    return [json.loads(line) for line in (sweep / SUMMARY_JSONL_NAME).read_text().splitlines()]


def test_submitit_slurm_sweep_of_two_points(slurm_env, tmp_path):
    """Point 1's job fails (width 65): the sweep finishes, and exits non-zero like the point."""
    sweep = tmp_path / "sweep"
    result = run_vgen(
        "-m", "hydra/launcher=slurm_local", "generation.width=64,65", "+experiment=tiny_smoke",
        "runtime.progress=false", "queue.jobs=[{prompt: one}]", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path, env=slurm_env, timeout=600,
    )
    assert [row["status"] for row in read_manifest(sweep / "0")] == ["success"]
    for num in ("0", "1"):
        record = json.loads((sweep / num / POINT_RECORD_NAME).read_text())
        assert record["slurm_job_id"], "the point record is written inside the SLURM job"
    # runtime.threads=0 (auto) takes the preset's cpus_per_task: 1
    assert "torch threads: 1 (SLURM_CPUS_PER_TASK)" in (sweep / "0" / "vgen.log").read_text()
    rows = summary_rows(sweep)
    assert [(row["num"], row["status"]) for row in rows[:1]] == [(0, "success")]
    assert rows[1]["status"] in ("failed", "error") and rows[1]["exit_code"] in (1, 2), rows[1]
    assert result.returncode == rows[1]["exit_code"], (result.stdout + result.stderr)[-4000:]


# ------------------------------------------------------------------ points that end without a result
# Long enough that a signal sent once the model is loaded arrives while the point generates.
SLOW_POINT = ["+experiment=tiny_smoke", "runtime.progress=false", "generation.steps=1000", "queue.jobs=[{prompt: one}]"]
LOADED = "Loaded WanPipeline"


@pytest.fixture
def start_sweep(slurm_env, tmp_path):
    """Start ``python -m vgen -m`` on the cluster in the background; killed after the test if still running."""
    started: list[subprocess.Popen] = []

    def start(*overrides: str) -> tuple[subprocess.Popen, Path]:
        sweep = tmp_path / "sweep"
        started.append(subprocess.Popen(
            [sys.executable, "-m", "vgen", "-m", "hydra/launcher=slurm_local", *SLOW_POINT, *overrides,
             f"hydra.sweep.dir={sweep}"],
            cwd=tmp_path, env={**os.environ, **slurm_env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        return started[-1], sweep

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_until_loaded(process: subprocess.Popen, slurm_env: dict, point_dir: Path, attempt: int = 1,
                      timeout: float = 300) -> str:
    """Wait until the point's ``attempt``-th run loaded its model; returns its SLURM job id as squeue
    names it (``ARRAYJOB_TASK``: the sweep is one array, task N runs point N; a one-point sweep is
    a plain job)."""
    deadline = time.monotonic() + timeout
    log_file = point_dir / "vgen.log"
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the sweep ended early: {process.stdout.read()[-4000:]}"
        if log_file.is_file() and log_file.read_text(errors="replace").count(LOADED) >= attempt:
            running = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], env={**os.environ, **slurm_env},
                                     capture_output=True, text=True, check=True, timeout=30).stdout.split()
            (job,) = [job for job in running if job.endswith(f"_{point_dir.name}")] or running
            return job
        time.sleep(0.5)
    raise AssertionError(f"point {point_dir} did not load its model (attempt {attempt}) in {timeout}s")


def scancel(slurm_env: dict, job_id: str, signal: str) -> None:
    subprocess.run(["scancel", f"--signal={signal}", job_id], env={**os.environ, **slurm_env}, check=True, timeout=30)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        raise AssertionError("the sweep did not end in 300 s") from None
    return process.returncode, output


def test_killed_task_ends_as_a_failed_point(slurm_env, start_sweep):
    """kill -9 of one array task: submitit learns it from sacct; the sweep ends, exit 1, the point failed."""
    process, sweep = start_sweep("generation.seed=1,2")
    scancel(slurm_env, wait_until_loaded(process, slurm_env, sweep / "1"), "KILL")
    code, output = finish(process)
    assert code == 1, output[-4000:]
    rows = summary_rows(sweep)
    assert [(row["num"], row["status"]) for row in rows] == [(0, "success"), (1, "failed")], output[-4000:]
    assert "without reporting an outcome" in rows[1]["error"] and "CANCELLED" in rows[1]["error"]


def test_preempted_point_is_requeued_and_finishes(slurm_env, start_sweep):
    """USR2 early in the time limit is a preemption: submitit requeues, the rerun finishes the job."""
    process, sweep = start_sweep("generation.seed=1")
    scancel(slurm_env, wait_until_loaded(process, slurm_env, sweep / "0"), "USR2")
    code, output = finish(process)
    assert code == 0, output[-4000:]
    assert [row["status"] for row in read_manifest(sweep / "0")] == ["aborted", "success"]
    assert [(row["num"], row["status"]) for row in summary_rows(sweep)] == [(0, "success")]
    first, second = attempt_logs(sweep)
    assert "SIGUSR2 received" in first and "this job is preempted" in first
    assert "SIGUSR2" not in second and "Queue finished: 1 done" in second


def attempt_logs(sweep: Path) -> list[str]:
    """Each SLURM attempt's stdout + stderr of the one-point sweep's task, as its summary lists them
    (submitit appends every attempt to the same files; vgen cuts them per attempt)."""
    (row,) = summary_rows(sweep)
    assert [(entry["attempt"], entry["restart_count"]) for entry in row["logs"]] == [(1, 0), (2, 1)], row["logs"]
    table = (sweep / SUMMARY_TABLE_NAME).read_text()
    assert "attempt 2: slurm_logs/attempt-2.out slurm_logs/attempt-2.err" in table, table
    logs = [(sweep / "0" / entry["stdout"]).read_text() + (sweep / "0" / entry["stderr"]).read_text()
            for entry in row["logs"]]
    for log in logs:  # each attempt starts once and loads its model once
        assert log.count("Starting with JobEnvironment") == 1 and log.count(LOADED) == 1, log[-3000:]
    return logs


def test_timeouts_requeue_a_bounded_number_of_times_then_the_point_fails(slurm_env, start_sweep):
    """With timeout_min <= 10 every USR2 counts as a timeout: one requeue (max_num_timeout=1), then
    submitit raises "not requeued" inside the point; the summary is still written, exit 1."""
    process, sweep = start_sweep("generation.seed=1", "hydra.launcher.timeout_min=5", "hydra.launcher.max_num_timeout=1")
    scancel(slurm_env, wait_until_loaded(process, slurm_env, sweep / "0"), "USR2")
    scancel(slurm_env, wait_until_loaded(process, slurm_env, sweep / "0", attempt=2), "USR2")
    code, output = finish(process)
    assert code == 1, output[-4000:]
    assert [row["status"] for row in read_manifest(sweep / "0")] == ["aborted", "aborted"]
    (row,) = summary_rows(sweep)
    assert row["status"] == "failed" and "not requeued" in row["error"], row
    assert "timed-out too many times" in row["error"]
    first, second = attempt_logs(sweep)  # the failed point's summary line points at both attempts' logs
    assert "SIGUSR2 received" in first and "Requeued job" in first
    assert "SIGUSR2 received" in second and "Requeued job" not in second
    merged = run_vgen(str(sweep), module="vgen.merge", cwd=sweep.parent, env=slurm_env)  # so does the merge
    assert merged.returncode == 1, merged.stdout + merged.stderr
    assert ("  check 0 (point failed; jobs: aborted): 0/vgen.log 0/slurm_logs/attempt-1.out 0/slurm_logs/attempt-1.err "
            "0/slurm_logs/attempt-2.out 0/slurm_logs/attempt-2.err") in merged.stdout, merged.stdout
