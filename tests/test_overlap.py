"""Persistence of job N overlaps generation of job N+1, measured inside the process.

The encoder is made slow by a wrapper around the run's media context whose ``save_video`` sleeps
before delegating to the real one (a real ffmpeg encode still happens). Every interval is recorded
with ``time.perf_counter`` so the assertions compare the writer's own counters and the ordering of
intervals, never wall-clock thresholds.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Sequence

import pytest

from vgen.queue.background_writer import BackgroundWriter
from vgen.hashing import file_sha256
from vgen.config.compose import compose_run_config
from vgen.rundir.manifest import ManifestLog, read_rows
from vgen.production import ProductionManager

SLOW_ENCODE_S = 0.3
TINY_JOB = ["generation.num_frames=5", "generation.steps=2", "generation.height=32", "generation.width=32"]


def queue_override(count: int) -> str:
    return "queue.jobs=[" + ",".join(f"{{prompt: 'job {n}', seed: {n}}}" for n in range(count)) + "]"


def compose_manager(run_dir: Path, overrides: Sequence[str] = (), manager_cls=ProductionManager):
    """Compose vgen's config the way ``python -m vgen`` does and build a manager."""
    cfg = compose_run_config(run_dir, ["runtime.progress=false", *overrides])
    return manager_cls(cfg, run_dir=run_dir)


class SlowMedia:
    """The real media context with a slow ``save_video``: sleeps, then encodes for real."""

    def __init__(self, inner, intervals: list) -> None:
        self._inner = inner
        self.intervals = intervals

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def save_video(self, *args, **kwargs):
        started = time.perf_counter()
        time.sleep(SLOW_ENCODE_S)
        artifact = self._inner.save_video(*args, **kwargs)
        self.intervals.append(("persist", started, time.perf_counter(), threading.current_thread().name))
        return artifact


class CheckedManifest(ManifestLog):
    """After each append, reads the manifest back and checks every row's artifacts are on disk, intact."""

    def __init__(self, run_dir) -> None:
        super().__init__(run_dir)
        self.problems: list[str] = []

    def append(self, row) -> None:
        super().append(row)
        for written in read_rows(self.path):
            for artifact in written["artifacts"]:
                path = self.run_dir / artifact["path"]
                if not path.is_file():
                    self.problems.append(f"row {written['job_index']}: {path} missing when the row was read")
                elif file_sha256(path) != artifact["sha256"]:
                    self.problems.append(f"row {written['job_index']}: {path} differs from its row")


class InstrumentedManager(ProductionManager):
    """Records generation and persistence intervals; optionally sends itself SIGINT before one job."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.interrupt_at: int | None = None
        self.intervals: list[tuple] = []
        self.manifest = CheckedManifest(self.run_dir)

    def media_context(self):
        return SlowMedia(super().media_context(), self.intervals)

    def run_generation(self, job, **kwargs):
        if job.index == self.interrupt_at:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C: KeyboardInterrupt in this (main) thread
        started = time.perf_counter()
        result = super().run_generation(job, **kwargs)
        self.intervals.append(("generate", started, time.perf_counter(), threading.current_thread().name))
        return result

    def spans(self, kind: str) -> list[tuple[float, float, str]]:
        return [(start, end, thread) for what, start, end, thread in self.intervals if what == kind]


def overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def run_queue(tmp_path: Path, *, background: bool, jobs: int = 4, interrupt_at: int | None = None):
    from vgen.queue.controller import QueueController

    manager = compose_manager(tmp_path / "run", [*TINY_JOB, queue_override(jobs),
                                                 f"output.background_writer={str(background).lower()}"],
                              manager_cls=InstrumentedManager)
    manager.interrupt_at = interrupt_at
    manager.load_pipeline()
    controller = QueueController(manager, manager.jobs())
    return manager, controller


@pytest.mark.slow  # loads the tiny model and encodes several videos
def test_persistence_overlaps_generation(tmp_path):
    manager, controller = run_queue(tmp_path, background=True)
    summary = controller.run()
    writer = controller.writer

    assert summary.done == 4 and summary.ok
    rows = manager.manifest.rows()
    assert [row["job_index"] for row in rows] == [0, 1, 2, 3]
    assert manager.manifest.problems == []
    persists, generates = manager.spans("persist"), manager.spans("generate")
    assert {thread for _, _, thread in persists} == {"vgen-writer"}
    assert {thread for _, _, thread in generates} == {threading.main_thread().name}
    # Job 0 was being written while job 1 was being generated.
    assert overlaps(persists[0], generates[1])
    # The generating thread waited on persistence for a small share of the time persistence took.
    assert writer.busy_s >= sum(end - start for start, end, _ in persists)
    assert writer.blocked_s < 0.5 * writer.busy_s, (writer.blocked_s, writer.busy_s)


@pytest.mark.slow  # loads the tiny model and encodes several videos
def test_inline_writer_never_overlaps(tmp_path):
    manager, controller = run_queue(tmp_path, background=False, jobs=3)
    summary = controller.run()
    writer = controller.writer

    assert summary.done == 3
    assert [row["job_index"] for row in manager.manifest.rows()] == [0, 1, 2]
    assert manager.manifest.problems == []
    persists, generates = manager.spans("persist"), manager.spans("generate")
    assert {thread for _, _, thread in persists} == {threading.main_thread().name}
    assert not any(overlaps(p, g) for p in persists for g in generates)
    assert writer.blocked_s == 0.0
    # Inline, all of the persistence time is spent on the generating thread.
    persist_in_rows = sum(row["timings"]["persist_s"] for row in manager.manifest.rows())
    assert writer.busy_s >= sum(end - start for start, end, _ in persists)
    assert writer.busy_s >= persist_in_rows - 1e-3


@pytest.mark.slow  # loads the tiny model and encodes several videos
def test_interrupt_drains_pending_writes(tmp_path):
    """Ctrl-C during job 2: the queue stops, but jobs 0 and 1 are still written before run() returns."""
    manager, controller = run_queue(tmp_path, background=True, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        controller.run()

    rows = manager.manifest.rows()
    assert [(row["job_index"], row["status"]) for row in rows] == [(0, "success"), (1, "success")]
    assert manager.manifest.problems == []
    assert not any(thread.name == "vgen-writer" for thread in threading.enumerate())
    assert not list(manager.run_dir.rglob(".*tmp-*"))


def test_close_runs_every_pending_task_in_order():
    done: list[int] = []

    def task(number: int):
        time.sleep(0.02)
        done.append(number)

    writer = BackgroundWriter(enabled=True, max_pending=2)
    for number in range(6):
        writer.submit(lambda number=number: task(number))
    writer.close()
    assert done == list(range(6))
    assert writer.busy_s >= 6 * 0.02
    assert not any(thread.name == "vgen-writer" for thread in threading.enumerate())


def test_a_task_raising_base_exception_does_not_strand_the_rest():
    """SystemExit inside one write must not kill the worker: later writes still run and close() returns."""
    done: list[str] = []

    def exits():
        time.sleep(0.05)  # the next task is queued (the queue is full) before this one dies
        raise SystemExit(3)

    writer = BackgroundWriter(enabled=True, max_pending=1)
    writer.submit(exits)
    writer.submit(lambda: done.append("after"))
    closer = threading.Thread(target=writer.close, daemon=True)
    closer.start()
    closer.join(timeout=30)  # only guards against a hang; no timing is asserted
    assert not closer.is_alive(), "close() hung: the worker died with writes pending"
    assert done == ["after"]


def test_submit_after_close_is_refused():
    writer = BackgroundWriter(enabled=True)
    writer.close()
    with pytest.raises(RuntimeError, match="after close"):
        writer.submit(lambda: None)
