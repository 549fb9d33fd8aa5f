"""Resume: only jobs without a success row run again; a SIGKILLed run leaves no partial artifact."""

from __future__ import annotations

import json
import shutil
import signal
from collections import Counter
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from conftest import manifest_validator, run_vgen
from control_helpers import FAST_JOB_OVERRIDES, VgenProcess, final_files, jobs_override, temp_files
from lora_fixtures import make_lora_file
from vgen.errors import ConfigError
from vgen.hashing import file_sha256
from vgen.jobs.expand import JobSpec
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, read_manifest
from vgen.queue.resume import ResumePlan, jobs_to_run, resume_in_place_argv
from vgen.rundir.lock import LOCK_NAME


def make_jobs(count: int) -> list[JobSpec]:
    return [JobSpec(index=i, job_id=f"job{i}", settings={"prompt": f"p{i}", "steps": 2}) for i in range(count)]


def key_of(job: JobSpec) -> str:
    return f"key-{job.job_id}"


def success(job_id: str, **extra) -> dict:
    return {"job_id": job_id, "status": "success", "output_key": f"key-{job_id}", **extra}


def write_manifest(run_dir, rows, torn_tail: bool = False) -> None:
    path = run_dir / MANIFEST_RELATIVE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    path.write_text(text + ('{"job_id": "job3", "status": "succ' if torn_tail else ""))


def queue_cfg(resume=False, resume_from=None):
    return SimpleNamespace(resume=resume, resume_from=resume_from)


def ids(plan) -> list[str]:
    return [job.job_id for job in plan.todo]


def test_not_resuming_runs_everything(tmp_path):
    write_manifest(tmp_path, [success("job0")])
    assert jobs_to_run(queue_cfg(), tmp_path, make_jobs(2), key_of) == ResumePlan(make_jobs(2), 0, False)


def test_resume_skips_only_successes(tmp_path, caplog):
    caplog.set_level("INFO", logger="vgen.queue.resume")
    (tmp_path / "videos").mkdir()
    stale_temp = tmp_path / "videos" / ".0002_x.tmp-4242-beef.mp4"
    stale_temp.write_bytes(b"partial")
    write_manifest(tmp_path, [success("job0"), {"job_id": "job1", "status": "error"},
                              {"job_id": "job2", "status": "aborted"}], torn_tail=True)
    plan = jobs_to_run(queue_cfg(resume=True), tmp_path, make_jobs(4), key_of)
    assert ids(plan) == ["job1", "job2", "job3"] and plan.skipped == 1 and plan.in_place
    assert not stale_temp.exists()
    assert "(1 torn manifest line(s) ignored)" in caplog.text


def test_resume_without_manifest_runs_everything(tmp_path):
    assert jobs_to_run(queue_cfg(resume=True), tmp_path, make_jobs(2), key_of) == ResumePlan(make_jobs(2), 0, True)


def test_resume_from_other_dir(tmp_path):
    source = tmp_path / "old"
    write_manifest(source, [success("job1")])
    plan = jobs_to_run(queue_cfg(resume_from=str(source)), tmp_path / "new", make_jobs(3), key_of)
    assert ids(plan) == ["job0", "job2"] and plan.skipped == 1 and not plan.in_place


def test_resume_from_and_in_place_read_both_manifests(tmp_path):
    """A run made with resume_from, resumed in place (or requeued), skips what either run finished."""
    write_manifest(tmp_path / "old", [success("job0")])
    write_manifest(tmp_path / "new", [success("job1")])
    plan = jobs_to_run(queue_cfg(resume=True, resume_from=str(tmp_path / "old")), tmp_path / "new", make_jobs(3),
                       key_of)
    assert ids(plan) == ["job2"] and plan.skipped == 2


def test_resume_from_missing_manifest_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="queue.resume_from"):
        jobs_to_run(queue_cfg(resume_from=str(tmp_path / "nowhere")), tmp_path, make_jobs(1), key_of)


def test_a_success_with_another_output_key_runs_again(tmp_path, caplog):
    """Same job spec, but the model/dtype/LoRA file/enhancer/output settings changed since."""
    write_manifest(tmp_path, [success("job0"), {**success("job1"), "output_key": "made-with-another-lora"},
                              {"job_id": "job2", "status": "success"}])  # an older vgen's row: no output_key
    plan = jobs_to_run(queue_cfg(resume=True), tmp_path, make_jobs(3), key_of)
    assert ids(plan) == ["job1", "job2"] and plan.skipped == 1
    assert "1 job(s) succeeded before with another model" in caplog.text
    assert "1 job(s) have success rows without an output_key" in caplog.text


def test_resume_in_place_of_another_queue_is_refused_before_touching_anything(tmp_path):
    (tmp_path / "videos").mkdir()
    stale_temp = tmp_path / "videos" / ".0000_x.tmp-4242-beef.mp4"
    stale_temp.write_bytes(b"partial")
    write_manifest(tmp_path, [success("other0"), {"job_id": "other1", "status": "error"}])
    with pytest.raises(ConfigError, match="none of this config's 2 job\\(s\\) is in the manifest"):
        jobs_to_run(queue_cfg(resume=True), tmp_path, make_jobs(2), key_of)
    assert stale_temp.exists()


def test_resume_in_place_argv_puts_the_saved_overrides_under_the_new_ones(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- model=tiny_wan\n- 'queue.jobs=[{prompt: one}]'\n- generation.steps=2\n- +experiment=tiny_smoke\n")
    argv = ["--cfg", "job", f"hydra.run.dir={tmp_path}", "queue.resume=true", "generation.steps=3"]
    assert resume_in_place_argv(argv) == [
        "--cfg", "job", "model=tiny_wan", "queue.jobs=[{prompt: one}]", "+experiment=tiny_smoke",
        f"hydra.run.dir={tmp_path}", "queue.resume=true", "generation.steps=3", "hydra.output_subdir=null",
    ]
    for unchanged in ([f"hydra.run.dir={tmp_path}", "generation.steps=3"],
                      ["-m", f"hydra.run.dir={tmp_path}", "queue.resume=true"],
                      [f"hydra.run.dir={tmp_path / 'nowhere'}", "queue.resume=true"]):
        assert resume_in_place_argv(unchanged) == unchanged


@pytest.mark.slow
def test_sigkill_mid_job_then_resume_runs_only_missing_jobs(tmp_path):
    jobs = jobs_override(("alpha", 2), ("beta", 2), ("gamma", 150), ("delta", 2))
    run_dir = tmp_path / "run"
    first = VgenProcess(run_dir, jobs)
    try:
        first.wait_for_control()
        first.wait_generating(2)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    killed_rows = first.rows()
    assert (run_dir / LOCK_NAME).read_text().strip() == str(first.proc.pid)  # a stale lock: must not block
    assert "gamma" not in {row["inputs"]["prompt"] for row in killed_rows}
    done_before = {row["job_id"] for row in killed_rows if row["status"] == "success"}

    second = VgenProcess(run_dir, jobs, "queue.resume=true", control=False)
    try:
        assert second.wait(timeout=300) == 0, second.output()
    finally:
        second.kill()
    assert f"{len(done_before)} job(s) already succeeded and skipped" in second.output()
    rows = second.rows()
    successes = Counter(row["inputs"]["prompt"] for row in rows if row["status"] == "success")
    assert successes == Counter(["alpha", "beta", "gamma", "delta"])
    recorded = {run_dir / artifact["path"] for row in rows if row["status"] == "success" for artifact in row["artifacts"]}
    assert final_files(run_dir) == recorded
    assert temp_files(run_dir) == []


@pytest.fixture(scope="module")
def finished_two_job_run(tmp_path_factory):
    """A run with its own queue (not the demo queue), both jobs done."""
    work = tmp_path_factory.mktemp("two-jobs")
    result = run_vgen(*FAST_JOB_OVERRIDES, jobs_override(("alpha", 2), ("beta", 2)), f"hydra.run.dir={work / 'run'}",
                      cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "run"


def copy_run(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def snapshot(run_dir) -> dict:
    """Every file of the run except its log, with its bytes."""
    return {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file() and path.name != "vgen.log"}


@pytest.mark.slow
def test_resume_in_place_as_the_readme_shows_after_a_torn_row(finished_two_job_run, tmp_path):
    """Killed while appending beta's row: half a JSON line ends the manifest. ``hydra.run.dir=RUN
    queue.resume=true`` (plus one new override) must rerun only beta, with the run's own config,
    write beta's row on a line of its own, and keep the run's saved config as it was."""
    run_dir = copy_run(finished_two_job_run, tmp_path)
    manifest = run_dir / MANIFEST_RELATIVE_PATH
    alpha, beta = manifest.read_bytes().splitlines(keepends=True)
    manifest.write_bytes(alpha + beta[: len(beta) // 2])
    saved = {path: path.read_bytes() for path in [*(run_dir / ".hydra").iterdir(), run_dir / "resolved_config.yaml"]}

    result = run_vgen(f"hydra.run.dir={run_dir}", "queue.resume=true", "queue.on_error=stop", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 job(s) already succeeded and skipped, 1 to run (1 torn manifest line(s) ignored)" in result.stderr
    contents = read_manifest(manifest)
    assert [row["inputs"]["prompt"] for row in contents.rows] == ["alpha", "beta"]
    assert contents.skipped_lines == [2]
    assert contents.rows[1]["inputs"]["job"]["height"] == 16  # the run's own settings, not the defaults

    assert {path: path.read_bytes() for path in saved} == saved
    original = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    assert f"the run's saved overrides {original}, then ['queue.resume=true', 'queue.on_error=stop']" in result.stderr
    (record,) = (run_dir / ".hydra" / "resumes").iterdir()
    recorded = OmegaConf.to_container(OmegaConf.load(record / "overrides.yaml"))
    assert recorded == [*original, "queue.resume=true", "queue.on_error=stop"]
    assert contents.rows[1]["inputs"]["overrides"] == recorded
    assert "on_error: stop" in (record / "resolved_config.yaml").read_text()


@pytest.mark.slow
def test_resume_in_place_with_another_queue_exits_2_and_writes_nothing(finished_two_job_run, tmp_path):
    run_dir = copy_run(finished_two_job_run, tmp_path)
    before = snapshot(run_dir)
    result = run_vgen(f"hydra.run.dir={run_dir}", "queue.resume=true", "queue.jobs=[{prompt: gamma}]", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "none of this config's 1 job(s) is in the manifest" in result.stderr
    assert snapshot(run_dir) == before


@pytest.mark.slow
def test_resume_from_reruns_jobs_whose_lora_file_or_dtype_changed(tmp_path, vgen_cache_dir):
    """job_id stays the same (same job spec); the output_key does not, so resume_from reruns the job."""
    from diffusers import WanTransformer3DModel

    from vgen.models.tiny_wan import ensure_tiny_wan

    transformer = WanTransformer3DModel.from_pretrained(ensure_tiny_wan(vgen_cache_dir) / "transformer")
    lora = make_lora_file(transformer, tmp_path / "loras" / "style.safetensors", seed=1)
    common = [*FAST_JOB_OVERRIDES, f"lora.dirs=[{lora.parent}]",
              "queue.jobs=[{prompt: fox, steps: 2, loras: ['style:0.8']}]"]

    def run(name: str, *extra: str):
        result = run_vgen(*common, f"hydra.run.dir={tmp_path / name}", *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        (row,) = read_manifest(tmp_path / name / MANIFEST_RELATIVE_PATH).rows or [None]
        return result.stderr, row

    _, original = run("original")
    # runtime.dtype=auto is float32 on CPU: the same output_key, so the job is skipped
    stderr, _ = run("same", f"queue.resume_from={tmp_path / 'original'}", "runtime.dtype=float32")
    assert "1 job(s) already succeeded and skipped, 0 to run" in stderr

    stderr, bf16 = run("bf16", f"queue.resume_from={tmp_path / 'original'}", "runtime.dtype=bfloat16")
    assert "0 job(s) already succeeded and skipped, 1 to run" in stderr and "another model, dtype" in stderr
    assert bf16["job_id"] == original["job_id"] and bf16["output_key"] != original["output_key"]
    assert bf16["inputs"]["output_recipe"]["dtype"] == "bfloat16"

    make_lora_file(transformer, lora, seed=2)  # another LoRA under the same name
    stderr, replaced = run("replaced", f"queue.resume_from={tmp_path / 'original'}")
    assert "0 job(s) already succeeded and skipped, 1 to run" in stderr
    assert replaced["job_id"] == original["job_id"] and replaced["output_key"] != original["output_key"]
    assert replaced["inputs"]["output_recipe"]["lora"]["loras"][0]["sha256"] == file_sha256(lora)
    validator = manifest_validator()
    for row in (original, bf16, replaced):
        assert not [error.message for error in validator.iter_errors(row)]
