"""The diffusers side of LoRA: load a file into a pipeline as a named adapter, set weights, disable.

Every failure raises :class:`VgenError` naming the file, so the runner can fail just that job.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

from vgen.errors import VgenError
from vgen.lora.misfit import explain_misfit
from vgen.lora.resolution import ResolvedLoras


def _has_second_expert(pipe: Any) -> bool:
    """Wan 2.2 pipelines carry ``transformer_2`` (the low-noise expert); LoRAs go into both."""
    return getattr(pipe, "transformer_2", None) is not None


def _adapter_present(pipe: Any, adapter_name: str) -> bool:
    return any(adapter_name in names for names in pipe.get_list_adapters().values())


def load_adapter(pipe: Any, path: Path, adapter_name: str, *, hotswap: bool = False) -> None:
    """Load ``path`` into ``pipe`` as ``adapter_name`` (with ``hotswap``: into the existing adapter of that
    name, in place); on failure remove any partial adapter."""
    swap = {"hotswap": True} if hotswap else {}
    targets = [swap] + ([{**swap, "load_into_transformer_2": True}] if _has_second_expert(pipe) else [])
    try:
        with warnings.catch_warnings():  # peft warns on every adapter after the first: expected here
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            for extra in targets:
                pipe.load_lora_weights(str(path), adapter_name=adapter_name, **extra)
    except Exception as error:  # diffusers/peft/safetensors raise many types for a bad file
        if _adapter_present(pipe, adapter_name):
            pipe.delete_adapters([adapter_name])
        reason = explain_misfit(pipe, path, error)
        raise VgenError(f"LoRA file {path}: cannot load it into {type(pipe).__name__}: {reason}") from error
    if not _adapter_present(pipe, adapter_name):
        reason = explain_misfit(pipe, path, None)
        raise VgenError(f"LoRA file {path}: cannot load it into {type(pipe).__name__}: {reason}")


def set_weights(pipe: Any, resolved: ResolvedLoras, weights: list[float], *, enable: bool = False) -> None:
    """Activate exactly the adapters of ``resolved`` with ``weights`` (other loaded adapters go inactive)."""
    try:
        if enable:
            pipe.enable_lora()
        pipe.set_adapters(resolved.adapter_names, adapter_weights=weights)
    except Exception as error:
        files = ", ".join(str(entry.path) for entry in resolved.entries)
        raise VgenError(f"LoRA file(s) {files}: cannot set weights {weights} ({error})") from error


def disable(pipe: Any) -> None:
    pipe.disable_lora()


def delete(pipe: Any, adapter_names: list[str]) -> None:
    present = [name for name in adapter_names if _adapter_present(pipe, name)]
    if present:
        pipe.delete_adapters(present)


def expert_phase_starts(pipe: Any, num_steps: int) -> list[int]:
    """First step of each denoising phase: ``[0, switch]`` for Wan 2.2 two-expert pipelines, else ``[0]``.

    Mirrors WanPipeline: a step runs ``transformer_2`` once its timestep is below
    ``boundary_ratio * num_train_timesteps``. Pass the result as ``phase_starts`` to ``resolve_job``.
    """
    ratio = getattr(pipe, "config", {}).get("boundary_ratio")
    if ratio is None or not _has_second_expert(pipe):
        return [0]
    scheduler = copy.deepcopy(pipe.scheduler)
    scheduler.set_timesteps(num_steps)
    boundary = ratio * scheduler.config.num_train_timesteps
    switch = next((index for index, t in enumerate(scheduler.timesteps) if t < boundary), num_steps)
    return [0, switch]
