"""One log file per attempt of a requeued SLURM task (submitit), listed in the sweep summary.

submitit opens a task's ``stdout``/``stderr`` files in append mode (``.submitit/<job>/<job>_<task>_log.out``
and ``.err``), so a task that is preempted, times out and is requeued (or requeued by hand with
``scontrol requeue``) writes every attempt into the same two files, one after the other. Each attempt
notes where it starts: its SLURM restart count and the files' sizes when it starts (:func:`this_attempt`,
kept in the point's record). When the summary is written, the files are cut at those offsets into
``<run dir>/slurm_logs/attempt-<N>.out`` and ``.err`` (:func:`split_attempt_logs`), so the log of the
attempt that was stopped is not buried in the next one's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vgen.rundir.manifest import utc_timestamp

ATTEMPT_LOGS_DIR = "slurm_logs"
STREAMS = {"stdout": "out", "stderr": "err"}
# submitit's first line of every attempt in the stdout file; an attempt's start offset is taken a
# little later (when vgen's callback runs), so the cut moves back to this line when it is there.
SUBMITIT_START = b" - Starting with JobEnvironment("


def this_attempt() -> dict[str, Any] | None:
    """This attempt's entry (restart count, SLURM job, log files and their sizes now), or None
    outside a SLURM task started by submitit."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return None
    import submitit

    paths = submitit.JobEnvironment().paths
    attempt: dict[str, Any] = {"restart_count": int(os.environ.get("SLURM_RESTART_COUNT") or 0), "started": utc_timestamp(),
                               "slurm_job_id": submitit.JobEnvironment().job_id}
    for stream in STREAMS:
        path = Path(getattr(paths, stream)).absolute()
        attempt[stream] = str(path)
        attempt[f"{stream}_offset"] = path.stat().st_size if path.is_file() else 0
    return attempt


def attempt_starts(data: bytes, offsets: list[int]) -> list[int]:
    """Where each attempt starts in a log file: the first at 0, the others at the size the file had
    when they started, moved back to submitit's start line of that attempt when it is just before."""
    starts = [0]
    for offset in offsets[1:]:
        after_previous = data.find(b"\n", starts[-1], offset) + 1 or offset  # past the previous attempt's first line
        marker = data.rfind(SUBMITIT_START, after_previous, offset)
        starts.append(offset if marker < 0 else data.rfind(b"\n", after_previous, marker) + 1 or after_previous)
    return starts


def split_attempt_logs(run_dir: Path, attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write each attempt's part of the task's log files into ``run_dir/slurm_logs/attempt-<N>.out|.err``
    (N = 1, 2, ... in the order they ran); returns per attempt ``{attempt, restart_count, slurm_job_id,
    stdout, stderr}`` with paths relative to ``run_dir`` (None for a stream whose file is gone or empty,
    e.g. stderr sent to stdout)."""
    listed = [{"attempt": number, "restart_count": attempt["restart_count"], "slurm_job_id": attempt["slurm_job_id"]}
              for number, attempt in enumerate(attempts, start=1)]
    for stream, suffix in STREAMS.items():
        by_file: dict[str, list[int]] = {}
        for index, attempt in enumerate(attempts):
            by_file.setdefault(attempt[stream], []).append(index)
        for source, indexes in by_file.items():
            data = Path(source).read_bytes() if Path(source).is_file() else b""
            starts = attempt_starts(data, [attempts[index][f"{stream}_offset"] for index in indexes])
            for index, start, end in zip(indexes, starts, [*starts[1:], len(data)]):
                listed[index][stream] = None
                if data[start:end]:
                    target = run_dir / ATTEMPT_LOGS_DIR / f"attempt-{index + 1}.{suffix}"
                    target.parent.mkdir(exist_ok=True)
                    target.write_bytes(data[start:end])
                    listed[index][stream] = target.relative_to(run_dir).as_posix()
    return listed
