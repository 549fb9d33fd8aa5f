"""Measure what a speed knob does to a pipeline: transformer work actually done, and fidelity (PSNR).

Work is counted as calls of the ``nn.Linear`` layers inside the transformer's blocks (torch forward
hooks): a step cache that skips a block, an attention module or a feed-forward skips their linear
layers, whichever level it hooks. Used by the tests and ``scripts/bench_speed.py``.
"""

from __future__ import annotations

import math
from typing import Any


class BlockWorkCounter:
    """Counts linear-layer calls inside ``transformer.blocks`` (and ``transformer_2`` when present)."""

    def __init__(self, pipe: Any) -> None:
        import torch

        self.calls = 0
        self._handles = []
        for name in ("transformer", "transformer_2"):
            transformer = getattr(pipe, name, None)
            if transformer is None:
                continue
            for module in transformer.blocks.modules():
                if isinstance(module, torch.nn.Linear):
                    self._handles.append(module.register_forward_hook(self._count))

    def _count(self, *_args) -> None:
        self.calls += 1

    def take(self) -> int:
        """Calls since the last ``take`` (then restart counting)."""
        calls, self.calls = self.calls, 0
        return calls

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def psnr(reference, candidate) -> float:
    """Peak signal-to-noise ratio in dB of two float arrays in [0, 1] (``inf`` when identical)."""
    import numpy as np

    mse = float(np.mean((np.asarray(reference, dtype=np.float64) - np.asarray(candidate, dtype=np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
