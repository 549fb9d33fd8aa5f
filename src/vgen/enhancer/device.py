"""Device and dtype for the enhancer's models (``enhancer.device``)."""

from __future__ import annotations

from typing import Any


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else is passed through."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def model_dtype(device: str):
    """float32 on CPU (fast and exact there); bfloat16 on accelerators that support it, else float16."""
    import torch

    if device == "cpu":
        return torch.float32
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def release_accelerator_memory() -> None:
    """Return cached CUDA blocks to the driver (no-op without CUDA or before torch was imported)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class OffloadableModel:
    """A model that lives on ``device`` and can be parked on CPU between uses (``offload_after_use``)."""

    def __init__(self, model: Any, device: str):
        self.model = model
        self.device = device
        self._offloaded = False

    def to_device(self) -> None:
        if self._offloaded:
            self.model.to(self.device)
            self._offloaded = False

    def offload(self) -> None:
        """Move the weights to CPU so the video model gets the accelerator's memory."""
        if self.device != "cpu" and not self._offloaded:
            self.model.to("cpu")
            self._offloaded = True
            release_accelerator_memory()
