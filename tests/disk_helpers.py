"""A real full disk for tests: a small tmpfs mounted for one test (needs root), filled to the last byte."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def mounted_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """Mount a ``size`` tmpfs on ``path`` for the block; skip the test when mounting is not permitted."""
    if shutil.which("mount") is None:
        pytest.skip("full-disk test: no mount command here")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"full-disk test: cannot mount a tmpfs on {path} (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        # -l: a child that still holds a file there must not turn teardown into an error
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill_to_the_last_byte(path: Path, byte: bytes = b"\0") -> int:
    """Append ``byte`` to ``path`` until the disk says ENOSPC; returns how many bytes were added."""
    added, chunk = 0, 1 << 20
    with open(path, "ab", buffering=0) as handle:
        while chunk:
            try:
                added += handle.write(byte * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    return added


def fill_disk(directory: Path, *top_up: Path) -> None:
    """No byte left under ``directory``: a filler file takes the free blocks, then each ``top_up``
    file (a log being appended to) takes the rest of its last block."""
    fill_to_the_last_byte(directory / "filler")
    for path in top_up:
        fill_to_the_last_byte(path, b"\n")
    assert os.statvfs(directory).f_bavail == 0
