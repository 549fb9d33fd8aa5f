"""``python -m vgen.diff``: config, version and output differences between two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_vgen
from vgen.diff import ABSENT, RunSnapshot, diff_runs, flatten, main, mapping_differences

SMALL = ["runtime.progress=false", "generation.steps=2", "generation.num_frames=5"]
# Job 1 sets its own guidance scale, so overriding the default changes job 0's output only.
JOBS = "queue.jobs=[{prompt: a red fox},{prompt: a blue boat, guidance_scale: 1.0}]"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("diff")
    for name, extra in (("a", []), ("b", ["generation.guidance_scale=3"])):
        result = run_vgen(*SMALL, JOBS, *extra, f"hydra.run.dir={work / name}", cwd=work)
        assert result.returncode == 0, result.stderr[-3000:]
    return work / "a", work / "b"


@pytest.mark.slow
def test_one_override_reports_exactly_it_and_the_changed_output(two_runs):
    run_a, run_b = two_runs
    report = diff_runs(RunSnapshot.load(run_a), RunSnapshot.load(run_b))
    assert report["config"] == [("generation.guidance_scale", 5.0, 3.0)]
    assert report["jobs"] == [("jobs[0].guidance_scale", 5.0, 3.0)]  # job 1 sets its own
    assert report["overrides"]["only_a"] == [] and report["overrides"]["only_b"] == ["generation.guidance_scale=3"]
    assert report["adapters"] == [] and report["versions"] == []
    outputs = report["outputs"]
    assert [(o["job_index"], o["changed"], o["matched_by"]) for o in outputs] == [
        (0, True, "index"), (1, False, "job_id")]
    assert outputs[0]["artifacts"][0]["how"].startswith("decoded content differs")
    assert report["differs"] is True


@pytest.mark.slow
def test_cli_text_and_exit_codes(two_runs, capsys):
    run_a, run_b = two_runs
    assert main([str(run_a), str(run_b)]) == 1
    text = capsys.readouterr().out
    assert "generation.guidance_scale: 5.0 -> 3.0" in text
    assert "job 0" in text and "CHANGED" in text and "1 of 2 job(s) changed" in text
    assert main([str(run_a), str(run_a), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["differs"] is False


@pytest.mark.slow
def test_a_run_and_its_reproduction_do_not_differ(tmp_path):
    """The run writes one job with repeats and a random seed; its reproduction stores every job
    expanded, with the seed it drew. Their resolved jobs are the same: no difference, exit 0."""
    run, again = tmp_path / "run", tmp_path / "again"
    jobs = "queue.jobs=[{prompt: 'a fox, at night', repeats: 2}]"
    result = run_vgen(*SMALL, "generation.seed=-1", jobs, f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_vgen(str(run), "--out", str(again), module="vgen.reproduce", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    result = run_vgen(str(run), str(again), module="vgen.diff", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "Resolved config: no differences" in result.stdout
    assert "Resolved jobs: no differences" in result.stdout and "runs match" in result.stdout


def test_not_a_run_dir_exits_2(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path)]) == 2
    assert "not a vgen run dir" in capsys.readouterr().err
    assert main([str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_flatten_and_differences():
    assert flatten({"a": {"b": 1, "c": [1, {"d": 2}]}, "e": []}) == {"a.b": 1, "a.c[0]": 1, "a.c[1].d": 2, "e": []}
    assert mapping_differences({"x": 1, "y": {"z": 2}}, {"x": 1, "y": {"z": 3}, "w": 0}) == [
        ("w", ABSENT, 0), ("y.z", 2, 3)]
