"""Signals stop the queue cleanly: aborted row, drained writes, no temp files, exit 130/143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from control_helpers import VgenProcess, final_files, jobs_override, temp_files
from vgen.queue.signals import SignalStop, exit_code_for, remove_temp_files


def test_exit_codes():
    assert exit_code_for(signal.SIGINT) == 130
    assert [exit_code_for(s) for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)] == [143, 143, 143]


def test_handlers_installed_then_restored_and_previous_handler_chained(tmp_path):
    seen: list = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(("previous", signum)))
    try:
        with SignalStop(lambda name: seen.append(("stop", name)), temp_root=tmp_path) as stop:
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGUSR1)  # a repeat while stopping is only logged
            assert seen == [("stop", "SIGUSR1")]
            assert stop.exit_code == 143
        assert seen == [("stop", "SIGUSR1"), ("previous", signal.SIGUSR1)]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_no_handlers_outside_the_main_thread(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    inside: list = []

    def worker():
        with SignalStop(lambda name: None, temp_root=tmp_path):
            inside.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert inside == [before]


def test_remove_temp_files_only_of_the_given_process(tmp_path):
    (tmp_path / "videos").mkdir()
    mine = tmp_path / "videos" / f".0000_x.tmp-{os.getpid()}-abcd.mp4"
    other = tmp_path / "videos" / ".0001_y.tmp-999999-abcd.mp4"
    final = tmp_path / "videos" / "0000_x.mp4"
    for path in (mine, other, final):
        path.write_bytes(b"x")
    assert remove_temp_files(tmp_path, os.getpid()) == 1
    assert not mine.exists() and other.exists() and final.exists()
    assert remove_temp_files(tmp_path) == 1 and not other.exists() and final.exists()


def test_second_sigint_exits_at_once_removing_temp_files(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from vgen.queue.signals import SignalStop
        temp = Path({str(tmp_path)!r}) / f".clip.tmp-{{os.getpid()}}-0000.mp4"
        with SignalStop(lambda name: print("stopping", name, flush=True), temp_root={str(tmp_path)!r}):
            temp.write_bytes(b"partial")
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        print("not reached")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, result.stderr
    assert "stopping SIGINT" in result.stdout and "not reached" not in result.stdout
    assert temp_files(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_aborts_current_job_and_exits(tmp_path, signum, code):
    run = VgenProcess(tmp_path / "run", jobs_override(("alpha", 2), ("beta", 2000), ("gamma", 2)))
    try:
        run.wait_for_control()
        run.wait_generating(1)
        run.send_signal(signum)
        assert run.wait(timeout=120) == code, run.output()
    finally:
        run.kill()
    rows = run.rows()
    assert [(row["inputs"]["prompt"], row["status"]) for row in rows] == [("alpha", "success"), ("beta", "aborted")]
    assert {run.run_dir / a["path"] for a in rows[0]["artifacts"]} == final_files(run.run_dir)
    assert temp_files(run.run_dir) == []
    assert f"{signal.Signals(signum).name} received" in run.output()
