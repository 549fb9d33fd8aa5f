"""The guided filter (He, Sun, Tang, "Guided Image Filtering", TPAMI 2013) in pure numpy.

Used to turn a hard or noisy mask into a soft alpha whose edges follow the colour edges of the
frame. Box means use cumulative sums, so the cost is independent of the radius.
"""

from __future__ import annotations

import numpy as np


def box_mean(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel of the last two axes, window clipped at
    the borders (each output is divided by the number of pixels actually inside the image)."""
    height, width = array.shape[-2:]
    sums = _box_sum(array.astype(np.float64, copy=False), radius)
    counts = _box_sum(np.ones((height, width)), radius)
    return sums / counts


def _box_sum(array: np.ndarray, radius: int) -> np.ndarray:
    """Window sums along the last two axes from one cumulative sum per axis: the cumsum gets a
    leading zero and is edge-padded by ``radius`` on both sides, so every clipped window is the
    difference of two equally long slices."""
    out = array
    for axis in (-2, -1):
        length = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (1, 0)
        cum = np.pad(np.cumsum(out, axis=axis), pad)
        pad[axis] = (radius, radius)
        cum = np.pad(cum, pad, mode="edge")
        upper = [slice(None)] * out.ndim
        lower = [slice(None)] * out.ndim
        upper[axis] = slice(2 * radius + 1, 2 * radius + 1 + length)
        lower[axis] = slice(0, length)
        out = cum[tuple(upper)] - cum[tuple(lower)]
    return out


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Filter ``source`` (H, W) guided by ``guide`` (H, W) or (H, W, C), both scaled to [0, 1].

    Colour guides use the full per-pixel C x C covariance (the paper's eq. 19), which keeps edges
    between regions of equal brightness but different colour.
    """
    guide = np.asarray(guide, dtype=np.float64)
    if guide.ndim == 2:
        guide = guide[..., None]
    channels = np.moveaxis(guide, -1, 0)  # (C, H, W)
    source = np.asarray(source, dtype=np.float64)

    mean_guide = box_mean(channels, radius)
    mean_source = box_mean(source, radius)
    cov_guide_source = box_mean(channels * source, radius) - mean_guide * mean_source
    outer = channels[:, None] * channels[None, :]
    covariance = box_mean(outer, radius) - mean_guide[:, None] * mean_guide[None, :]

    count = channels.shape[0]
    system = np.moveaxis(covariance, (0, 1), (-2, -1)) + eps * np.eye(count)  # (H, W, C, C)
    rhs = np.moveaxis(cov_guide_source, 0, -1)[..., None]  # (H, W, C, 1)
    coeff = np.moveaxis(np.linalg.solve(system, rhs)[..., 0], -1, 0)  # (C, H, W)
    offset = mean_source - np.sum(coeff * mean_guide, axis=0)

    return np.sum(box_mean(coeff, radius) * channels, axis=0) + box_mean(offset, radius)


def refine_alpha(frame: np.ndarray, mask: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Soft alpha (H, W) float32 in [0, 1] from a uint8 RGB ``frame`` and a [0, 1] ``mask``."""
    alpha = guided_filter(frame.astype(np.float64) / 255.0, mask, radius, eps)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)
