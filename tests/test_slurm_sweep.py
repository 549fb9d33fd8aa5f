"""A real single-node SLURM cluster (scripts/slurm_cluster.sh): a submitit_slurm sweep runs to the end."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, read_manifest, run_vgen
from vgen.sweep_summary import POINT_RECORD_NAME, SUMMARY_JSONL_NAME

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
           "VGEN_SLURM_CTLD_PORT": str(free_port()), "VGEN_SLURM_D_PORT": str(free_port())}
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


def test_submitit_slurm_sweep_of_two_points(slurm_env, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_vgen(
        "-m", "hydra/launcher=slurm_local", "generation.seed=1,2", "+experiment=tiny_smoke",
        "runtime.progress=false", "queue.jobs=[{prompt: one}]", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path, env=slurm_env, timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    for num in ("0", "1"):
        assert [row["status"] for row in read_manifest(sweep / num)] == ["success"]
        record = json.loads((sweep / num / POINT_RECORD_NAME).read_text())
        assert record["slurm_job_id"], "the point record is written inside the SLURM job"
    rows = [json.loads(line) for line in (sweep / SUMMARY_JSONL_NAME).read_text().splitlines()]
    assert [(row["num"], row["status"]) for row in rows] == [(0, "success"), (1, "success")]
