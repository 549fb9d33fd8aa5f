"""One GPU per process on one node (``hydra/launcher=local_gpus``), without SLURM.

submitit's local executor starts every sweep point at once as its own process and gives each the
same ``CUDA_VISIBLE_DEVICES`` (its first ``gpus_per_node`` GPUs). A vgen process drives one device,
so each sweep point narrows that list to one GPU, chosen by its point number: with
``queue.num_shards=N 'queue.shard=range(0,N)'`` and N GPUs, shard I runs on GPU I and keeps its
model resident there. Runs before torch sets up CUDA (it reads the variable then).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from typing import MutableMapping

log = logging.getLogger(__name__)


def gpu_count() -> int:
    """NVIDIA GPUs on this machine per ``nvidia-smi -L`` (0 without one); no torch import."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def pin_one_gpu(point_number: int, env: MutableMapping[str, str] = os.environ) -> str | None:
    """In a submitit local process that sees several GPUs, keep only GPU ``point_number mod count``."""
    visible = [device.strip() for device in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if device.strip()]
    if env.get("SUBMITIT_EXECUTOR") != "local" or len(visible) < 2:
        return None
    env["CUDA_VISIBLE_DEVICES"] = visible[point_number % len(visible)]
    log.info("Sweep point %d pinned to GPU %s (CUDA_VISIBLE_DEVICES=%s of %s)", point_number,
             env["CUDA_VISIBLE_DEVICES"], env["CUDA_VISIBLE_DEVICES"], ",".join(visible))
    return env["CUDA_VISIBLE_DEVICES"]
