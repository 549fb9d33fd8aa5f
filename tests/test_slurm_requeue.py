"""Requeued SLURM/submitit jobs rerun in the same run dir: finished jobs must not run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import read_manifest, run_vgen

pytestmark = pytest.mark.slow
SMALL = ["runtime.progress=false", "generation.steps=2", "generation.num_frames=5", "queue.jobs=[{prompt: one}]"]
NOT_REQUEUED = {"SLURM_RESTART_COUNT": "", "SUBMITIT_EXECUTOR": ""}


@pytest.fixture
def finished_run(tmp_path) -> Path:
    result = run_vgen(*SMALL, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=NOT_REQUEUED)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "run"


def test_plain_rerun_in_the_same_dir_generates_again(finished_run):
    """Outside a requeue, the same run dir is not resumed unless queue.resume=true asks for it."""
    result = run_vgen(*SMALL, f"hydra.run.dir={finished_run}", cwd=finished_run.parent, env=NOT_REQUEUED)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["status"] for row in read_manifest(finished_run)] == ["success", "success"]


def test_requeued_run_skips_jobs_the_manifest_records(finished_run):
    result = run_vgen(*SMALL, f"hydra.run.dir={finished_run}", cwd=finished_run.parent,
                      env={**NOT_REQUEUED, "SLURM_RESTART_COUNT": "1", "SUBMITIT_EXECUTOR": "slurm"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["status"] for row in read_manifest(finished_run)] == ["success"]
    assert "1 job(s) already succeeded and skipped" in result.stdout + result.stderr
