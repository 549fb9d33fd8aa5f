"""Stable mattes over time: the temporal filter and the guided backend's sure regions, measured on
the synthetic clip of :mod:`vgen.matte.evaluation` (``scripts/matte_stability.py`` prints the numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from vgen.errors import ConfigError
from vgen.matte.backends import build_backend
from vgen.matte.evaluation import background_ghost, edge_iou, flicker, synthetic_clip
from vgen.matte.request import MatteInputs, MatteRequest
from vgen.matte.schema import MatteAppConfig
from vgen.matte.temporal import check_temporal, stabilize

STRENGTH, MOTION = MatteAppConfig.temporal_strength, MatteAppConfig.temporal_motion_threshold


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip()


def guided(clip, **options) -> np.ndarray:
    inputs = MatteInputs(frames=clip.frames, fps=24.0, masks=clip.masks)
    return build_backend("guided", **options).run(inputs, MatteRequest(video="synthetic", mask="synthetic")).alpha


def test_defaults_cut_flicker_and_the_ghost_without_hurting_edges(clip):
    before = guided(clip, trimap_erode=0, trimap_dilate=0)  # the guided filter alone (the old backend)
    after = stabilize(guided(clip), clip.frames, STRENGTH, MOTION)
    assert flicker(after, clip.truth) < 0.5 * flicker(before, clip.truth)
    assert edge_iou(after, clip.truth) >= edge_iou(before, clip.truth)
    assert background_ghost(before, clip.truth) > 0.04  # the noisy mask's floor leaks through the filter...
    assert background_ghost(after, clip.truth) < 0.01  # ...and the sure background stops it


def test_the_motion_guide_is_what_keeps_moving_edges_sharp(clip):
    alpha = guided(clip)
    guided_by_motion = stabilize(alpha, clip.frames, STRENGTH, MOTION)
    blind = stabilize(alpha, clip.frames, STRENGTH, float("inf"))  # the same filter ignoring frame difference
    assert edge_iou(blind, clip.truth) < edge_iou(alpha, clip.truth) - 0.05  # smears the moving edge
    assert edge_iou(guided_by_motion, clip.truth) >= edge_iou(alpha, clip.truth)


def test_stabilize_keeps_still_pixels_and_follows_moving_ones():
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    frames[2:, :, 4:] = 255  # the right half changes at frame 2
    alpha = np.zeros((4, 8, 8), np.float32)
    alpha[1::2] = 1.0  # the raw alpha flips every frame
    out = stabilize(alpha, frames, 0.5, 0.05)
    np.testing.assert_allclose(out[1], 0.5)  # nothing moved: half of the previous output kept
    np.testing.assert_allclose(out[2, :, :2], 0.25)
    np.testing.assert_allclose(out[2, :, 6:], 0.0)  # moved (>= the threshold over the window): the current alpha
    assert stabilize(alpha, frames, 0.0, 0.05) is alpha and stabilize(alpha[:1], frames[:1], 0.5, 0.05) is not None


@pytest.mark.parametrize("strength, motion, field", [(1.0, 0.05, "temporal_strength"), (-0.1, 0.05, "temporal_strength"),
                                                     (True, 0.05, "temporal_strength"),
                                                     (0.5, 0.0, "temporal_motion_threshold")])
def test_bad_temporal_settings_name_the_key(strength, motion, field):
    with pytest.raises(ConfigError, match=rf"^{field}: expected"):
        check_temporal(strength, motion)


def test_guided_sure_regions_are_exactly_0_and_1(clip):
    alpha = guided(clip, trimap_erode=6, trimap_dilate=6)
    from vgen.matte.trimap import dilate, erode

    binary = clip.masks > 0.5
    assert (alpha[erode(binary, 6)] == 1.0).all() and (alpha[~dilate(binary, 6)] == 0.0).all()
    with pytest.raises(ConfigError, match=r"matte\.backend\.trimap_dilate: expected a kernel size >= 0"):
        build_backend("guided", trimap_dilate=-1)
