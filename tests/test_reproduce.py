"""``python -m vgen.reproduce``: rerun a recorded run/row/job/artifact and compare per artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import read_manifest, run_vgen
from vgen.reproduce import REPORT_NAME, load_source, main

SMALL = ["runtime.progress=false", "generation.steps=2", "generation.num_frames=5"]
# The second job draws its seed: only the recorded seed can reproduce it.
JOBS = "queue.jobs=[{prompt: a red fox},{prompt: a blue boat, seed: -1, guidance_scale: 2.0}]"


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("original")
    result = run_vgen(*SMALL, JOBS, f"hydra.run.dir={work / 'run'}", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "run"


def reproduce(*args: str, cwd: Path):
    return run_vgen(*args, module="vgen.reproduce", cwd=cwd, timeout=600)


@pytest.mark.slow
def test_rerun_of_a_run_dir_is_identical_per_artifact(original, tmp_path):
    result = reproduce(str(original), "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "2 of 2 artifact(s) identical" in result.stdout
    report = json.loads((tmp_path / "again" / REPORT_NAME).read_text())
    assert [entry["identical"] for entry in report["artifacts"]] == [True, True]
    assert report["config_drift"] == []  # the rerun composed exactly the recorded config
    rows = read_manifest(tmp_path / "again")
    recorded = read_manifest(original)
    assert [row["inputs"]["job"]["seed"] for row in rows] == [row["inputs"]["job"]["seed"] for row in recorded]


@pytest.mark.slow
def test_reproduce_from_a_video_alone(original, tmp_path):
    """Only the file (its embedded metadata) is given: no run dir, no manifest, no sidecar."""
    row = read_manifest(original)[1]  # the drawn-seed job
    video = tmp_path / "shared" / "clip.mp4"
    video.parent.mkdir()
    shutil.copy(original / row["artifacts"][0]["path"], video)
    result = reproduce(str(video), "--out", str(tmp_path / "again"), "--json", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    report = json.loads(result.stdout)
    assert report["identical"] is True and len(report["artifacts"]) == 1
    assert report["artifacts"][0]["job_id"] == row["job_id"]
    assert read_manifest(tmp_path / "again")[0]["inputs"]["job"]["seed"] == row["inputs"]["job"]["seed"]


@pytest.mark.slow
def test_changed_original_is_reported_different(original, tmp_path):
    """Replace job 0's video by job 1's: the rerun of manifest row 1 must not match it (exit 1)."""
    copy = tmp_path / "run"
    shutil.copytree(original, copy)
    first, second = (copy / row["artifacts"][0]["path"] for row in read_manifest(copy))
    shutil.copy(second, first)
    result = reproduce(f"{copy}/manifests/run_history.jsonl:1", "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert result.returncode == 1, (result.stdout + result.stderr)[-3000:]
    assert "DIFFERENT" in result.stdout and "0 of 1 artifact(s) identical" in result.stdout


@pytest.mark.slow  # uses the recorded run of the module fixture
def test_sources_manifest_row_and_job_id(original):
    rows = read_manifest(original)
    by_line = load_source(f"{original}/manifests/run_history.jsonl:2")
    assert [job.job_id for job in by_line.jobs] == [rows[1]["job_id"]]
    assert by_line.jobs[0].settings["seed"] == rows[1]["inputs"]["job"]["seed"] != -1
    by_id = load_source(rows[1]["job_id"][:10], search_roots=[original.parent])
    assert [job.job_id for job in by_id.jobs] == [rows[1]["job_id"]]
    with_run = load_source(str(original), job_id=rows[0]["job_id"])
    assert [job.job_id for job in with_run.jobs] == [rows[0]["job_id"]]
    whole = load_source(str(original))
    assert [job.job_id for job in whole.jobs] == [row["job_id"] for row in rows]
    assert whole.config["generation"]["steps"] == 2


@pytest.mark.slow  # uses the recorded run of the module fixture
def test_rerun_overlay_holds_recorded_jobs_and_no_run_dir(original):
    from vgen.reproduce import overlay_config

    overlay = overlay_config(load_source(str(original)))
    assert "run_dir" not in overlay
    assert [job["prompt"] for job in overlay["queue"]["jobs"]] == ["a red fox", "a blue boat"]
    assert all("requested_seed" not in job and job["seed"] != -1 for job in overlay["queue"]["jobs"])
    assert overlay["queue"]["prompts_file"] is None and overlay["queue"]["repeats"] == 1


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda tmp: tmp, "not a vgen run dir"),
        (lambda tmp: tmp / "missing", "no such run dir, file, manifest row or job id"),
        (lambda tmp: _plain_png(tmp), "no vgen metadata"),
        (lambda tmp: f"{_empty_manifest(tmp)}:3", "has only 1 line"),
        (lambda tmp: "0123456789abcdef", "no successful job with this id"),
    ],
    ids=["not-a-run", "missing", "no-metadata", "bad-line", "unknown-job-id"],
)
def test_bad_input_exits_2(tmp_path, capsys, monkeypatch, make_source, message):
    monkeypatch.chdir(tmp_path)
    assert main([str(make_source(tmp_path))]) == 2
    assert message in capsys.readouterr().err


def _plain_png(tmp: Path) -> Path:
    from PIL import Image

    path = tmp / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    return path


def _empty_manifest(tmp: Path) -> Path:
    path = tmp / "run" / "manifests" / "run_history.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"job_id": "x"}\n')
    return path
