"""Turn frames + alpha into the matting outputs (all uint8, ready for the media writers)."""

from __future__ import annotations

import numpy as np

GREEN = np.array([0, 255, 0], dtype=np.float32)


def apply_target(alpha: np.ndarray, target: str) -> np.ndarray:
    """``target="background"`` keeps everything but the subject, i.e. inverts the alpha."""
    return 1.0 - alpha if target == "background" else alpha


def foreground_frames(frames: np.ndarray, alpha: np.ndarray, mask_type: str = "alpha") -> np.ndarray:
    """(F, H, W, 3) frames composited over black (``mask_type="alpha"``) or pure green
    (``"greenscreen"``), weighted by ``alpha`` (F, H, W) in [0, 1]."""
    weight = alpha[..., None].astype(np.float32)
    backdrop = GREEN if mask_type == "greenscreen" else np.zeros(3, dtype=np.float32)
    composite = frames.astype(np.float32) * weight + backdrop * (1.0 - weight)
    return _to_uint8(composite)


def rgba_frames(frames: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(F, H, W, 4) straight (non-premultiplied) RGBA."""
    return np.concatenate([frames, _to_uint8(alpha * 255.0)[..., None]], axis=-1)


def alpha_frames(alpha: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) gray frames of the alpha, for writing an alpha matte as an ordinary video."""
    return np.repeat(_to_uint8(alpha * 255.0)[..., None], 3, axis=-1)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
