"""Progress shown on long work: a bar over each job's denoising steps and a queue line with ETA."""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

log = logging.getLogger("vgen.queue")


def format_seconds(seconds: float) -> str:
    return str(timedelta(seconds=round(max(seconds, 0.0))))


class QueueProgress:
    """Per-job step bar (tqdm on stderr) plus one log line per finished job with counts and ETA."""

    def __init__(self, total_jobs: int, *, show_bar: bool = True) -> None:
        self.total_jobs = total_jobs
        self.show_bar = show_bar
        self.finished = 0
        self._queue_started = time.perf_counter()
        self._bar = None

    def add_jobs(self, count: int) -> None:
        self.total_jobs += count

    def job_started(self, index: int, job_id: str, prompt: str, total_steps: int) -> None:
        log.info("Job %d/%d [%s] started: %s", index + 1, self.total_jobs, job_id, prompt[:80])
        if self.show_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, desc=f"job {index + 1}/{self.total_jobs}", unit="step",
                             file=sys.stderr, leave=False, dynamic_ncols=True)

    def step(self, step_index: int) -> None:
        if self._bar is not None:
            self._bar.update(step_index + 1 - self._bar.n)

    def job_finished(self, index: int, status: str, seconds: float) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.finished += 1
        remaining = self.total_jobs - self.finished
        elapsed = time.perf_counter() - self._queue_started
        eta = elapsed / self.finished * remaining if self.finished else 0.0
        log.info("Job %d/%d %s in %.2fs; %d remaining, ETA %s", index + 1, self.total_jobs, status, seconds,
                 remaining, format_seconds(eta))
