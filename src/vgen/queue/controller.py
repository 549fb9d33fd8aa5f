"""QueueController: drain the jobs sequentially on one device, persisting in the background.

Control commands (pause, resume, abort, clear, enqueue, status) may arrive from any thread (the
control server, a signal handler); they change the :class:`QueueStateTracker`, and the generating
thread acts on them at the next denoising step boundary through its step hook.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping, Sequence

from vgen.queue.background_writer import BackgroundWriter
from vgen.conditioning.validate import validate_job_inputs
from vgen.errors import ConfigError, DiskFullError, JobAborted, VgenError
from vgen.jobs.expand import JobSpec, job_id_for, job_settings
from vgen.production import ProductionManager
from vgen.progress import QueueProgress
from vgen.queue.state import QueueStateTracker
from vgen.runtime import GenerationResult
from vgen.queue.signals import exit_code_for

log = logging.getLogger(__name__)
ABORT = "abort"  # stop reason of a control ``abort``; signal stops use the signal's name
EXIT_ABORTED = 3  # the queue was stopped by ``vgen-ctl abort``
DISK_FULL = "disk full"  # stop reason when a write found no space left (exit 1: jobs failed)


@dataclass
class QueueSummary:
    done: int = 0
    failed: int = 0
    aborted: int = 0
    skipped: int = 0
    not_run: int = 0  # jobs left pending because the queue was stopped
    stop_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.aborted == 0 and self.stop_reason is None

    @property
    def exit_code(self) -> int:
        """0 all succeeded, 1 a job failed (or the disk is full), 3 aborted by control, 130/143 stopped by a signal."""
        if self.stop_reason == ABORT:
            return EXIT_ABORTED
        if self.stop_reason not in (None, DISK_FULL):
            return exit_code_for(signal.Signals[self.stop_reason])
        return 0 if self.ok else 1


class QueueController:
    def __init__(self, manager: ProductionManager, jobs: Sequence[JobSpec], *, skipped: int = 0) -> None:
        self.manager = manager
        self.state = QueueStateTracker(jobs, skipped=skipped)
        output_cfg = manager.cfg.output
        self.writer = BackgroundWriter(enabled=output_cfg.background_writer, max_pending=output_cfg.writer_queue_size)
        self.progress = QueueProgress(show_bar=manager.cfg.runtime.progress)
        self._disk_full_reported = False

    # -- commands (any thread) ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self.state.snapshot()

    def pause(self) -> None:
        self.state.pause()
        log.info("Queue paused (takes effect at the next denoising step)")

    def resume(self) -> None:
        self.state.resume()
        log.info("Queue resumed")

    def abort(self, reason: str = ABORT) -> None:
        """Stop the current job at its next step (aborted row) and end the queue."""
        self.state.request_stop(reason)
        log.warning("Queue stopping (%s): the current job ends at its next step", reason)

    def clear(self) -> int:
        count = self.state.clear()
        log.info("Queue cleared: %d pending job(s) dropped", count)
        return count

    def enqueue(self, job_keys: Mapping[str, Any]) -> JobSpec:
        """Validate ``job_keys`` like a queue job and append it; ConfigError names the bad key."""
        if "repeats" in job_keys:
            raise ConfigError("enqueue.job.repeats: not supported here; enqueue the job several times")
        settings, _ = job_settings(job_keys, self.manager.generation_defaults(), "enqueue.job", self.manager.cfg.model)
        job_id = self.state.unique_job_id(job_id_for(settings, 0))
        spec = JobSpec(index=self.state.next_index(), job_id=job_id, settings=settings)
        validate_job_inputs(spec.index, settings, self.manager.cfg.model)  # as the queue's jobs were, before loading
        self.manager.resolve_loras(spec)
        try:
            self.state.add(spec)
        except RuntimeError as exc:
            raise VgenError(str(exc)) from None
        log.info("Enqueued job %d [%s]: %s", spec.index + 1, spec.job_id, spec.prompt[:80])
        return spec

    # -- the drain loop (generating thread) -----------------------------------------------------
    def run(self) -> QueueSummary:
        self._media = self.manager.media_context()
        try:
            while (job := self.state.next_job()) is not None:
                if not self._run_job(job) and self.manager.cfg.queue.on_error == "stop":
                    log.error("queue.on_error=stop: %d job(s) not run", self.state.clear())
        finally:
            self.writer.close()
        state = self.state
        summary = QueueSummary(done=state.done, failed=state.failed, aborted=state.aborted, skipped=state.skipped,
                               not_run=state.remaining(), stop_reason=state.stop_reason)
        log.info("Queue finished: %d done, %d failed, %d aborted, %d skipped, %d not run", summary.done,
                 summary.failed, summary.aborted, summary.skipped, summary.not_run)
        return summary

    def _step_hook(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> None:
        self.state.step(step + 1)
        self.progress.step(step + 1)
        if self.state.checkpoint():
            pipe._interrupt = True  # pipelines that check ``self.interrupt`` skip their remaining steps
            raise JobAborted(f"aborted at step {step + 1} ({self.state.stop_reason})")

    def _run_job(self, job: JobSpec) -> bool:
        """Generate ``job`` and hand it to the writer; False when generation failed or was aborted."""
        started = time.perf_counter()
        self.state.job_started(job)
        self.progress.job_started(job.index, self.state.next_index(), job.job_id, job.prompt, job.settings["steps"])
        try:
            result = self.manager.run_generation(
                job, step_hooks=[self._step_hook], on_prompt_enhanced=self.state.set_enhanced_prompt
            )
        except JobAborted as exc:
            log.warning("Job %s %s", job.job_id, exc)
            timings = {"generate_s": time.perf_counter() - started}
            self.writer.submit(partial(self._record_failure, job, exc, status="aborted", timings=timings))
            return self._finish(job, "aborted", started)
        except Exception as exc:
            if not isinstance(exc, VgenError):
                log.exception("Job %s failed", job.job_id)
            else:
                log.error("Job %s failed: %s", job.job_id, exc)
            self.writer.submit(partial(self._record_failure, job, exc))
            return self._finish(job, "failed", started)
        self.writer.submit(partial(self._persist, result))
        return self._finish(job, "generated", started)

    def _finish(self, job: JobSpec, outcome: str, started: float) -> bool:
        self.state.job_ended(outcome)
        self.progress.job_finished(job.index, self.state.next_index(), outcome, time.perf_counter() - started,
                                   remaining=self.state.remaining(), eta_s=self.state.eta_s())
        return outcome == "generated"

    def _persist(self, result: GenerationResult) -> None:
        try:
            row = self.manager.persist(result, self._media)
        except DiskFullError as exc:
            self.state.record_persisted(False)
            self._stop_on_full_disk(result.job, exc)
            return
        except Exception:  # e.g. the manifest itself cannot be written: the job must not count as done
            log.exception("Job %s: recording its result failed", result.job.job_id)
            self.state.record_persisted(False)
            return
        self.state.record_persisted(row["status"] == "success")

    def _record_failure(self, job: JobSpec, error: BaseException, **fields: Any) -> None:
        try:
            self.manager.record_failure(job, error, **fields)
        except DiskFullError as exc:
            self._stop_on_full_disk(job, exc)

    def _stop_on_full_disk(self, job: JobSpec, exc: DiskFullError) -> None:
        """One error line per job, then stop the queue once: a full disk does not fix itself."""
        log.error("Job %s not saved: %s", job.job_id, exc)
        if self._disk_full_reported:
            return
        self._disk_full_reported = True
        self.state.request_stop(DISK_FULL)
        run_dir = self.manager.run_dir
        log.error("No space left under %s: the queue stops (the current job at its next step). Free space, "
                  "then finish the run with `python -m vgen hydra.run.dir=%s queue.resume=true`", run_dir, run_dir)
