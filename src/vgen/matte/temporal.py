"""Temporal stabilisation of an alpha matte: a per-pixel recursive filter guided by frame difference.

Each output alpha is ``w * previous_output + (1 - w) * alpha``, with ``w = strength`` where the
frame did not change and ``w -> 0`` where it changed by ``motion_threshold`` (mean absolute RGB
difference on [0, 1], averaged over a small window) or more: still regions stop flickering, while
moving edges follow the current frame instead of smearing.
"""

from __future__ import annotations

import numpy as np

from vgen.errors import ConfigError
from vgen.matte.guided import box_mean

MOTION_RADIUS = 2  # px: the frame difference is averaged over a 5x5 window (sensor noise is not motion)


def check_temporal(strength, motion_threshold) -> None:
    """``temporal_strength`` in [0, 1) (0 = off), ``temporal_motion_threshold`` > 0."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength < 1:
        raise ConfigError(f"temporal_strength: expected a number in [0, 1) (0 = off), got {strength!r}")
    if isinstance(motion_threshold, bool) or not isinstance(motion_threshold, (int, float)) or not motion_threshold > 0:
        raise ConfigError(f"temporal_motion_threshold: expected a number > 0, got {motion_threshold!r}")


def stabilize(alpha: np.ndarray, frames: np.ndarray, strength: float, motion_threshold: float) -> np.ndarray:
    """The filtered (F, H, W) float32 alpha of uint8 RGB ``frames`` (F, H, W, 3); ``strength=0``
    or a single frame returns ``alpha`` unchanged."""
    if strength == 0 or alpha.shape[0] < 2:
        return alpha
    out = np.empty(alpha.shape, dtype=np.float32)
    out[0] = alpha[0]
    previous = frames[0].astype(np.float32)
    for index in range(1, alpha.shape[0]):
        current = frames[index].astype(np.float32)
        motion = box_mean(np.abs(current - previous).mean(axis=-1) / 255.0, MOTION_RADIUS)
        weight = (strength * np.clip(1.0 - motion / motion_threshold, 0.0, 1.0)).astype(np.float32)
        out[index] = weight * out[index - 1] + (1.0 - weight) * alpha[index]
        previous = current
    return out
