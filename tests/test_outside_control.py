"""The control socket from outside: a job enqueued over it gets the queue's input checks (real TCP, a real
run), and vgen-ctl reads a control.json some other tool wrote."""

from __future__ import annotations

import pytest

from control_helpers import VgenProcess, jobs_override


@pytest.mark.slow
def test_enqueued_job_inputs_are_checked_like_queue_jobs(tmp_path):
    process = VgenProcess(tmp_path / "run", jobs_override(("long", 10000)))
    try:
        process.wait_for_control()
        process.wait_generating(0)
        reply = process.ctl("enqueue", job={"prompt": "a fox", "image": "/etc/shadow"})
        assert reply["ok"] is False, reply
        assert reply["error"].startswith("job[1].image: model tiny_wan (task t2v) does not take image"), reply
        reply = process.ctl("enqueue", job={"prompt": "a fox", "loras": [{"name": "/no/such.safetensors"}]})
        assert reply["ok"] is False and "/no/such.safetensors" in reply["error"], reply
        reply = process.ctl("enqueue", job={"prompt": "a fox"})
        assert reply["ok"] is True, reply
        assert [job["prompt"] for job in process.status()["pending"]] == ["a fox"]
    finally:
        if process.connection is not None:
            process.ctl("abort")
        process.kill()


def test_vgen_ctl_reading_a_control_json_that_is_not_an_object(tmp_path):
    from conftest import run_vgen

    (tmp_path / "control.json").write_text("[]")
    result = run_vgen("--run-dir", str(tmp_path), "status", module="vgen.ctl", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"vgen-ctl: cannot read {tmp_path / 'control.json'}: expected a JSON object, got list"]
