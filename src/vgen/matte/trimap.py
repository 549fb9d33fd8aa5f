"""Binary morphology (square structuring element, sliding max/min) and trimaps, in pure numpy."""

from __future__ import annotations

import numpy as np

TRIMAP_BACKGROUND = 0
TRIMAP_UNKNOWN = 128
TRIMAP_FOREGROUND = 255


def _sliding_extreme(array: np.ndarray, kernel: int, reduce) -> np.ndarray:
    """Apply ``reduce`` (np.max/np.min) over a kernel x kernel window on the last two axes.

    Edges are replicated, which equals clipping the window at the border (so erosion does not eat
    a mask that touches the frame edge, matching OpenCV's default border).
    """
    if kernel <= 1:
        return array.copy()
    before, after = kernel // 2, kernel - 1 - kernel // 2
    out = array
    for axis in (-2, -1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (before, after)
        padded = np.pad(out, pad, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=axis)
        out = reduce(windows, axis=-1)
    return out


def dilate(mask: np.ndarray, kernel: int) -> np.ndarray:
    """Grey/binary dilation of ``(..., H, W)`` with a ``kernel``-sized square (0 or 1 = no-op)."""
    return _sliding_extreme(mask, kernel, np.max)


def erode(mask: np.ndarray, kernel: int) -> np.ndarray:
    """Grey/binary erosion of ``(..., H, W)`` with a ``kernel``-sized square (0 or 1 = no-op)."""
    return _sliding_extreme(mask, kernel, np.min)


def adjust_mask(mask: np.ndarray, erode_kernel: int, dilate_kernel: int) -> np.ndarray:
    """Shrink then grow a soft mask (the request's erode/dilate options), keeping its dtype."""
    return dilate(erode(mask, erode_kernel), dilate_kernel)


def make_trimap(mask: np.ndarray, erode_kernel: int, dilate_kernel: int, threshold: float = 0.5) -> np.ndarray:
    """uint8 trimap of ``(..., H, W)``: eroded mask = 255 (sure foreground), the band the
    dilation adds around it = 128 (unknown), everything else = 0 (sure background)."""
    binary = mask > threshold
    sure = erode(binary, erode_kernel)
    maybe = dilate(binary, dilate_kernel)
    trimap = np.full(binary.shape, TRIMAP_BACKGROUND, dtype=np.uint8)
    trimap[maybe] = TRIMAP_UNKNOWN
    trimap[sure] = TRIMAP_FOREGROUND
    return trimap


def force_sure_regions(alpha: np.ndarray, mask: np.ndarray, erode_kernel: int, dilate_kernel: int) -> np.ndarray:
    """``alpha`` with the mask's sure regions fixed: 1 inside the mask eroded by ``erode_kernel``,
    0 outside it dilated by ``dilate_kernel`` (0 leaves that side free), so a noisy mask's floor
    cannot leak into the solid foreground or background."""
    binary = mask > 0.5
    alpha = alpha.copy()
    if erode_kernel:
        alpha[erode(binary, erode_kernel)] = 1.0
    if dilate_kernel:
        alpha[~dilate(binary, dilate_kernel)] = 0.0
    return alpha
