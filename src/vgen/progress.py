"""Progress shown on long work: a bar over each job's denoising steps and a queue line with ETA."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

log = logging.getLogger("vgen.queue")


def format_seconds(seconds: float | None) -> str:
    return "unknown" if seconds is None else str(timedelta(seconds=round(max(seconds, 0.0))))


class QueueProgress:
    """Per-job step bar (tqdm on stderr) plus one log line per started and finished job.

    Counts and ETA come from the caller (the queue state); this class only displays them.
    """

    def __init__(self, *, show_bar: bool = True) -> None:
        self.show_bar = show_bar
        self._bar = None

    def job_started(self, index: int, total_jobs: int, job_id: str, prompt: str, total_steps: int) -> None:
        log.info("Job %d/%d [%s] started: %s", index + 1, total_jobs, job_id, prompt[:80])
        if self.show_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, desc=f"job {index + 1}/{total_jobs}", unit="step",
                             file=sys.stderr, leave=False, dynamic_ncols=True)

    def step(self, steps_done: int) -> None:
        if self._bar is not None:
            self._bar.update(steps_done - self._bar.n)

    def job_finished(self, index: int, total_jobs: int, status: str, seconds: float, *, remaining: int,
                     eta_s: float | None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        log.info("Job %d/%d %s in %.2fs; %d remaining, ETA %s", index + 1, total_jobs, status, seconds,
                 remaining, format_seconds(eta_s))
