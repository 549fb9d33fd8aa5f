"""Which of the queue's jobs this process runs: ``queue.only_jobs`` (a job_id list) then its shard.

``queue.num_shards=N queue.shard=I`` splits the expanded queue into N parts balanced by estimated
cost (frames x height x width x steps; longest-processing-time first). The partition depends only on
the expanded queue, so a resumed or requeued shard gets the same jobs, and job ids, job indexes and
artifact names are those of the whole queue: they do not depend on N. ``queue.shard=auto`` takes
I and N from a SLURM array (``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``) or a torchrun-style
launcher (``LOCAL_RANK``/``WORLD_SIZE``).
"""

from __future__ import annotations

import heapq
import math
import os
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

from vgen.errors import ConfigError
from vgen.jobs.expand import JobSpec, read_text_file


def job_cost(settings: Mapping[str, Any]) -> int:
    """Estimated work of a job: frames x height x width x denoising steps (an audio job has no size or frames)."""
    shape = (int(settings.get(key, 1)) for key in ("num_frames", "height", "width"))
    return math.prod(shape) * int(settings["steps"])


def partition(jobs: Sequence[JobSpec], num_shards: int) -> list[list[JobSpec]]:
    """Cost-balanced shards; costliest job first onto the least loaded shard (ties: job_id, shard number).

    Each shard keeps queue order. Deterministic: every shard of a sweep computes the same partition.
    """
    loads = [(0, shard) for shard in range(num_shards)]
    shards: list[list[JobSpec]] = [[] for _ in range(num_shards)]
    for job in sorted(jobs, key=lambda job: (-job_cost(job.settings), job.job_id)):
        load, shard = heapq.heappop(loads)
        shards[shard].append(job)
        heapq.heappush(loads, (load + job_cost(job.settings), shard))
    return [sorted(shard, key=lambda job: job.index) for shard in shards]


AUTO_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP",
             "LOCAL_RANK", "WORLD_SIZE")


class Shard(NamedTuple):
    index: int
    count: int


def resolve_shard(shard: Any, num_shards: int, env: Mapping[str, str] = os.environ) -> Shard:
    """``queue.shard``/``queue.num_shards`` checked; ``auto`` read from the SLURM array or LOCAL_RANK/WORLD_SIZE."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ConfigError(f"queue.num_shards: expected an integer >= 1, got {num_shards!r}")
    if shard == "auto":
        if env.get("SLURM_ARRAY_TASK_ID") and env.get("SLURM_ARRAY_TASK_COUNT"):
            offset = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN") or 0)
            step = int(env.get("SLURM_ARRAY_TASK_STEP") or 1)  # sbatch --array=0-12:4
            index = offset // step if step > 0 and offset % step == 0 else -1
            count, source = int(env["SLURM_ARRAY_TASK_COUNT"]), "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
        elif env.get("LOCAL_RANK") and env.get("WORLD_SIZE"):
            index, count, source = int(env["LOCAL_RANK"]), int(env["WORLD_SIZE"]), "LOCAL_RANK/WORLD_SIZE"
        else:
            raise ConfigError("queue.shard=auto: neither SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT nor "
                              "LOCAL_RANK/WORLD_SIZE is set; give the shard number (queue.shard=I)")
        if num_shards not in (1, count):
            raise ConfigError(f"queue.num_shards={num_shards} but {source} says {count} shards")
        if not 0 <= index < count:
            given = ", ".join(f"{name}={env[name]}" for name in AUTO_VARS if env.get(name))
            raise ConfigError(f"queue.shard=auto: {given} is not one of shards 0..{count - 1} (a SLURM array's "
                              "indices must be evenly spaced: MIN, MIN+STEP, ...); or give queue.shard=I")
        return Shard(index, count)
    if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < num_shards:
        raise ConfigError(f"queue.shard: expected 0..{num_shards - 1} (queue.num_shards={num_shards}) or auto, "
                          f"got {shard!r}")
    return Shard(shard, num_shards)


def read_job_filter(path: str | os.PathLike) -> set[str]:
    """The job ids of a ``queue.only_jobs`` file: one a line, blank lines and ``#`` comments ignored."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"queue.only_jobs: file not found: {path}")
    lines = (line.strip() for line in read_text_file(path, "queue.only_jobs").splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def filter_jobs(jobs: Sequence[JobSpec], only_jobs: str | None) -> list[JobSpec]:
    """The jobs listed in ``queue.only_jobs`` (all jobs when unset); an id not in the queue is a ConfigError."""
    if not only_jobs:
        return list(jobs)
    wanted = read_job_filter(only_jobs)
    unknown = wanted - {job.job_id for job in jobs}
    if unknown:
        raise ConfigError(f"queue.only_jobs: {len(unknown)} job id(s) of {only_jobs} are not in this queue "
                          f"(e.g. {sorted(unknown)[0]}): run it with the queue it was written for")
    return [job for job in jobs if job.job_id in wanted]


def select_jobs(jobs: Sequence[JobSpec], queue_cfg: Any, env: Mapping[str, str] = os.environ) -> list[JobSpec]:
    """This process's jobs: the ``only_jobs`` filter, then its shard of what is left."""
    shard = resolve_shard(queue_cfg.shard, queue_cfg.num_shards, env)
    selected = filter_jobs(jobs, queue_cfg.only_jobs)
    return selected if shard.count == 1 else partition(selected, shard.count)[shard.index]


def shard_line(jobs: Sequence[JobSpec], queue_cfg: Any, env: Mapping[str, str] = os.environ) -> str | None:
    """The dry run's line about this shard (None when the queue is not sharded)."""
    shard = resolve_shard(queue_cfg.shard, queue_cfg.num_shards, env)
    if shard.count == 1:
        return None
    cost = sum(job_cost(job.settings) for job in jobs)
    return (f"shard: {shard.index} of {shard.count}: {len(jobs)} job(s), estimated cost {cost:,} "
            "(frames x height x width x steps)")
