"""``runtime.attention``: which attention kernel the transformer uses (diffusers ``set_attention_backend``).

``default`` leaves diffusers' own choice (torch's scaled_dot_product_attention); every other value is
a diffusers backend name. A backend is a per-module processor setting, not part of the loaded
weights: it is (re)applied before every job, so a sweep over it keeps the resident pipeline. The
package a backend needs, and for a CUDA-only backend a CUDA device (``runtime.device=auto`` resolved
as the runtime does), are checked with the config, before any model loads.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from vgen.errors import ConfigError


@dataclass(frozen=True)
class AttentionBackend:
    module: str | None  # the import that must exist (None: built into torch)
    pip: str | None
    cuda_only: bool


# diffusers' AttentionBackendName values that run from an installed package. The *_hub backends are
# left out on purpose: they download kernels at run time, which vgen never does.
BACKENDS: dict[str, AttentionBackend] = {
    "native": AttentionBackend(None, None, False),
    "_native_math": AttentionBackend(None, None, False),
    "_native_flash": AttentionBackend(None, None, False),  # torch has a CPU flash kernel too
    "_native_efficient": AttentionBackend(None, None, True),
    "_native_cudnn": AttentionBackend(None, None, True),
    "flex": AttentionBackend(None, None, False),
    "flash": AttentionBackend("flash_attn", "pip install 'vgen[flash-attn]' --no-build-isolation", True),
    "flash_varlen": AttentionBackend("flash_attn", "pip install 'vgen[flash-attn]' --no-build-isolation", True),
    "sage": AttentionBackend("sageattention", "pip install 'vgen[sageattention]'", True),
    "sage_varlen": AttentionBackend("sageattention", "pip install 'vgen[sageattention]'", True),
    "xformers": AttentionBackend("xformers", "pip install 'vgen[xformers]'", True),
}
DEFAULT = "default"


def validate_attention(runtime_cfg: Any, *, resolve_auto: bool = False) -> str:
    """The backend name, checked: known, its package importable, and a CUDA device when it needs one.

    With ``resolve_auto``, ``runtime.device=auto`` is resolved as the runtime does (``vgen.devices``),
    which imports torch, and only for a CUDA-only backend: a real run asks, a dry run does not.
    """
    name = runtime_cfg.attention
    if name == DEFAULT:
        return name
    backend = BACKENDS.get(name)
    if backend is None:
        raise ConfigError(f"runtime.attention: expected {DEFAULT} or one of {', '.join(BACKENDS)}, got {name!r}")
    missing = ""
    if backend.module is not None and importlib.util.find_spec(backend.module) is None:
        missing = f"the {backend.module!r} package, which is not installed: {backend.pip}"
    if backend.cuda_only and (reason := _no_cuda(runtime_cfg.device, resolve_auto)):
        raise ConfigError(f"runtime.attention={name} runs on CUDA only, but {reason}"
                          + (f"; it also needs {missing}" if missing else ""))
    if missing:
        raise ConfigError(f"runtime.attention={name} needs {missing}")
    return name


def _no_cuda(device: str, resolve_auto: bool) -> str | None:
    """Why ``runtime.device`` gives no CUDA device, or None when it does (or, unresolved, may)."""
    if device == "cpu":
        return "runtime.device=cpu"
    if device == "auto" and resolve_auto:
        from vgen.devices import resolve_device

        if resolve_device(device) == "cpu":
            return "runtime.device=auto found no CUDA device here (torch.cuda.is_available() is False)"
    return None


def apply_attention_backend(pipe: Any, runtime_cfg: Any) -> None:
    """Set (or, for ``default``, reset) the backend on the pipeline's transformer(s)."""
    name = validate_attention(runtime_cfg)
    if name == DEFAULT:
        # set_attention_backend also sets diffusers' process-wide active backend, which
        # reset_attention_backend leaves alone: restore the environment default (DIFFUSERS_ATTN_BACKEND).
        from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry
        from diffusers.utils.constants import DIFFUSERS_ATTN_BACKEND

        _AttentionBackendRegistry.set_active_backend(AttentionBackendName(DIFFUSERS_ATTN_BACKEND))
    for component in ("transformer", "transformer_2"):
        transformer = getattr(pipe, component, None)
        if transformer is None or not hasattr(transformer, "set_attention_backend"):
            continue
        if name == DEFAULT:
            transformer.reset_attention_backend()
        else:
            transformer.set_attention_backend(name)
