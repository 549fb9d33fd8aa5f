"""vgen.sweep.attempt_logs at unit level: submitit's append-mode task logs cut per attempt (real files).

The same cut on a real requeued SLURM task: tests/test_slurm_sweep.py (preempted and timed-out points).
"""

from __future__ import annotations

from pathlib import Path

from vgen.sweep.attempt_logs import ATTEMPT_LOGS_DIR, split_attempt_logs

START = "submitit INFO (2026-11-26 00:00:00,000) - Starting with JobEnvironment(job_id=7, hostname=vm)\n"


def attempt(restart_count: int, run_dir: Path, stdout_offset: int, stderr_offset: int) -> dict:
    return {"restart_count": restart_count, "slurm_job_id": "7", "stdout": str(run_dir / "7_0_log.out"),
            "stderr": str(run_dir / "7_0_log.err"), "stdout_offset": stdout_offset, "stderr_offset": stderr_offset}


def test_each_attempt_gets_its_part_starting_at_submitits_start_line(tmp_path):
    first_out = START + "Loading pickle\nfirst: preempted\n"
    second_out = START + "Loading pickle\nsecond: done\n"
    (tmp_path / "7_0_log.out").write_text(first_out + second_out)
    (tmp_path / "7_0_log.err").write_text("first err\nSIGUSR2 received\n" + "second err\n")
    # Each attempt's offset is taken when vgen's callback runs: after submitit's first lines of that attempt.
    attempts = [attempt(0, tmp_path, len(START), 0),
                attempt(1, tmp_path, len(first_out) + len(START) + len("Loading pickle\n"),
                        len("first err\nSIGUSR2 received\n"))]
    listed = split_attempt_logs(tmp_path, attempts)
    assert listed == [
        {"attempt": 1, "restart_count": 0, "slurm_job_id": "7", "stdout": f"{ATTEMPT_LOGS_DIR}/attempt-1.out",
         "stderr": f"{ATTEMPT_LOGS_DIR}/attempt-1.err"},
        {"attempt": 2, "restart_count": 1, "slurm_job_id": "7", "stdout": f"{ATTEMPT_LOGS_DIR}/attempt-2.out",
         "stderr": f"{ATTEMPT_LOGS_DIR}/attempt-2.err"}]
    read = [((tmp_path / entry["stdout"]).read_text(), (tmp_path / entry["stderr"]).read_text()) for entry in listed]
    assert read == [(first_out, "first err\nSIGUSR2 received\n"), (second_out, "second err\n")]


def test_attempt_without_submitit_start_line_is_cut_at_its_offset(tmp_path):
    (tmp_path / "7_0_log.out").write_text("one\ntwo\nthree\n")
    listed = split_attempt_logs(tmp_path, [attempt(0, tmp_path, 0, 0), attempt(1, tmp_path, len("one\ntwo\n"), 0)])
    assert [(tmp_path / entry["stdout"]).read_text() for entry in listed] == ["one\ntwo\n", "three\n"]
    assert [entry["stderr"] for entry in listed] == [None, None]  # no stderr file (stderr_to_stdout)
