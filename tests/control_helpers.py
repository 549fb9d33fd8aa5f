"""A real ``python -m vgen`` subprocess on the tiny model, driven over its real control socket."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from vgen.control.client import send_command
from vgen.control.connection import Connection, control_file, read_connection
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, read_rows

# Smallest frames the tiny Wan accepts, no CFG: a denoising step costs a few tens of ms on CPU.
FAST_JOB_OVERRIDES = ["generation.num_frames=1", "generation.height=16", "generation.width=16",
                      "generation.guidance_scale=1.0", "runtime.progress=false"]


def jobs_override(*jobs: tuple[str, int]) -> str:
    """``queue.jobs=[...]`` for (one-word prompt, steps) pairs."""
    return "queue.jobs=[" + ",".join(f"{{prompt:{prompt},steps:{steps}}}" for prompt, steps in jobs) + "]"


def open_files_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that runs the child under ``ulimit -n limit`` (a common default is 1024)."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


class VgenProcess:
    def __init__(self, run_dir: Path, *overrides: str, control: bool = True, max_open_files: int | None = None) -> None:
        self.run_dir = run_dir
        self.log_path = run_dir.parent / f"{run_dir.name}-{time.monotonic_ns()}.log"
        args = [*FAST_JOB_OVERRIDES, f"hydra.run.dir={run_dir}", *(["control.enabled=true"] if control else []),
                *overrides]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "vgen", *args], stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"},
                                     preexec_fn=open_files_limit(max_open_files) if max_open_files else None)
        self.connection: Connection | None = None

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for_control(self, timeout: float = 180) -> Connection:
        deadline = time.monotonic() + timeout
        while not control_file(self.run_dir).is_file():
            assert self.proc.poll() is None, f"vgen exited {self.proc.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no control.json after {timeout}s:\n{self.output()}"
            time.sleep(0.05)
        self.connection = read_connection(self.run_dir)
        return self.connection

    def ctl(self, cmd: str, **fields: Any) -> dict:
        return send_command(self.connection, cmd, **fields)

    def status(self) -> dict:
        return self.ctl("status")["status"]

    def wait_status(self, predicate: Callable[[dict], bool], timeout: float = 180, poll: float = 0.01) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            assert time.monotonic() < deadline, f"status never matched; last: {status}\n{self.output()}"
            time.sleep(poll)

    def wait_generating(self, index: int, timeout: float = 180) -> dict:
        """Until job ``index`` has finished at least one step."""
        return self.wait_status(lambda s: (s["current"] or {}).get("index") == index and s["current"]["step"] >= 1,
                                timeout)

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def rows(self) -> list[dict]:
        return list(read_rows(self.run_dir / MANIFEST_RELATIVE_PATH))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._log.close()


def final_files(run_dir: Path) -> set[Path]:
    """Every artifact under a final (non-temp) name in the run's videos and images dirs."""
    return {
        path for folder in ("videos", "images") for path in (run_dir / folder).rglob("*")
        if path.is_file() and not path.name.startswith(".")
    }


def temp_files(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob(".*") if ".tmp-" in p.name or p.name.startswith(".vgen-audio-")]
