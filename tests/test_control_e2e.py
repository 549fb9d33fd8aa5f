"""Queue control over real TCP against a real ``python -m vgen`` run on the tiny model."""

from __future__ import annotations

import json
import random
import socket
import stat
import time

import pytest

from control_helpers import VgenProcess, final_files, jobs_override, temp_files
from vgen.control.connection import control_file
from vgen.control.protocol import MAX_LINE_BYTES

pytestmark = pytest.mark.slow


@pytest.fixture
def vgen_run(tmp_path):
    started: list[VgenProcess] = []

    def start(*overrides: str, control: bool = True) -> VgenProcess:
        process = VgenProcess(tmp_path / "run", *overrides, control=control)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def hostile_requests(token: str, seed: int = 1234, count: int = 40) -> list[bytes]:
    """Wrong tokens, random bytes, truncated JSON, bad commands and oversized lines (seeded)."""
    rng = random.Random(seed)
    requests = [
        json.dumps({"token": "wrong-" + token, "cmd": "abort"}).encode() + b"\n",
        json.dumps({"token": token[:-1], "cmd": "clear"}).encode() + b"\n",
        json.dumps({"cmd": "abort"}).encode() + b"\n",
        json.dumps({"token": token, "cmd": "shutdown"}).encode() + b"\n",
        json.dumps({"token": token, "cmd": "enqueue", "job": {"prompt": "x", "bogus": 1}}).encode() + b"\n",
        json.dumps({"token": token, "cmd": "enqueue", "job": {"prompt": "x", "steps": "ten"}}).encode() + b"\n",
        json.dumps(["not", "an", "object"]).encode() + b"\n",
        b'{"token": "' + token.encode() + b'", "cmd": "abo\n',
        b"\xff\xfe\x00garbage\n",
        b"x" * (MAX_LINE_BYTES + 10) + b"\n",
        json.dumps({"token": token, "cmd": "abort", "pad": "p" * MAX_LINE_BYTES}).encode() + b"\n",
    ]
    while len(requests) < count:
        requests.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) + b"\n")
    return requests


def send_raw(connection, payload: bytes) -> bytes:
    """Send ``payload``; the server's reply line, or b'' when it closed the connection."""
    with socket.create_connection((connection.host, connection.port), timeout=10) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            return b""  # the server closed on an oversized line before reading it all
        try:
            return sock.makefile("rb").readline()
        except OSError:
            return b""


def test_pause_resume_enqueue_and_hostile_clients(vgen_run):
    run = vgen_run(jobs_override(("alpha", 150), ("beta", 2)))
    connection = run.wait_for_control()
    assert stat.S_IMODE(control_file(run.run_dir).stat().st_mode) == 0o600

    # Paused before the queue starts: no job begins until resumed.
    assert run.ctl("pause")["status"]["paused"] is True
    time.sleep(0.5)
    assert run.status()["current"] is None
    run.ctl("resume")

    run.wait_generating(0)
    run.ctl("pause")
    time.sleep(0.5)  # pause acts at the next step boundary
    frozen = run.status()
    assert frozen["paused"] and frozen["in_progress"] and frozen["current"]["prompt"] == "alpha"
    time.sleep(1.0)
    assert run.status()["current"]["step"] == frozen["current"]["step"] < 150

    started = time.monotonic()
    for payload in hostile_requests(connection.token):
        reply = send_raw(connection, payload)
        assert reply == b"" or json.loads(reply)["ok"] is False
    assert time.monotonic() - started < 60
    after = run.status()
    assert after["paused"] and after["stopping"] is None
    assert after["current"]["step"] == frozen["current"]["step"]
    assert after["counts"] == frozen["counts"] and after["pending"] == frozen["pending"]

    enqueued = run.ctl("enqueue", job={"prompt": "gamma", "steps": 2})
    assert enqueued["ok"] and enqueued["job"]["index"] == 2
    assert [job["prompt"] for job in enqueued["status"]["pending"]] == ["beta", "gamma"]

    run.ctl("resume")
    run.wait_status(lambda s: not s["paused"] and (s["current"] is None or s["current"]["step"] > frozen["current"]["step"]))
    assert run.wait() == 0, run.output()
    rows = run.rows()
    assert [(row["job_index"], row["inputs"]["prompt"], row["status"]) for row in rows] == [
        (0, "alpha", "success"), (1, "beta", "success"), (2, "gamma", "success")]
    assert rows[2]["job_id"] == enqueued["job"]["job_id"]
    assert not control_file(run.run_dir).exists()


def test_abort_stops_current_job_and_the_queue(vgen_run):
    run = vgen_run(jobs_override(("alpha", 2000), ("beta", 2)))
    run.wait_for_control()
    run.wait_generating(0)
    reply = run.ctl("abort")
    assert reply["ok"] and reply["status"]["stopping"] == "abort"
    assert run.wait(timeout=120) == 3, run.output()
    rows = run.rows()
    assert [(row["inputs"]["prompt"], row["status"]) for row in rows] == [("alpha", "aborted")]
    assert rows[0]["artifacts"] == [] and rows[0]["error"]["type"] == "JobAborted"
    assert final_files(run.run_dir) == set() and temp_files(run.run_dir) == []
    assert not control_file(run.run_dir).exists()
