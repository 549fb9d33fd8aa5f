"""Click/box prompts of ``python -m vgen.matte``: validation, conversion to SAM2's inputs, tracking.

SAM2 runs with the built-in tiny random-init models: its masks are noise, so these tests check
what reaches the model (against transformers' own processor), shapes and the prompt frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from media_fixtures import HEIGHT, WIDTH, make_media
from vgen.errors import ConfigError
from vgen.matte.prompts import ObjectPrompt, check_in_frame, parse_prompts, sam2_point_inputs
from vgen.matte.request import MatteRequest, load_inputs


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    return make_media(tmp_path_factory.mktemp("matte_prompts"))


def test_points_and_box_are_one_object_and_objects_several():
    (single,) = parse_prompts([[10, 20, 1], [30.5, 4, 0]], [1, 2, 50, 40], None)
    assert single == ObjectPrompt("input", ((10.0, 20.0, 1), (30.5, 4.0, 0)), (1.0, 2.0, 50.0, 40.0))
    first, second = parse_prompts(None, None, [{"points": [[5, 6, 1]]}, {"box": [0, 0, 8, 8]}])
    assert (first.field, first.points, first.box) == ("input.objects[0]", ((5.0, 6.0, 1),), None)
    assert (second.field, second.points, second.box) == ("input.objects[1]", (), (0.0, 0.0, 8.0, 8.0))
    assert parse_prompts(None, None, None) == []


@pytest.mark.parametrize(
    "points, box, objects, message",
    [
        ([[10, 20]], None, None, r"input\.points\[0\]: expected \[x, y, label\]"),
        ([[10, 20, 2]], None, None, r"input\.points\[0\]: .*label 1 \(subject\) or 0"),
        ([[10, "a", 1]], None, None, r"input\.points\[0\]"),
        ([[10, 20, True]], None, None, r"input\.points\[0\]"),
        ([[10, float("nan"), 1]], None, None, r"input\.points\[0\]"),
        ([[10, 20, 0]], None, None, r"input: an object needs a box or at least one subject point"),
        ([], None, None, r"input\.points: expected a non-empty list"),
        (None, [10, 10, 5, 20], None, r"input\.box: expected x0 < x1 and y0 < y1"),
        (None, [1, 2, 3], None, r"input\.box: expected \[x0, y0, x1, y1\]"),
        ([[1, 1, 1]], None, [{"box": [0, 0, 4, 4]}], r"input\.objects: give either"),
        (None, None, [], r"input\.objects: expected a non-empty list"),
        (None, None, [{"clicks": [[1, 1, 1]]}], r"input\.objects\[0\]: expected a mapping with points and/or box"),
        (None, None, [{"box": [0, 0, 4, 4]}, {"points": [[1, 1, 0]]}], r"input\.objects\[1\]: an object needs"),
    ],
)
def test_bad_prompts_are_config_errors_naming_the_field(points, box, objects, message):
    with pytest.raises(ConfigError, match=message):
        parse_prompts(points, box, objects)


def test_points_and_boxes_must_lie_inside_the_frame():
    inside = parse_prompts([[0, 0, 1], [95.5, 63.9, 0]], [0, 0, 96, 64], None)
    check_in_frame(inside, (64, 96))
    with pytest.raises(ConfigError, match=r"input\.points\[1\]: \(96, 10\) is outside the 96x64 frame"):
        check_in_frame(parse_prompts([[5, 5, 1], [96, 10, 1]], None, None), (64, 96))
    with pytest.raises(ConfigError, match=r"input\.objects\[0\]\.points\[0\]: \(-1, 3\) is outside"):
        check_in_frame(parse_prompts(None, None, [{"points": [[-1, 3, 1]]}]), (64, 96))
    with pytest.raises(ConfigError, match=r"input\.box: \[10, 10, 97, 20\] reaches outside the 96x64 frame"):
        check_in_frame(parse_prompts(None, [10, 10, 97, 20], None), (64, 96))


def test_prompts_scale_with_the_working_size():
    (prompt,) = parse_prompts([[48, 32, 1]], [10, 20, 30, 40], None)
    scaled = prompt.scaled((64, 96), (32, 48))
    assert scaled.points == ((24.0, 16.0, 1),) and scaled.box == (5.0, 10.0, 15.0, 20.0)


@pytest.mark.parametrize(
    "points, box",
    [([[20, 20, 1], [60, 40, 0]], [50, 10, 90, 50]), ([[20, 20, 1], [60, 40, 0], [3, 60, 1]], None),
     (None, [0, 0, 96, 64])],
)
def test_sam2_inputs_equal_what_the_transformers_processor_builds(points, box):
    """Our numpy conversion puts into the SAM2 session exactly what ``Sam2VideoProcessor`` puts
    (its points/boxes path needs no torchvision; only its image and video processors do)."""
    import torch
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession
    from transformers.models.sam2_video.processing_sam2_video import Sam2VideoProcessor

    def session():
        return Sam2VideoInferenceSession(video_height=HEIGHT, video_width=WIDTH, inference_device="cpu",
                                         inference_state_device="cpu", video_storage_device="cpu", dtype=torch.float32)

    processor = object.__new__(Sam2VideoProcessor)  # no image/video processor: only coordinates are processed
    processor.target_size, processor.point_pad_value = 128, -10
    theirs = session()
    processor.process_new_points_or_boxes_for_video_frame(
        theirs, 3, [1],
        input_points=None if points is None else [[[p[:2] for p in points]]],
        input_labels=None if points is None else [[[p[2] for p in points]]],
        input_boxes=None if box is None else [[box]],
    )
    (prompt,) = parse_prompts(points, box, None)
    coords, labels = sam2_point_inputs(prompt, (HEIGHT, WIDTH), 128)
    expected = theirs.point_inputs_per_obj[0][3]
    np.testing.assert_allclose(coords, expected["point_coords"].numpy(), rtol=1e-6)
    np.testing.assert_array_equal(labels, expected["point_labels"].numpy())


def test_load_inputs_with_prompts_reads_no_mask_and_scales_to_the_working_size(media):
    request = MatteRequest(video=str(media["clip"]), points=[[40, 30, 1]], start_frame=4, end_frame=12,
                           prompt_frame=9, target_size=48)
    inputs = load_inputs(request)
    assert inputs.masks is None and not inputs.is_mask_video and inputs.prompt_index == 5
    assert inputs.frames.shape == (8, 32, 48, 3)
    assert inputs.prompts[0].points == ((20.0, 15.0, 1),)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"mask": "x.png", "box": [0, 0, 4, 4]}, r"input\.mask: give a mask file or prompts .*not both"),
        ({}, r"input\.mask: give a mask file or prompts .*none given"),
        ({"box": [0, 0, 4, 4], "prompt_frame": 2, "start_frame": 3}, r"input\.prompt_frame: expected None or a frame"),
        ({"box": [0, 0, 4, 4], "prompt_frame": 8, "end_frame": 8}, r"input\.prompt_frame: .*\[0, 8\), got 8"),
        ({"box": [0, 0, 4, 4], "prompt_frame": 40}, r"input\.prompt_frame: frame 40 is outside the frames \[0, 28\)"),
        ({"points": [[200, 5, 1]]}, r"input\.points\[0\]: \(200, 5\) is outside the 96x64 frame"),
    ],
)
def test_bad_prompt_requests_are_config_errors(media, fields, message):
    with pytest.raises(ConfigError, match=message):
        load_inputs(MatteRequest(video=str(media["clip"]), **fields))


def test_guided_backend_refuses_prompts(media):
    from vgen.matte.backends import build_backend

    request = MatteRequest(video=str(media["clip"]), box=[0, 0, 40, 40], end_frame=2)
    with pytest.raises(ConfigError, match=r"backend 'guided' refines a per-frame mask video .*need backend sam2"):
        build_backend("guided").run(load_inputs(request), request)


@pytest.mark.slow
def test_tiny_sam2_tracks_prompted_objects_both_ways_from_the_prompt_frame(media, monkeypatch):
    """Two objects prompted on frame 7 of [2, 10): SAM2 sees frame 7 first (with both objects'
    prompts), then 8..9 forward, then 6..2 in reverse; the prompt mask is frame 7's merged mask."""
    import torch
    from transformers import Sam2VideoModel

    from vgen.matte.backends import build_backend

    torch.set_num_threads(1)
    seen = []
    forward = Sam2VideoModel.forward

    def spy(self, inference_session, frame_idx=None, frame=None, reverse=False, **kwargs):
        prompted = {idx for idx, inputs in inference_session.point_inputs_per_obj.items() if frame_idx in inputs}
        seen.append((frame_idx, reverse, sorted(prompted)))
        return forward(self, inference_session, frame_idx=frame_idx, frame=frame, reverse=reverse, **kwargs)

    monkeypatch.setattr(Sam2VideoModel, "forward", spy)
    request = MatteRequest(video=str(media["clip"]), objects=[{"points": [[20, 20, 1]]}, {"box": [50, 10, 90, 50]}],
                           start_frame=2, end_frame=10, prompt_frame=7, device="cpu")
    inputs = load_inputs(request)
    backend = build_backend("sam2_vitmatte", sam2_model="builtin:tiny_sam2", vitmatte_model="builtin:tiny_vitmatte")
    matte = backend.run(inputs, request)
    # Session frame indices count from start_frame: the prompt frame 7 is index 5.
    assert seen == [(5, False, [0, 1]), (6, False, []), (7, False, []),
                    (4, True, []), (3, True, []), (2, True, []), (1, True, []), (0, True, [])]
    assert matte.alpha.shape == (8, HEIGHT, WIDTH) and matte.alpha.dtype == np.float32
    assert matte.prompt_mask.shape == (HEIGHT, WIDTH) and matte.prompt_mask.dtype == bool
