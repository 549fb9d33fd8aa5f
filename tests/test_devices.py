"""runtime.threads: 0 (auto) follows the CPUs SLURM gave the task, an explicit count wins."""

from __future__ import annotations

from vgen.devices import thread_count


def test_auto_threads_follow_slurm_cpus_per_task():
    assert thread_count(0, {"SLURM_CPUS_PER_TASK": "3"}) == 3


def test_explicit_threads_win_over_slurm():
    assert thread_count(2, {"SLURM_CPUS_PER_TASK": "8"}) == 2


def test_auto_threads_outside_slurm_leave_torch_default():
    assert thread_count(0, {}) == 0
    assert thread_count(0, {"SLURM_CPUS_PER_TASK": ""}) == 0
