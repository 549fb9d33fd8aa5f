"""Persistence off the generating thread: job N is encoded while job N+1 denoises.

Tasks run on one worker thread in submission order, so manifest rows stay in job order. The queue
is bounded: when ``max_pending`` tasks wait, ``submit`` blocks (back-pressure keeps memory bounded).
With ``enabled=False`` tasks run inline, which is the reference the benchmark compares against.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)
_STOP = object()


class BackgroundWriter:
    def __init__(self, *, enabled: bool = True, max_pending: int = 2) -> None:
        self.enabled = enabled
        self.blocked_s = 0.0  # time the submitting (generating) thread waited for a free slot
        self.busy_s = 0.0  # time spent running tasks
        self._tasks: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self._thread: threading.Thread | None = None
        self._closed = False
        if enabled:
            self._thread = threading.Thread(target=self._work, name="vgen-writer", daemon=True)
            self._thread.start()

    def submit(self, task: Callable[[], None]) -> None:
        if self._closed:  # nothing would run it: the write would be lost silently
            raise RuntimeError("BackgroundWriter.submit after close()")
        if not self.enabled:
            self._run(task)
            return
        started = time.perf_counter()
        self._tasks.put(task)
        self.blocked_s += time.perf_counter() - started

    def close(self) -> None:
        """Drain, then stop the worker. The process must never exit with writes pending."""
        self._closed = True
        if self._thread is None:
            return
        self._tasks.put(_STOP)
        self._thread.join()
        self._thread = None

    def _work(self) -> None:
        while (task := self._tasks.get()) is not _STOP:
            try:
                self._run(task)
            except BaseException:  # e.g. SystemExit from a library: the worker must outlive it, or close() hangs
                log.exception("Background write task aborted")

    def _run(self, task: Callable[[], None]) -> None:
        started = time.perf_counter()
        try:
            task()
        except Exception:  # a task records its own failures; this only guards the worker thread
            log.exception("Background write task failed")
        finally:
            self.busy_s += time.perf_counter() - started
