"""A full disk, for real: a small tmpfs as the run dir (needs root; skipped with the reason otherwise).

A full disk does not fix itself, so the queue stops at the first write that finds no space: one
error line per job, exit 1, every manifest line whole, no temp file left, and a log file that says
once that it cannot be written instead of printing a traceback per record.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from control_helpers import FAST_JOB_OVERRIDES, final_files, temp_files
from disk_helpers import fill_disk, mounted_tmpfs
from vgen.hashing import file_sha256
from vgen.rundir.log_file import ReportOnceFileHandler
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, ManifestLog


@pytest.fixture
def disk(tmp_path):
    with mounted_tmpfs(tmp_path / "disk", "1m") as mounted:
        yield mounted


def test_log_file_on_a_full_disk_reports_once_not_per_record(disk, capsys):
    path = disk / "vgen.log"
    handler = ReportOnceFileHandler(path)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test_full_disk")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("before")
        fill_disk(disk, path)
        for number in range(50):
            logger.warning("record %d %s", number, "x" * 200)
        assert capsys.readouterr().err == (
            f"vgen: cannot write the log file {path} ([Errno 28] No space left on device); its records go only "
            "to the console until writing works again\n")
        (disk / "filler").unlink()
        logger.warning("after")
        assert capsys.readouterr().err == f"vgen: writing the log file {path} works again\n"
        handler.flush()
        assert path.read_text().splitlines()[0] == "before" and path.read_text().rstrip().endswith("after")
        logger.warning("%d", "not a number")  # other logging errors are still reported in full
        assert "TypeError" in capsys.readouterr().err
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_manifest_append_on_a_full_disk_leaves_no_torn_line(disk):
    manifest = ManifestLog(disk / "run")
    manifest.append({"job_id": "a", "n": 1})
    before = manifest.path.read_bytes()
    fill_disk(disk)
    with pytest.raises(OSError) as raised:
        manifest.append({"job_id": "b", "pad": "x" * 20000})  # more than what is left of the file's last block
    assert raised.value.errno == 28
    assert manifest.path.read_bytes() == before
    (disk / "filler").unlink()
    manifest.append({"job_id": "c"})
    assert [row["job_id"] for row in manifest.rows()] == ["a", "c"]


@pytest.mark.slow
def test_a_run_on_a_disk_that_fills_up_stops_with_one_error_and_whole_manifest_lines(disk):
    """The disk is filled to the last byte (log file included) while the first job generates."""
    run_dir = disk / "run"
    jobs = ",".join(f"{{prompt:shot{number},steps:30}}" for number in range(6))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vgen", *FAST_JOB_OVERRIDES, "generation.num_frames=5", f"hydra.run.dir={run_dir}",
         f"queue.jobs=[{jobs}]"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        lines = []
        for line in proc.stdout:  # ends when vgen exits
            lines.append(line)
            if "Job 1/6" in line and "started" in line:
                fill_disk(disk, run_dir / "vgen.log")
                break
        output = "".join(lines) + proc.stdout.read()
        code = proc.wait(timeout=300)
    finally:
        proc.kill()
        proc.wait()

    assert code == 1, output
    assert "Traceback" not in output and "Logging error" not in output, output
    assert output.count("cannot write the log file") == 1, output
    assert output.count("No space left under") == 1, output
    not_saved = [line for line in output.splitlines() if "not saved: " in line]
    assert not_saved and all("No space left on device" in line for line in not_saved), output
    assert len({line.split(" not saved")[0].split()[-1] for line in not_saved}) == len(not_saved)  # one per job
    assert output.count("started:") < 6, output  # the queue stopped: later jobs never started

    text = (run_dir / MANIFEST_RELATIVE_PATH).read_text()
    assert text == "" or text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]  # every line whole
    successes = [row for row in rows if row["status"] == "success"]
    assert {run_dir / artifact["path"] for row in successes for artifact in row["artifacts"]} == final_files(run_dir)
    for row in successes:
        for artifact in row["artifacts"]:
            assert file_sha256(run_dir / artifact["path"]) == artifact["sha256"]
    assert temp_files(run_dir) == [] and not list(run_dir.rglob("*.ffmeta"))
