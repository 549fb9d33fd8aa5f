"""python -m vgen.merge: a sharded sweep's manifests merged, coverage counted, missing jobs rerun;
and hydra/launcher=local_gpus (one process per GPU, no SLURM)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import read_manifest, run_vgen
from vgen.hashing import file_sha256
from vgen.rundir.manifest import ManifestLog
from vgen.merge import COVERAGE_NAME, MERGED_MANIFEST_NAME, main as merge_main, rebased_line

FAST = ["runtime.progress=false", "generation.steps=2", "queue.jobs=[]"]
SHOTS = "prompt,seed\na fox,1\na boat,2\na tree,3\na cat,4\na dog,5\n"


def write_shots(work: Path) -> None:
    (work / "shots.csv").write_text(SHOTS)


@pytest.fixture(scope="module")
def local_gpus_sweep(tmp_path_factory) -> Path:
    """5 prompts in 2 shards run as two processes by the local_gpus launcher ("2 GPUs" on a CPU machine)."""
    work = tmp_path_factory.mktemp("local-gpus")
    write_shots(work)
    result = run_vgen("-m", *FAST, "queue.prompts_file=shots.csv", "queue.num_shards=2", "queue.shard=range(0,2)",
                      "hydra/launcher=local_gpus", "hydra.launcher.gpus_per_node=2", "hydra.sweep.dir=sweep", cwd=work)
    assert result.returncode == 0, result.stderr[-4000:]
    return work


@pytest.mark.slow
def test_local_gpus_runs_each_shard_in_its_own_process_on_its_own_gpu(local_gpus_sweep):
    sweep = local_gpus_sweep / "sweep"
    for point in ("0", "1"):
        log = (sweep / point / "vgen.log").read_text()
        assert f"Sweep point {point} pinned to GPU {point} (CUDA_VISIBLE_DEVICES={point} of 0,1)" in log
        assert log.count("Loaded WanPipeline") == 1
    shards = [{row["job_id"] for row in read_manifest(sweep / point)} for point in ("0", "1")]
    assert not shards[0] & shards[1] and len(shards[0] | shards[1]) == 5


@pytest.mark.slow
def test_merge_of_a_complete_sweep(local_gpus_sweep, capsys):
    sweep = local_gpus_sweep / "sweep"
    out = local_gpus_sweep / "merged"
    assert merge_main([str(sweep), "--out", str(out)]) == 0
    assert "coverage: 5 expected, 5 succeeded exactly once, 0 failed, 0 missing, 0 duplicated" in capsys.readouterr().out
    merged = [json.loads(line) for line in (out / MERGED_MANIFEST_NAME).read_text().splitlines()]
    originals = read_manifest(sweep / "0") + read_manifest(sweep / "1")
    assert len(merged) == 5
    for row, original in zip(merged, originals):
        assert {**row, "artifacts": None} == {**original, "artifacts": None}  # rows unchanged but the paths
        for artifact, before in zip(row["artifacts"], original["artifacts"]):
            assert file_sha256(out / artifact["path"]) == before["sha256"]
    coverage = json.loads((out / COVERAGE_NAME).read_text())
    assert coverage["complete"] and coverage["expected"] == 5 and coverage["run_dirs"] == 2


@pytest.mark.slow
def test_failed_and_duplicated_jobs_are_counted(local_gpus_sweep, capsys, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(local_gpus_sweep / "sweep", sweep)
    shutil.copytree(sweep / "0", sweep / "0-again")  # shard 0 ran twice: its jobs succeeded twice
    shard1 = read_manifest(sweep / "1")
    failed = {**shard1[0], "status": "error", "artifacts": [], "error": {"type": "RuntimeError", "message": "x"}}
    ManifestLog(sweep / "1").append(failed)  # a later attempt of that job failed: its latest row is an error
    with open(sweep / "0-again" / "manifests" / "run_history.jsonl", "ab") as handle:
        handle.write(b'{"job_id": "0123456789abcdef", "sta')  # a process killed mid-write
    assert merge_main([str(sweep)]) == 1
    coverage = json.loads((sweep / COVERAGE_NAME).read_text())
    shard0 = read_manifest(sweep / "0")
    assert coverage["failed_job_ids"] == [shard1[0]["job_id"]]
    assert sorted(coverage["duplicated_job_ids"]) == sorted(row["job_id"] for row in shard0)
    assert (coverage["succeeded_once"], coverage["missing"]) == (len(shard1) - 1, 0)
    assert coverage["torn_lines"] == 1 and coverage["rows"] == 2 * len(shard0) + len(shard1) + 1
    printed = capsys.readouterr().out
    assert "failed: " + shard1[0]["job_id"] in printed
    # The coverage points at the run dir whose job failed, and at its log.
    assert coverage["run_dirs_to_check"] == [{"run_dir": "1", "point_status": "success",
                                              "job_statuses": ["error", "success"], "logs": ["1/vgen.log"]}]
    assert "  check 1 (point success; jobs: error, success): 1/vgen.log" in printed


@pytest.mark.slow
def test_missing_shard_then_rerun_missing_completes_the_sweep(tmp_path, capsys):
    write_shots(tmp_path)
    result = run_vgen("-m", *FAST, "queue.prompts_file=shots.csv", "queue.num_shards=2", "queue.shard=0",
                      "hydra.sweep.dir=sweep", cwd=tmp_path)  # shard 1 never ran
    assert result.returncode == 0, result.stderr[-4000:]
    ran = {row["job_id"] for row in read_manifest(tmp_path / "sweep" / "0")}
    merged = run_vgen("sweep", module="vgen.merge", cwd=tmp_path)
    assert merged.returncode == 1, merged.stderr
    coverage = json.loads((tmp_path / "sweep" / COVERAGE_NAME).read_text())
    assert coverage["missing"] == 5 - len(ran) and coverage["succeeded_once"] == len(ran)
    printed = run_vgen("sweep", "--rerun-missing", module="vgen.merge", cwd=tmp_path)
    assert printed.returncode == 1 and "queue.only_jobs=" in printed.stdout and "reruns" in printed.stdout
    launched = run_vgen("sweep", "--rerun-missing", "--launch", module="vgen.merge", cwd=tmp_path)
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    assert "coverage: 5 expected, 5 succeeded exactly once" in launched.stdout
    rerun_rows = [row for path in (tmp_path / "sweep" / "reruns").glob("*/0/manifests/run_history.jsonl")
                  for row in map(json.loads, path.read_text().splitlines())]
    assert {row["job_id"] for row in rerun_rows}.isdisjoint(ran) and len(rerun_rows) == 5 - len(ran)


def test_merge_help_and_bad_input(tmp_path):
    assert run_vgen("--help", module="vgen.merge", cwd=tmp_path).returncode == 0
    missing = run_vgen(str(tmp_path / "nope"), module="vgen.merge", cwd=tmp_path)
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    empty = run_vgen(str(tmp_path), module="vgen.merge", cwd=tmp_path)
    assert empty.returncode == 2 and "no vgen run dirs" in empty.stderr
    assert not (tmp_path / MERGED_MANIFEST_NAME).exists()


def test_saved_config_that_no_longer_expands_is_bad_input(tmp_path):
    run_dir = tmp_path / "sweep" / "0"
    run_dir.mkdir(parents=True)
    (run_dir / "resolved_config.yaml").write_text(
        f"queue: {{jobs: [], prompts_file: {tmp_path / 'gone.csv'}, repeats: 1, grid: null, num_shards: 2, "
        "shard: 0, only_jobs: null}\ngeneration: {prompt: '', negative_prompt: '', height: 64, width: 64, "
        "num_frames: 9, steps: 4, guidance_scale: 5.0, fps: 16, seed: 42}\n"
        "model: {name: tiny_wan, size_multiple: 16, frame_multiple: 4}\n")
    result = run_vgen(str(tmp_path / "sweep"), module="vgen.merge", cwd=tmp_path)
    assert result.returncode == 2 and "gone.csv" in result.stderr
    assert not list((tmp_path / "sweep").glob("*.json*"))  # nothing written under a final name


def test_a_resolved_config_written_by_another_tool_is_bad_input(tmp_path):
    """A run dir whose resolved_config.yaml is some other tool's YAML (a list, no queue/model): exit 2, one line."""
    run_dir = tmp_path / "sweep" / "0"
    (run_dir / "manifests").mkdir(parents=True)
    (run_dir / "manifests" / "run_history.jsonl").write_text("")
    (run_dir / "resolved_config.yaml").write_text("- name: not vgen\n- steps: 3\n")
    result = run_vgen(str(tmp_path / "sweep"), module="vgen.merge", cwd=tmp_path)
    assert result.returncode == 2 and "not a vgen resolved config" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "sweep").glob("*.json*"))


ARTIFACTS = [{"path": "videos/0000_ab_é.mp4", "metadata_sidecar": None, "bytes": 3},
             {"path": "/abs/poster.png", "metadata_sidecar": "videos/0000_ab.json"}]
REBASED = [{**ARTIFACTS[0], "path": "0/videos/0000_ab_é.mp4"}, {**ARTIFACTS[1], "metadata_sidecar": "0/videos/0000_ab.json"}]
NESTED = {"source": {"path": "0/in.png"}}  # a nested path field that starts like the prefix: not re-based


@pytest.mark.parametrize("nested", [{}, NESTED], ids=["flat", "nested-path"])
@pytest.mark.parametrize("encode", [
    lambda value: json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False),  # as vgen writes it
    lambda value: json.dumps(value),  # another tool: spaces, key order as given, \u escapes
], ids=["vgen", "other"])
def test_rebased_line_changes_only_the_relative_artifact_paths(encode, nested):
    """Relative artifact paths get the prefix; every other byte of the line stays as it was."""
    artifacts = [{**ARTIFACTS[0], **nested}, ARTIFACTS[1]]
    rebased = [{**REBASED[0], **nested}, REBASED[1]]
    row = {"job_id": "ab", "status": "success", "timings": {"generate_s": 1.5}, "artifacts": artifacts}
    text = encode(row) + "\n"
    line = rebased_line(text, json.loads(text), "0")
    assert json.loads(line) == {**row, "artifacts": rebased}
    assert line.replace(json.dumps(rebased, sort_keys=True, separators=(",", ":"), ensure_ascii=False), "X") == \
        text.replace(encode(artifacts), "X")
