"""Resume: only jobs without a success row run again; a SIGKILLed run leaves no partial artifact."""

from __future__ import annotations

import json
import signal
from collections import Counter
from types import SimpleNamespace

import pytest

from control_helpers import VgenProcess, final_files, jobs_override, temp_files
from vgen.errors import ConfigError
from vgen.jobs import JobSpec
from vgen.manifest import MANIFEST_RELATIVE_PATH
from vgen.resume import jobs_to_run


def make_jobs(count: int) -> list[JobSpec]:
    return [JobSpec(index=i, job_id=f"job{i}", settings={"prompt": f"p{i}", "steps": 2}) for i in range(count)]


def write_manifest(run_dir, rows, torn_tail: bool = False) -> None:
    path = run_dir / MANIFEST_RELATIVE_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    path.write_text(text + ('{"job_id": "job3", "status": "succ' if torn_tail else ""))


def queue_cfg(resume=False, resume_from=None):
    return SimpleNamespace(resume=resume, resume_from=resume_from)


def test_not_resuming_runs_everything(tmp_path):
    write_manifest(tmp_path, [{"job_id": "job0", "status": "success"}])
    assert jobs_to_run(queue_cfg(), tmp_path, make_jobs(2)) == (make_jobs(2), 0)


def test_resume_skips_only_successes(tmp_path):
    (tmp_path / "videos").mkdir()
    stale_temp = tmp_path / "videos" / ".0002_x.tmp-4242-beef.mp4"
    stale_temp.write_bytes(b"partial")
    write_manifest(tmp_path, [{"job_id": "job0", "status": "success"}, {"job_id": "job1", "status": "error"},
                              {"job_id": "job2", "status": "aborted"}], torn_tail=True)
    todo, skipped = jobs_to_run(queue_cfg(resume=True), tmp_path, make_jobs(4))
    assert [job.job_id for job in todo] == ["job1", "job2", "job3"] and skipped == 1
    assert not stale_temp.exists()


def test_resume_without_manifest_runs_everything(tmp_path):
    assert jobs_to_run(queue_cfg(resume=True), tmp_path, make_jobs(2)) == (make_jobs(2), 0)


def test_resume_from_other_dir(tmp_path):
    source = tmp_path / "old"
    write_manifest(source, [{"job_id": "job1", "status": "success"}])
    todo, skipped = jobs_to_run(queue_cfg(resume_from=str(source)), tmp_path / "new", make_jobs(3))
    assert [job.job_id for job in todo] == ["job0", "job2"] and skipped == 1


def test_resume_from_missing_manifest_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="queue.resume_from"):
        jobs_to_run(queue_cfg(resume_from=str(tmp_path / "nowhere")), tmp_path, make_jobs(1))


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
