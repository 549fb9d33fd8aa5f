"""A disk that fills up while a run starts (Hydra's files fit, the run's own do not): every free size
from 4 KiB up ends in one error line and exit 1/2, and never leaves an empty resolved_config.yaml
(merge, diff and resume read it) nor a traceback. vgen and vgen.matte, on a real small tmpfs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import run_vgen
from disk_helpers import fill_to_the_last_byte, mounted_tmpfs
from media_fixtures import make_media

FREE_KIB = range(4, 32, 4)


def leave_free(disk: Path, kib: int) -> None:
    filler = disk / "filler"
    fill_to_the_last_byte(filler)
    os.truncate(filler, max(0, filler.stat().st_size - kib * 1024))


def check_run_dir(run: Path, result) -> None:
    assert result.returncode in (1, 2), result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    config = run / "resolved_config.yaml"
    if config.exists():
        assert isinstance(yaml.safe_load(config.read_text()), dict), f"torn {config}"
    assert not [path for path in run.rglob("*") if ".tmp" in path.name or ".partial" in path.name]


@pytest.mark.slow
def test_vgen_starting_on_a_disk_that_fills_up(tmp_path):
    with mounted_tmpfs(tmp_path / "disk", "160k") as disk:
        for kib in FREE_KIB:
            for path in disk.iterdir():
                (os.unlink if path.is_file() else shutil.rmtree)(path)
            leave_free(disk, kib)
            run = disk / "run"
            result = run_vgen("runtime.progress=false", "generation.steps=1", "queue.jobs=[{prompt: a fox}]",
                              f"hydra.run.dir={run}", "report.enabled=false", cwd=tmp_path)
            check_run_dir(run, result)


@pytest.mark.slow
def test_matte_on_a_disk_that_fills_up(tmp_path):
    (tmp_path / "media").mkdir()
    media = make_media(tmp_path / "media")
    with mounted_tmpfs(tmp_path / "disk", "160k") as disk:
        for kib in (*FREE_KIB, 40, 48, 56, 64):
            for path in disk.iterdir():
                (os.unlink if path.is_file() else shutil.rmtree)(path)
            leave_free(disk, kib)
            run = disk / "run"
            result = run_vgen(f"input.video={media['clip']}", f"input.mask={media['mask_video']}",
                              "matte/backend=guided", "output.save_masks=true", f"hydra.run.dir={run}",
                              module="vgen.matte", cwd=tmp_path)
            check_run_dir(run, result)
