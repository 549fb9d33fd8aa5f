"""Write failures at the run level: retries, the error row, and nothing half-written left behind.

The only fake is an ``OSError`` injected into ``vgen.media.writers._replace`` (the publishing
rename); the generation and the ffmpeg encode before it are real.
"""

from __future__ import annotations

import logging

import pytest

from test_overlap import TINY_JOB, compose_manager, queue_override
from vgen.media import writers

pytestmark = pytest.mark.slow  # loads the tiny model and encodes videos


def run_queue(tmp_path, jobs: int, *extra: str):
    from vgen.queue.controller import QueueController

    manager = compose_manager(tmp_path / "run", [*TINY_JOB, queue_override(jobs), "output.retry_delay_s=0.01", *extra])
    manager.load_pipeline()
    summary = QueueController(manager, manager.jobs()).run()
    return manager, summary


def test_a_write_that_always_fails_becomes_that_jobs_error_row(tmp_path, monkeypatch):
    real_replace = writers._replace
    failed_targets = []

    def replace(source, target):
        if target.name.startswith("0001_"):  # only the 2nd job's video
            failed_targets.append(target)
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(writers, "_replace", replace)
    manager, summary = run_queue(tmp_path, 3)

    assert (summary.done, summary.failed) == (2, 1)
    rows = manager.manifest.rows()
    assert [(row["job_index"], row["status"]) for row in rows] == [(0, "success"), (1, "error"), (2, "success")]
    failed = rows[1]
    assert failed["error"]["type"] == "MediaWriteError"
    final = failed_targets[0]
    assert len(failed_targets) == 4  # first attempt + output.retries=3
    assert str(final) in failed["error"]["message"]
    assert failed["artifacts"] == []
    assert not final.exists()
    # Nothing but the two finished videos and the manifest: no temp files, no staged metadata.
    files = sorted(path.relative_to(manager.run_dir).as_posix() for path in manager.run_dir.rglob("*") if path.is_file())
    expected = sorted([*(artifact["path"] for row in rows for artifact in row["artifacts"]),
                       "manifests/run_history.jsonl"])
    assert files == expected
    assert sorted(path.name[:5] for path in (manager.run_dir / "videos").iterdir()) == ["0000_", "0002_"]

def test_a_write_that_fails_twice_then_succeeds(tmp_path, monkeypatch, caplog):
    real_replace = writers._replace
    attempts = []

    def replace(source, target):
        attempts.append(target)
        if len(attempts) <= 2:
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(writers, "_replace", replace)
    with caplog.at_level(logging.WARNING):
        manager, summary = run_queue(tmp_path, 1)

    assert summary.done == 1 and summary.ok
    (row,) = manager.manifest.rows()
    assert row["status"] == "success" and "error" not in row
    video = manager.run_dir / row["artifacts"][0]["path"]
    assert video.is_file() and video.stat().st_size == row["artifacts"][0]["bytes"]
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING and "failed (attempt" in record.getMessage()]
    assert len(warnings) == 2, warnings
    for attempt, message in enumerate(warnings, start=1):
        assert str(video) in message and f"attempt {attempt}/4" in message
    assert not [path for path in manager.run_dir.rglob("*") if path.name.startswith(".")]
