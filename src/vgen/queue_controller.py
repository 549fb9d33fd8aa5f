"""QueueController: drain the jobs sequentially on one device, persisting in the background."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from vgen.background_writer import BackgroundWriter
from vgen.errors import VgenError
from vgen.jobs import JobSpec
from vgen.production import ProductionManager
from vgen.progress import QueueProgress
from vgen.runtime import GenerationResult

log = logging.getLogger(__name__)


@dataclass
class QueueSummary:
    done: int = 0
    failed: int = 0
    aborted: int = 0
    skipped: int = 0
    total: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.aborted == 0


class QueueController:
    def __init__(self, manager: ProductionManager, jobs: Sequence[JobSpec]) -> None:
        self.manager = manager
        self.pending: list[JobSpec] = list(jobs)
        self.summary = QueueSummary(total=len(self.pending))
        self._lock = threading.Lock()
        output_cfg = manager.cfg.output
        self.writer = BackgroundWriter(enabled=output_cfg.background_writer, max_pending=output_cfg.writer_queue_size)
        self.progress = QueueProgress(len(self.pending), show_bar=manager.cfg.runtime.progress)

    def run(self) -> QueueSummary:
        self._media = self.manager.media_context()
        try:
            while self.pending:
                job = self.pending.pop(0)
                if not self._run_job(job) and self.manager.cfg.queue.on_error == "stop":
                    log.error("queue.on_error=stop: %d job(s) not run", len(self.pending))
                    self.pending.clear()
        finally:
            self.writer.close()
        log.info("Queue finished: %d done, %d failed, %d aborted (of %d)", self.summary.done,
                 self.summary.failed, self.summary.aborted, self.summary.total)
        return self.summary

    def _run_job(self, job: JobSpec) -> bool:
        """Generate ``job`` and hand it to the writer; False when generation failed."""
        started = time.perf_counter()
        self.progress.job_started(job.index, job.job_id, job.prompt, job.settings["steps"])
        hooks = [lambda pipe, step, timestep, kwargs: self.progress.step(step)]
        try:
            result = self.manager.run_generation(job, step_hooks=hooks)
        except Exception as exc:
            if not isinstance(exc, VgenError):
                log.exception("Job %s failed", job.job_id)
            else:
                log.error("Job %s failed: %s", job.job_id, exc)
            self.writer.submit(lambda error=exc: self._record_failure(job, error))
            self.progress.job_finished(job.index, "failed", time.perf_counter() - started)
            return False
        self.writer.submit(lambda: self._persist(result))
        self.progress.job_finished(job.index, "generated", time.perf_counter() - started)
        return True

    def _persist(self, result: GenerationResult) -> None:
        row = self.manager.persist(result, self._media)
        with self._lock:
            if row["status"] == "success":
                self.summary.done += 1
            else:
                self.summary.failed += 1

    def _record_failure(self, job: JobSpec, error: BaseException) -> None:
        self.manager.record_failure(job, error)
        with self._lock:
            self.summary.failed += 1
