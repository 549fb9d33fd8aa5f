"""QueueStateTracker: the queue's shared, thread-safe state and its status snapshot.

The generating thread, the background writer, the control server's connection threads and signal
handlers all read or change this state, so every access goes through one re-entrant lock (a signal
handler runs on the main thread, possibly while that thread already holds the lock). The condition
on that lock wakes a paused queue when it is resumed or aborted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Iterable

from vgen.jobs.expand import JobSpec, unique_job_id

PENDING_IN_STATUS = 20  # queue summary entries a status reply lists (the counts cover the rest)


class QueueStateTracker:
    def __init__(self, jobs: Iterable[JobSpec] = (), *, skipped: int = 0) -> None:
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[JobSpec] = deque(jobs)
        self._known_ids = {job.job_id for job in self._pending}
        self._next_index = max((job.index + 1 for job in self._pending), default=0)
        self._closed = False
        self.paused = False
        self.stop_reason: str | None = None  # "abort" or a signal name once a stop was requested
        self.done = self.failed = self.aborted = 0
        self.skipped = skipped
        self._started = time.monotonic()
        self._paused_s = 0.0  # total paused time, excluded from step rates
        self._pause_began: float | None = None
        self._current: JobSpec | None = None
        self._enhanced: dict[str, str] = {}
        self._step = 0
        self._job_active_start = 0.0
        self._sec_per_step: float | None = None  # last measured denoising rate

    # -- clock that stands still while paused ----------------------------------------------------
    def _active_now(self) -> float:
        paused = self._paused_s + (time.monotonic() - self._pause_began if self._pause_began is not None else 0.0)
        return time.monotonic() - paused

    # -- queue contents -------------------------------------------------------------------------
    def next_index(self) -> int:
        with self._lock:
            return self._next_index

    def unique_job_id(self, job_id: str) -> str:
        """``job_id``, or ``job_id-N`` when an identical job is already in this run."""
        with self._lock:
            return unique_job_id(job_id, self._known_ids)

    def add(self, job: JobSpec) -> None:
        """Append a job; refused once the drain loop has finished (nothing would run it)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the queue has finished; start a new run")
            if job.job_id in self._known_ids:
                raise ValueError(f"duplicate job_id {job.job_id}")
            self._pending.append(job)
            self._known_ids.add(job.job_id)
            self._next_index = max(self._next_index, job.index + 1)
            self._wake.notify_all()

    def clear(self) -> int:
        """Drop every pending job (not the one generating); returns how many were dropped."""
        with self._lock:
            count = len(self._pending)
            self._pending.clear()
            return count

    def next_job(self) -> JobSpec | None:
        """The next job to run, waiting while paused; None (and the queue closes) when stopped or empty."""
        with self._lock:
            while self.paused and self.stop_reason is None:
                self._wake.wait()
            if self.stop_reason is not None or not self._pending:
                self._closed = True
                return None
            return self._pending.popleft()

    # -- control --------------------------------------------------------------------------------
    def pause(self) -> None:
        with self._lock:
            if not self.paused:
                self.paused = True
                self._pause_began = time.monotonic()

    def resume(self) -> None:
        with self._lock:
            if self.paused:
                self.paused = False
                self._paused_s += time.monotonic() - self._pause_began
                self._pause_began = None
            self._wake.notify_all()

    def request_stop(self, reason: str) -> None:
        """Stop at the next step boundary (the first reason wins) and wake a paused queue."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            self._wake.notify_all()

    def checkpoint(self) -> bool:
        """Called at every step boundary: block while paused; True when the current job must stop."""
        with self._lock:
            while self.paused and self.stop_reason is None:
                self._wake.wait()
            return self.stop_reason is not None

    # -- progress -------------------------------------------------------------------------------
    def job_started(self, job: JobSpec) -> None:
        with self._lock:
            self._current, self._step = job, 0
            self._job_active_start = self._active_now()

    def set_enhanced_prompt(self, job_id: str, text: str | None) -> None:
        with self._lock:
            if text:
                self._enhanced[job_id] = text

    def step(self, steps_done: int) -> None:
        with self._lock:
            self._step = steps_done
            if steps_done:
                self._sec_per_step = (self._active_now() - self._job_active_start) / steps_done

    def job_ended(self, outcome: str) -> None:
        """The generating thread is done with the current job: ``generated``, ``failed`` or ``aborted``."""
        with self._lock:
            if outcome == "failed":
                self.failed += 1
            elif outcome == "aborted":
                self.aborted += 1
            if self._current is not None:
                self._enhanced.pop(self._current.job_id, None)
            self._current = None

    def record_persisted(self, success: bool) -> None:
        """The writer's outcome for a generated job (its manifest row is written)."""
        with self._lock:
            if success:
                self.done += 1
            else:
                self.failed += 1

    # -- status ---------------------------------------------------------------------------------
    def remaining(self) -> int:
        with self._lock:
            return len(self._pending)

    def eta_s(self) -> float | None:
        """Seconds left at the last measured step rate; None before any step was measured."""
        with self._lock:
            if self._sec_per_step is None:
                return None
            steps = sum(job.settings["steps"] for job in self._pending)
            if self._current is not None:
                steps += self._current.settings["steps"] - self._step
            return steps * self._sec_per_step

    def snapshot(self) -> dict[str, Any]:
        """Everything ``vgen-ctl status`` shows, as plain JSON-able values."""
        with self._lock:
            current = None
            if self._current is not None:
                job = self._current
                current = {
                    "job_id": job.job_id, "index": job.index, "prompt": job.prompt,
                    "enhanced_prompt": self._enhanced.get(job.job_id),
                    "step": self._step, "total_steps": job.settings["steps"],
                    "elapsed_s": round(self._active_now() - self._job_active_start, 3),
                }
            eta = self.eta_s()
            return {
                "paused": self.paused,
                "stopping": self.stop_reason,
                "in_progress": current is not None,
                "finished": self._closed,
                "current": current,
                "elapsed_s": round(time.monotonic() - self._started, 3),
                "eta_s": None if eta is None else round(eta, 1),
                "counts": {"done": self.done, "failed": self.failed, "aborted": self.aborted,
                           "skipped": self.skipped, "remaining": len(self._pending)},
                "pending": [{"index": job.index, "job_id": job.job_id, "prompt": job.prompt}
                            for job in list(self._pending)[:PENDING_IN_STATUS]],
            }
