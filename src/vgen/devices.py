"""Resolve ``runtime.device`` / ``runtime.dtype`` / ``runtime.offload`` to concrete torch values."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Mapping

from vgen.errors import ConfigError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DTYPES = ("auto", "float32", "bfloat16", "float16")
OFFLOAD_MODES = ("none", "model", "sequential", "group")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    device: str
    dtype: str
    offload: str
    vae_tiling: bool


def validate_runtime(runtime_cfg) -> None:
    """Check the runtime strings without importing torch (dry runs and config tests call this)."""
    if not DEVICE_PATTERN.match(runtime_cfg.device):
        raise ConfigError(f"runtime.device: expected auto, cpu, cuda or cuda:N, got {runtime_cfg.device!r}")
    if runtime_cfg.dtype not in DTYPES:
        raise ConfigError(f"runtime.dtype: expected one of {', '.join(DTYPES)}, got {runtime_cfg.dtype!r}")
    if runtime_cfg.threads < 0:
        raise ConfigError(f"runtime.threads: expected 0 (torch's default) or a count > 0, got {runtime_cfg.threads}")
    if runtime_cfg.offload not in OFFLOAD_MODES:
        raise ConfigError(f"runtime.offload: expected one of {', '.join(OFFLOAD_MODES)}, got {runtime_cfg.offload!r}")


def thread_count(threads: int, environ: Mapping[str, str] = os.environ) -> int:
    """torch's thread count for ``runtime.threads``: 0 (auto) is the CPUs SLURM gave this task
    (``SLURM_CPUS_PER_TASK``, the launcher's ``cpus_per_task``; torch alone would use every core of
    the node), or torch's own default (0) outside SLURM."""
    allotted = environ.get("SLURM_CPUS_PER_TASK", "")
    return threads or (int(allotted) if allotted.isdigit() else 0)


def resolve_device(device: str) -> str:
    """``runtime.device`` with ``auto`` resolved: cuda if torch sees a CUDA device, else cpu (imports torch)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_placement(runtime_cfg) -> Placement:
    """auto device = cuda if available else cpu; auto dtype = bfloat16 on cuda (float16 without bf16), float32 on cpu.

    Also applies ``runtime.threads`` (torch's intra-op thread count), which is process-wide.
    """
    import torch

    validate_runtime(runtime_cfg)
    threads = thread_count(runtime_cfg.threads)
    if threads:
        torch.set_num_threads(threads)
        log.info("torch threads: %d%s", threads, "" if runtime_cfg.threads else " (SLURM_CPUS_PER_TASK)")
    device = resolve_device(runtime_cfg.device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"runtime.device: {device!r} requested but no CUDA device is available (use runtime.device=cpu)")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"runtime.device: {device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    dtype = runtime_cfg.dtype
    if dtype == "auto":
        if device == "cpu":
            dtype = "float32"
        else:
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if runtime_cfg.offload != "none" and device == "cpu":
        raise ConfigError(f"runtime.offload={runtime_cfg.offload} moves weights to an accelerator on demand; it needs a CUDA device")
    return Placement(device=device, dtype=dtype, offload=runtime_cfg.offload, vae_tiling=bool(runtime_cfg.vae_tiling))
