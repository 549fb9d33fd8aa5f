"""Outside tests of vgen.merge and vgen.report with real faults: another working directory, a full disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_vgen

BOAT = REPO_ROOT / "examples" / "boat.png"


@pytest.fixture(scope="module")
def i2v_run(tmp_path_factory) -> Path:
    """One tiny image-to-video job whose image is given relative to the launch directory."""
    work = tmp_path_factory.mktemp("launch dir")
    shutil.copy(BOAT, work / "boat.png")
    result = run_vgen("model=tiny_wan_i2v", "runtime.progress=false", "generation.steps=1",
                      "queue.jobs=[{prompt: a boat sails off, image: boat.png}]", "hydra.run.dir=run", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "run"


@pytest.mark.slow
def test_merge_from_another_directory_expects_the_jobs_the_run_ran(i2v_run, tmp_path):
    """The saved queue's relative input paths are the launch directory's, not the merge's cwd."""
    result = run_vgen(str(i2v_run), "--out", str(tmp_path / "merged"), module="vgen.merge", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "coverage: 1 expected, 1 succeeded exactly once, 0 failed, 0 missing, 0 duplicated\n" in result.stdout
