"""A job enqueued over the control socket gets the same input checks as a queue job (real TCP, real run)."""

from __future__ import annotations

import pytest

from control_helpers import VgenProcess, jobs_override

pytestmark = pytest.mark.slow


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
