"""Clean stops on signals: Ctrl-C, ``kill``, and SLURM/submitit preemption warnings.

SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 ask the queue to stop at the next denoising step (the job gets
an aborted row, pending writes drain); the run then exits 130 (SIGINT) or 143 (the others). A
second SIGINT exits at once with ``os._exit`` after deleting this process's temp files, so no
half-written file is left behind (finished files only ever appear under a final name by rename).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
# Temp names of vgen.media.writers: ``.{stem}.tmp-{pid}-{hex}{suffix}`` (+ ``.ffmeta``) and staged audio.
_TEMP_PATTERNS = (".*.tmp-{pid}-*", ".vgen-audio-*")


def exit_code_for(signum: int) -> int:
    """Shell convention 128 + signal number; the SLURM warnings count as SIGTERM (143)."""
    return 128 + (signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)


def remove_temp_files(root: str | os.PathLike, pid: int | str = "*") -> int:
    """Delete vgen temp files under ``root`` (of process ``pid``, default any); returns how many."""
    removed = 0
    for pattern in _TEMP_PATTERNS:
        for path in Path(root).rglob(pattern.format(pid=pid)):
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed


class SignalStop:
    """Context manager: while active, stop signals call ``on_stop(signal_name)`` instead of killing.

    Handlers are installed only in the main thread (Python allows nothing else) and the previous
    handlers are restored on exit, so Hydra multirun jobs in one process each get a clean slate.
    When the stop came from a signal that someone else handled before (submitit requeues on its
    preemption signal), that handler is called after restoring, so it still gets its chance.
    """

    def __init__(self, on_stop: Callable[[str], None], *, temp_root: str | os.PathLike) -> None:
        self.on_stop = on_stop
        self.temp_root = Path(temp_root)
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int | None:
        return None if self.received is None else exit_code_for(self.received)

    def __enter__(self) -> "SignalStop":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        else:
            log.debug("Not in the main thread: signal handlers not installed")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        previous = self._previous.get(self.received) if self.received is not None else None
        self._previous = {}
        if self.received is not None:
            remove_temp_files(self.temp_root, os.getpid())
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.received, None)

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            if signum == signal.SIGINT:
                removed = remove_temp_files(self.temp_root, os.getpid())
                log.error("Second SIGINT: exiting now (%d temp file(s) removed)", removed)
                logging.shutdown()
                os._exit(exit_code_for(signum))
            log.warning("%s received while already stopping; still finishing (Ctrl-C again to exit now)", name)
            return
        self.received = signum
        log.warning("%s received: stopping at the next step (Ctrl-C again to exit immediately)", name)
        self.on_stop(name)
