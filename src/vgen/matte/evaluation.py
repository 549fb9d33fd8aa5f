"""Matte quality on a synthetic clip with known ground truth: flicker, edge IoU, background ghost.

``scripts/matte_stability.py`` prints these before/after the temporal filter and the guided
backend's sure regions; the tests assert their direction on the same clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vgen.matte.trimap import dilate, erode

EDGE_BAND = 5  # px kernel: the band around the true edge where edge IoU is measured


@dataclass(frozen=True)
class SyntheticClip:
    frames: np.ndarray  # (F, H, W, 3) uint8: a disc moving over a static textured background, sensor noise
    truth: np.ndarray  # (F, H, W) bool: the disc
    masks: np.ndarray  # (F, H, W) float32: the truth blurred, with per-frame noise (a rough segmenter)


def synthetic_clip(frames: int = 24, height: int = 96, width: int = 144, seed: int = 0) -> SyntheticClip:
    """A textured disc crossing a static checkerboard (2 px/frame right, 1 px/frame down), each frame
    with its own sensor noise; the masks are the disc blurred with independent Gaussian noise."""
    from vgen.matte.guided import box_mean

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    checker = (((yy // 12) + (xx // 12)) % 2).astype(np.float32)
    background = np.stack([70 + 90 * checker, 100 + 40 * np.sin(xx / 7.0), 150 - 70 * checker], axis=-1)
    radius = min(height, width) // 4
    truth = np.empty((frames, height, width), dtype=bool)
    clip = np.empty((frames, height, width, 3), dtype=np.float32)
    for index in range(frames):
        cy, cx = height // 3 + index, width // 4 + 2 * index
        truth[index] = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        subject = np.stack([230 + 0 * xx, 120 + 80 * np.sin((xx - cx) / 3.0), 40 + 0 * xx], axis=-1)
        clip[index] = np.where(truth[index][..., None], subject, background)
    clip += rng.normal(0, 2.0, clip.shape)
    masks = box_mean(truth.astype(np.float64), 1) + rng.normal(0, 0.15, truth.shape)
    return SyntheticClip(
        frames=np.clip(np.rint(clip), 0, 255).astype(np.uint8),
        truth=truth,
        masks=np.clip(masks, 0, 1).astype(np.float32),
    )


def still_region(truth: np.ndarray) -> np.ndarray:
    """(F-1, H, W): pixels whose ground truth is the same in both frames of each pair, away from the
    subject's edge (the band where the right alpha really changes)."""
    near_edge = dilate(truth, EDGE_BAND) & ~erode(truth, EDGE_BAND)
    return (truth[1:] == truth[:-1]) & ~near_edge[1:] & ~near_edge[:-1]


def flicker(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute alpha change between consecutive frames over :func:`still_region`."""
    return float(np.abs(np.diff(alpha, axis=0))[still_region(truth)].mean())


def edge_iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Soft IoU (sum of minima over sum of maxima) of the alpha with the truth inside the band
    around the true edge, where a smeared or lagging matte goes wrong."""
    band = dilate(truth, EDGE_BAND) & ~erode(truth, EDGE_BAND)
    predicted, actual = alpha[band], truth[band].astype(np.float32)
    return float(np.minimum(predicted, actual).sum() / np.maximum(predicted, actual).sum())


def background_ghost(alpha: np.ndarray, truth: np.ndarray) -> float:
    """Mean alpha over the true background away from the edge: the mask's noise floor leaking in."""
    return float(alpha[~dilate(truth, EDGE_BAND)].mean())
