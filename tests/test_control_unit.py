"""QueueStateTracker, QueueController commands, the protocol, and the control server in-process (real TCP)."""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import threading
import time

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from vgen.config.locate import config_dir
from vgen.config.registry import register_all
from vgen.control.client import send_command
from vgen.control.connection import control_file, read_connection
from vgen.control.protocol import MAX_LINE_BYTES, ProtocolError, parse_request
from vgen.control.server import ControlServer
from vgen.errors import ConfigError
from vgen.jobs.expand import JobSpec
from vgen.production import ProductionManager
from vgen.queue.controller import QueueController, QueueSummary
from vgen.queue.state import QueueStateTracker

TOKEN = "secret-token"


def job(index: int, steps: int = 10, prompt: str | None = None) -> JobSpec:
    return JobSpec(index=index, job_id=f"id{index}", settings={"prompt": prompt or f"prompt {index}", "steps": steps})


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# -- tracker ---------------------------------------------------------------------------------------
def test_tracker_drains_in_order_then_closes():
    state = QueueStateTracker([job(0), job(1)])
    assert [state.next_job().index, state.next_job().index, state.next_job()] == [0, 1, None]
    with pytest.raises(RuntimeError, match="finished"):
        state.add(job(2))
    assert state.snapshot()["finished"] is True


def test_pause_blocks_step_boundary_until_resumed():
    state = QueueStateTracker([job(0)])
    state.pause()
    results: list[bool] = []
    thread = in_thread(lambda: results.append(state.checkpoint()))
    thread.join(0.3)
    assert thread.is_alive() and results == []
    state.resume()
    thread.join(5)
    assert results == [False]


def test_stop_wakes_a_paused_queue_and_aborts():
    state = QueueStateTracker([job(0), job(1)])
    state.pause()
    results: list = []
    thread = in_thread(lambda: results.extend([state.checkpoint(), state.next_job()]))
    thread.join(0.2)
    state.request_stop("abort")
    state.request_stop("SIGINT")  # the first reason wins
    thread.join(5)
    assert results == [True, None] and state.stop_reason == "abort"


def test_paused_between_jobs_next_job_waits():
    state = QueueStateTracker([job(0)])
    state.pause()
    got: list = []
    thread = in_thread(lambda: got.append(state.next_job()))
    thread.join(0.2)
    assert got == []
    state.resume()
    thread.join(5)
    assert got[0].index == 0


def test_snapshot_counts_current_job_eta_and_enhanced_prompt():
    state = QueueStateTracker([job(0, steps=10), job(1, steps=20)], skipped=3)
    current = state.next_job()
    state.job_started(current)
    state.set_enhanced_prompt("id0", "a richer prompt")
    time.sleep(0.05)
    state.step(5)
    snap = state.snapshot()
    assert snap["current"]["step"] == 5 and snap["current"]["total_steps"] == 10
    assert snap["current"]["enhanced_prompt"] == "a richer prompt" and snap["in_progress"]
    assert snap["counts"] == {"done": 0, "failed": 0, "aborted": 0, "skipped": 3, "remaining": 1}
    assert snap["pending"] == [{"index": 1, "job_id": "id1", "prompt": "prompt 1"}]
    per_step = snap["current"]["elapsed_s"] / 5
    assert snap["eta_s"] == pytest.approx(per_step * 25, rel=0.3)  # 5 steps left + 20 pending
    json.dumps(snap)
    state.job_ended("generated")
    state.record_persisted(True)
    nxt = state.next_job()
    state.job_started(nxt)
    state.job_ended("aborted")
    snap = state.snapshot()
    assert snap["current"] is None and snap["counts"]["done"] == 1 and snap["counts"]["aborted"] == 1


def test_paused_time_is_not_counted_as_step_time():
    state = QueueStateTracker([job(0, steps=4)])
    state.job_started(state.next_job())
    state.pause()
    time.sleep(0.3)
    state.resume()
    state.step(1)
    assert state.snapshot()["current"]["elapsed_s"] < 0.2


def test_clear_and_unique_ids():
    state = QueueStateTracker([job(0), job(1)])
    assert state.unique_job_id("id0") == "id0-2" and state.unique_job_id("new") == "new"
    assert state.clear() == 2 and state.remaining() == 0


def test_summary_exit_codes():
    assert QueueSummary().exit_code == 0
    assert QueueSummary(failed=1).exit_code == 1
    assert QueueSummary(aborted=1, stop_reason="abort").exit_code == 3
    assert QueueSummary(aborted=1, stop_reason="SIGINT").exit_code == 130
    assert QueueSummary(stop_reason="SIGUSR1").exit_code == 143
    assert QueueSummary(failed=1, aborted=1, stop_reason="disk full").exit_code == 1


# -- controller with a real composed config (no model loaded) --------------------------------------
@pytest.fixture
def controller(tmp_path) -> QueueController:
    register_all()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["runtime.progress=false"])
    manager = ProductionManager(cfg, run_dir=tmp_path)
    controller = QueueController(manager, manager.jobs())
    yield controller
    controller.writer.close()


def test_enqueue_validates_like_queue_jobs(controller):
    spec = controller.enqueue({"prompt": "a new shot", "steps": 3, "seed": 1})
    assert spec.index == 3 and spec.settings["steps"] == 3 and spec.settings["height"] == 64
    assert controller.enqueue({"prompt": "a new shot", "steps": 3, "seed": 1}).job_id == spec.job_id + "-2"
    for bad, field in [({"steps": 3}, "prompt"), ({"prompt": "x", "stepz": 3}, "stepz"),
                       ({"prompt": "x", "steps": "3"}, "steps"), ({"prompt": "x", "height": 30}, "height"),
                       ({"prompt": "x", "repeats": 2}, "repeats"), ({"prompt": "   "}, "prompt"),
                       ({"prompt": "x", "guidance_scale": float("nan")}, "enqueue.job.guidance_scale"),
                       ({"prompt": "x", "seed": 2**40}, "enqueue.job.seed"), ({"prompt": "x", "steps": 0}, "steps"),
                       ({"prompt": "x", "num_frames": 4097}, "num_frames")]:
        with pytest.raises(ConfigError, match=field):
            controller.enqueue(bad)
    assert controller.status()["counts"]["remaining"] == 5


# -- protocol --------------------------------------------------------------------------------------
@pytest.mark.parametrize("line,message", [
    (b"not json", "malformed"), (b"[1]", "malformed"), (b'{"cmd": "status"}', "token"),
    (b'{"token": 5, "cmd": "status"}', "token"), (b'{"token": "x", "cmd": "status"}', "token"),
    (b'{"token": "secret-token\\u00e9", "cmd": "status"}', "token"),
    (b'{"token": "secret-token", "cmd": "reboot"}', "unknown command"),
    (b'{"token": "secret-token", "cmd": "enqueue"}', "enqueue needs"),
    (b'{"token": "secret-token", "cmd": "enqueue", "job": "prompt"}', "enqueue needs"),
    (b"\xff\xfe", "malformed"), (b" " * (MAX_LINE_BYTES + 1), "longer"),
])
def test_parse_request_rejects(line, message):
    with pytest.raises(ProtocolError, match=message):
        parse_request(line, TOKEN)


def test_parse_request_accepts():
    request = parse_request(b'{"token": "secret-token", "cmd": "enqueue", "job": {"prompt": "p"}}\n', TOKEN)
    assert request.cmd == "enqueue" and request.job == {"prompt": "p"}
    assert parse_request(b'{"token": "secret-token", "cmd": "pause", "job": {"x": 1}}', TOKEN).job == {}


# -- server ----------------------------------------------------------------------------------------
def test_server_commands_over_tcp_and_connection_file(controller, tmp_path):
    with ControlServer(controller, tmp_path) as server:
        path = control_file(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        connection = read_connection(tmp_path)
        assert connection == server.connection and connection.host == "127.0.0.1" and connection.port > 0
        assert send_command(connection, "pause")["status"]["paused"] is True
        assert send_command(connection, "resume")["status"]["paused"] is False
        reply = send_command(connection, "enqueue", job={"prompt": "over tcp"})
        assert reply["ok"] and reply["job"]["index"] == 3
        bad = send_command(connection, "enqueue", job={"prompt": "x", "fps": -1})
        assert bad == {"ok": False, "error": bad["error"]} and "fps" in bad["error"]
        assert send_command(connection, "clear")["cleared"] == 4
        assert send_command(connection, "abort")["status"]["stopping"] == "abort"
    assert not path.exists()


def test_server_survives_many_concurrent_and_hostile_clients(controller, tmp_path):
    with ControlServer(controller, tmp_path) as server:
        connection = server.connection
        before = controller.status()
        replies: list = []

        def client(i: int):
            with socket.create_connection((connection.host, connection.port), timeout=10) as sock:
                stream = sock.makefile("rwb")
                for payload in (b"garbage\n", json.dumps({"token": "bad", "cmd": "abort"}).encode() + b"\n",
                                json.dumps({"token": connection.token, "cmd": "status"}).encode() + b"\n"):
                    stream.write(payload)
                    stream.flush()
                    replies.append(json.loads(stream.readline())["ok"])

        threads = [in_thread(lambda i=i: client(i)) for i in range(20)]
        with socket.create_connection((connection.host, connection.port), timeout=10) as idle:
            idle.sendall(b'{"token": ')  # a half-sent line holds only its own thread
            for thread in threads:
                thread.join(30)
        assert replies.count(True) == 20 and replies.count(False) == 40
        with socket.create_connection((connection.host, connection.port), timeout=10) as sock:
            try:
                sock.sendall(b"x" * (MAX_LINE_BYTES + 100) + b"\n")
            except OSError:
                pass
            reply = sock.makefile("rb").readline()
            assert reply == b"" or json.loads(reply)["ok"] is False
        after = controller.status()
        assert (after["paused"], after["stopping"], after["counts"], after["pending"]) == (
            before["paused"], before["stopping"], before["counts"], before["pending"])


def test_remote_host_needs_allow_remote(controller, tmp_path):
    with pytest.raises(ConfigError, match="control.allow_remote"):
        ControlServer(controller, tmp_path, host="0.0.0.0")
    with ControlServer(controller, tmp_path, host="0.0.0.0", allow_remote=True) as server:
        assert send_command(server.connection.__class__("127.0.0.1", server.port, server.token), "status")["ok"]


def test_connection_file_is_never_world_readable(controller, tmp_path):
    old_umask = os.umask(0)
    try:
        with ControlServer(controller, tmp_path):
            assert stat.S_IMODE(control_file(tmp_path).stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


# -- vgen-ctl --------------------------------------------------------------------------------------
def test_ctl_exit_codes(controller, tmp_path, capsys):
    from vgen.ctl import main

    assert main(["--run-dir", str(tmp_path), "status"]) == 1  # no control.json: no server
    with ControlServer(controller, tmp_path) as server:
        assert main(["--run-dir", str(tmp_path), "pause"]) == 0
        assert json.loads(capsys.readouterr().out)["status"]["paused"] is True
        assert main(["--run-dir", str(tmp_path), "enqueue", "--prompt", "cli job", "--steps", "3",
                     "--job", '{"seed": 5, "steps": 9}']) == 0
        pending = json.loads(capsys.readouterr().out)["status"]["pending"][-1]
        assert pending["prompt"] == "cli job" and controller.state.snapshot()["pending"][-1] == pending
        assert main(["--run-dir", str(tmp_path), "enqueue", "--job", '{"prompt": "x", "nope": 1}']) == 2
        assert main(["--host", "127.0.0.1", "--port", str(server.port), "--token", "wrong", "status"]) == 2
        port = server.port
    assert main(["--host", "127.0.0.1", "--port", str(port), "--token", "t", "--timeout", "2", "status"]) == 1
    with pytest.raises(SystemExit) as usage:
        main(["status"])
    assert usage.value.code == 2


def test_ctl_module_entry_point(controller, tmp_path):
    import subprocess
    import sys

    with ControlServer(controller, tmp_path):
        result = subprocess.run([sys.executable, "-m", "vgen.ctl", "--run-dir", str(tmp_path), "status"],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["counts"]["remaining"] == 3


# -- server limits: deadline, connection cap, a reply to everything ---------------------------------
def read_line(sock: socket.socket) -> dict:
    return json.loads(sock.makefile("rb").readline())


@pytest.mark.parametrize("line,message", [
    (b'{"token": "\\ud800", "cmd": "status"}', "lone surrogate"),
    (b'{"token": "secret-token", "cmd": "enqueue", "job": {"prompt": "\\udfff"}}', "lone surrogate"),
    (b'{"token": "secret-token", "cmd": "enqueue", "job": {"\\ud800": 1}}', "lone surrogate"),
    (b'{"token": "secret-token", "cmd": "status", "n": ' + b"9" * 5000 + b"}", "integer string conversion"),
    (b"[" * 30000 + b"]" * 30000, "nested deeper than 16"),
    (b'{"token": "secret-token", "cmd": "status", "x": ' + b"[" * 16 + b"]" * 16 + b"}", "nested deeper than 16"),
    (b'{"token": "secret-token", "cmd": "enqueue", "job": {"prompt": "x", "guidance_scale": NaN}}', "NaN"),
    (b'{"token": "secret-token", "cmd": "enqueue", "job": {"prompt": "x", "guidance_scale": -Infinity}}', "-Infinity"),
])
def test_parse_request_refuses_what_used_to_crash_the_handler(line, message):
    with pytest.raises(ProtocolError, match=message):
        parse_request(line, TOKEN)


def test_parse_request_accepts_nesting_up_to_the_limit():
    line = b'{"token": "secret-token", "cmd": "status", "x": ' + b"[" * 15 + b"]" * 15 + b"}"
    assert parse_request(line, TOKEN).cmd == "status"


def test_every_request_gets_a_reply_and_the_connection_lives_on(controller, tmp_path, monkeypatch):
    with ControlServer(controller, tmp_path) as server:
        token = server.connection.token.encode()
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            stream = sock.makefile("rwb")
            for line in (b'{"token": "\\ud800", "cmd": "status"}',
                         b'{"token": "' + token + b'", "n": ' + b"9" * 5000 + b"}",
                         b"[" * 30000 + b"]" * 30000,
                         b'{"token": "' + token + b'", "cmd": "enqueue", "job": {"\\udc80": 1}}'):
                stream.write(line + b"\n")
                stream.flush()
                assert json.loads(stream.readline())["ok"] is False
            monkeypatch.setattr(controller, "status", lambda: 1 / 0)  # a fault no request can trigger today
            stream.write(b'{"token": "' + token + b'", "cmd": "status"}\n')
            stream.flush()
            assert json.loads(stream.readline()) == {"ok": False,
                                                     "error": "request failed: ZeroDivisionError: division by zero"}
            monkeypatch.undo()
            stream.write(b'{"token": "' + token + b'", "cmd": "status"}\n')
            stream.flush()
            assert json.loads(stream.readline())["ok"] is True


def test_request_deadline_is_total_not_per_byte(controller, tmp_path):
    """One byte every 0.2 s never lets a plain socket timeout of 1 s fire; the deadline does."""
    with ControlServer(controller, tmp_path, request_deadline_s=1.0) as server:
        request = b'{"token": "' + server.token.encode() + b'", "cmd": "abort"}\n'
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            for sent, byte in enumerate(b" " * 100 + request):
                if select.select([sock], [], [], 0.2)[0]:
                    break
                sock.sendall(bytes([byte]))
            assert read_line(sock) == {"ok": False, "error": "no complete request within 1 s; closing"}
            assert sock.recv(1) == b""  # closed
        assert sent < 100 and controller.status()["stopping"] is None
        assert send_command(server.connection, "status")["ok"]


def test_a_client_that_never_reads_its_replies_is_dropped_at_the_deadline(controller, tmp_path):
    """Sending a reply counts against the deadline too: a client cannot park a thread by not reading."""
    for number in range(20):  # status replies of ~40 KB: the socket buffers fill after a few hundred
        controller.enqueue({"prompt": f"{number} " + "long prompt " * 170})
    with ControlServer(controller, tmp_path, request_deadline_s=1.0) as server:
        request = b'{"token": "' + server.token.encode() + b'", "cmd": "status"}\n'
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((server.host, server.port))
            sock.setblocking(False)
            sent = 0
            while sent < 10**6:  # until the server stops reading: its replies have backed up behind ours
                try:
                    if sock.send(request) < len(request):
                        break
                except BlockingIOError:
                    break
                sent += 1
            time.sleep(3 * server.request_deadline_s)  # not reading, for longer than the deadline
            sock.settimeout(30)
            replies = 0
            try:
                while chunk := sock.recv(1 << 20):  # until the server closes the connection
                    replies += chunk.count(b"\n")
            except ConnectionResetError:
                pass
        assert replies < sent  # the server gave up on this client instead of waiting for it to read
        assert send_command(server.connection, "status")["ok"]


def test_connections_over_the_cap_are_refused_at_once(controller, tmp_path):
    with ControlServer(controller, tmp_path, max_connections=3) as server:
        address = (server.host, server.port)
        held = [socket.create_connection(address, timeout=10) for _ in range(3)]
        try:
            for _ in range(5):
                with socket.create_connection(address, timeout=10) as extra:
                    assert read_line(extra) == {"ok": False,
                                                "error": "too many control connections (at most 3); try again later"}
                    assert extra.recv(1) == b""
            refused = send_command(server.connection, "abort")  # vgen-ctl sees the refusal as an error reply
            assert refused["ok"] is False and "too many" in refused["error"]
            assert controller.status()["stopping"] is None
            stream = held[0].makefile("rwb")  # the connections within the cap are served as usual
            stream.write(b'{"token": "' + server.token.encode() + b'", "cmd": "status"}\n')
            stream.flush()
            assert json.loads(stream.readline())["ok"] is True
        finally:
            held.pop().close()
        for _ in range(100):  # the closed connection's slot is free once its thread has seen the close
            if (reply := send_command(server.connection, "status"))["ok"]:
                break
            time.sleep(0.05)
        assert reply["ok"] is True
        for sock in held:
            sock.close()
