"""One process per run dir: a second one exits 2 naming the holder; a SIGKILLed holder blocks nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import run_vgen
from control_helpers import VgenProcess, jobs_override
from vgen.control.connection import control_file
from vgen.rundir.lock import LOCK_NAME, RunDirBusy, hold_run_dir

HOLDER = textwrap.dedent("""
    import sys, time
    from vgen.rundir.lock import hold_run_dir
    with hold_run_dir(sys.argv[1]):
        print("held", flush=True)
        time.sleep(600)
""")


def start_holder(run_dir) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_is_refused_with_the_holders_pid_until_the_holder_is_killed(tmp_path):
    holder = start_holder(tmp_path / "run")
    try:
        with pytest.raises(RunDirBusy, match=f"in use by another vgen process \\(pid {holder.pid}\\)"):
            with hold_run_dir(tmp_path / "run"):
                pass
        holder.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops the flock
        holder.wait()
        assert (tmp_path / "run" / LOCK_NAME).read_text().strip() == str(holder.pid)  # a stale pid stays
        with hold_run_dir(tmp_path / "run"):
            assert (tmp_path / "run" / LOCK_NAME).read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_reentrant_in_one_process_and_leaves_no_empty_dir(tmp_path):
    run_dir = tmp_path / "a" / "b" / "run"
    with hold_run_dir(run_dir):
        with hold_run_dir(run_dir):  # the entry point held it before Hydra, the run takes it again
            assert (run_dir / LOCK_NAME).is_file()
    assert not (tmp_path / "a").exists()  # created for the lock only: removed again
    with hold_run_dir(tmp_path):
        (tmp_path / "kept").write_text("x")
    assert (tmp_path / LOCK_NAME).is_file() and (tmp_path / "kept").is_file()


def test_matte_on_a_busy_run_dir_exits_2_before_hydra_starts(tmp_path):
    holder = start_holder(tmp_path / "run")
    try:
        result = run_vgen(f"hydra.run.dir={tmp_path / 'run'}", "input.video=clip.mp4", "input.mask=mask.png",
                          module="vgen.matte", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip() == (f"vgen.matte: error: run dir {tmp_path / 'run'} is in use by another vgen process "
                                         f"(pid {holder.pid}); wait for it to end or choose another hydra.run.dir")
        assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_second_vgen_on_a_busy_run_dir_exits_2_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    first = VgenProcess(run_dir, jobs_override(("alpha", 50)))
    try:
        first.wait_for_control()
        first.wait_generating(0)
        first.ctl("pause")  # it holds the run dir, mid-job, for as long as the second one needs
        before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file() and path.suffix != ".log"}
        second = run_vgen("runtime.progress=false", "control.enabled=true", "queue.jobs=[{prompt: other}]",
                          f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        assert f"in use by another vgen process (pid {first.proc.pid})" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        after = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file() and path.suffix != ".log"}
        assert after == before  # .hydra, resolved config, control.json: all the first run's
        assert control_file(run_dir).is_file()
        first.ctl("abort")
        assert first.wait() == 3
    finally:
        first.kill()
