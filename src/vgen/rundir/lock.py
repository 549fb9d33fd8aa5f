"""One process per run dir: an exclusive ``flock`` on ``<run_dir>/.vgen.lock``, held for the run's life.

The kernel drops a flock when its process ends, however it ends (SIGKILL included), so a killed
run never blocks its resume; the pid written into the file only names the holder in the error.
Within one process the lock is re-entrant: the entry point takes it before Hydra writes into a run
dir named on the command line, and the run itself takes it again (a no-op then).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vgen.errors import ConfigError

LOCK_NAME = ".vgen.lock"
_held: set[Path] = set()  # run dirs this process holds (resolved paths)


class RunDirBusy(ConfigError):
    """Another live process holds the run dir (exit 2, nothing written)."""


@contextmanager
def hold_run_dir(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold ``run_dir`` exclusively (creating it if needed) or raise :class:`RunDirBusy` naming the holder.

    A dir this call created is removed again on release if nothing but the lock file ended up in it.
    """
    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        yield
        return
    created = _missing_ancestors(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(f"cannot create or write the run dir ({error.filename or run_dir}): {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise RunDirBusy(f"run dir {run_dir} is in use by another vgen process (pid {holder}); wait for it to "
                         f"end or choose another hydra.run.dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held.add(run_dir)
    try:
        yield
    finally:
        _held.discard(run_dir)
        os.ftruncate(fd, 0)
        if created and os.listdir(run_dir) == [LOCK_NAME]:
            os.unlink(run_dir / LOCK_NAME)
            for folder in [run_dir, *run_dir.parents][: len(created)]:
                try:
                    folder.rmdir()
                except OSError:
                    break
        os.close(fd)


def run_dir_holder(run_dir: str | os.PathLike) -> str | None:
    """The pid (as written) of the live process holding ``run_dir``, or None when no process does."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None  # no lock file: no vgen process ever ran there, or it is unreadable
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
    finally:
        os.close(fd)  # closing drops the probe's own shared lock
    return None


def _missing_ancestors(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet (innermost first)."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing
