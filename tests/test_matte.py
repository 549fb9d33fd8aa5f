"""Tests for vgen.matte: inputs + validation, trimap/guided algorithms, backends, compositing, audio.

The source clip comes from ``media_fixtures`` (shared with test_matte_app.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from media_fixtures import FPS, FRAMES, HEIGHT, SIDE, WIDTH, make_media, run_ffmpeg, write_video
from vgen.errors import ConfigError


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    return make_media(tmp_path_factory.mktemp("matte"))


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    predicted = alpha > 0.5
    return float(np.logical_and(predicted, truth).sum() / np.logical_or(predicted, truth).sum())


def test_load_inputs_decodes_range_masks_and_audio(media):
    from vgen.matte.request import MatteRequest, load_inputs

    request = MatteRequest(video=str(media["clip"]), mask=str(media["mask_video"]), start_frame=2, end_frame=20)
    inputs = load_inputs(request)
    assert inputs.frames.shape == (18, HEIGHT, WIDTH, 3) and inputs.frames.dtype == np.uint8
    assert inputs.fps == pytest.approx(FPS)
    assert inputs.masks.shape == (18, HEIGHT, WIDTH) and inputs.masks.dtype == np.float32
    assert inputs.is_mask_video
    errors = np.abs(inputs.frames[:, None].astype(int) - media["frames"][None].astype(int)).mean(axis=(2, 3, 4))
    assert list(errors.argmin(axis=1)) == list(range(2, 20))  # lossy, but frame i is source frame 2 + i
    assert iou(inputs.masks, media["truth"][2:20]) > 0.9
    assert [stream.language for stream in inputs.audio_streams] == ["eng", "fra"]


def test_guided_backend_recovers_the_square_from_rough_masks(media):
    from vgen.matte.backends import build_backend
    from vgen.matte.request import MatteRequest, load_inputs

    request = MatteRequest(video=str(media["clip"]), mask=str(media["mask_video"]))
    inputs = load_inputs(request)
    calls = []
    alpha = build_backend("guided").run(inputs, request, progress=lambda done, total: calls.append((done, total))).alpha

    assert alpha.shape == (FRAMES, HEIGHT, WIDTH) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert iou(alpha, media["truth"]) > 0.95
    assert iou(alpha, media["truth"]) > iou(inputs.masks, media["truth"]) + 0.02  # better than its input
    assert calls[-1] == (FRAMES, FRAMES) and len(calls) == FRAMES


# --- inputs and validation -------------------------------------------------------------------


def test_first_frame_mask_image_with_target_size(media):
    from vgen.matte.request import MatteRequest, load_inputs

    inputs = load_inputs(MatteRequest(video=str(media["clip"]), mask=str(media["mask"]), end_frame=4, target_size=48))
    assert inputs.frames.shape == (4, 32, 48, 3)
    assert inputs.masks.shape == (1, 32, 48) and not inputs.is_mask_video
    assert inputs.source_size == (HEIGHT, WIDTH)
    assert inputs.fps == pytest.approx(FPS)
    assert iou(inputs.prompt_mask, media["truth"][0, ::2, ::2]) > 0.9


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(None, (64, 96)), ("48x32", (32, 48)), (" 200X100 ", (100, 200)), (48, (32, 48)), ("192", (128, 192))],
)
def test_resolve_target_size(spec, expected):
    from vgen.matte.request import resolve_target_size

    assert resolve_target_size(spec, (64, 96)) == expected


@pytest.mark.parametrize("spec", ["0x32", "47x32", "-2", "big", 9000, "9000x64", 33])
def test_bad_target_size_is_a_config_error(spec):
    from vgen.matte.request import resolve_target_size

    with pytest.raises(ConfigError, match="target_size"):
        resolve_target_size(spec, (64, 96))


def test_mask_image_modes_convert_to_one_channel(tmp_path):
    from vgen.matte.reader import read_clip

    square = np.zeros((8, 8), dtype=np.uint8)
    square[2:6, 2:6] = 255
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white everywhere: only the alpha channel holds the shape
    rgba[..., 3] = square
    opaque = np.dstack([square, square, square, np.full((8, 8), 255, np.uint8)])  # constant alpha: colour decides
    sixteen = Image.fromarray(square.astype(np.uint16) * 257)
    images = {
        "gray.png": Image.fromarray(square),
        "rgb.png": Image.fromarray(np.dstack([square] * 3)),
        "rgba.png": Image.fromarray(rgba),
        "opaque.png": Image.fromarray(opaque),
        "gray16.png": sixteen,
    }
    for name, image in images.items():
        image.save(tmp_path / name)
        mask = read_clip(str(tmp_path / name), "mask", as_mask=True).frames[0]
        assert mask.dtype == np.float32 and mask.shape == (8, 8), name
        np.testing.assert_allclose(mask, square / 255.0, atol=1e-3, err_msg=name)


def _disc(radius: int = 10) -> np.ndarray:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return (yy - HEIGHT / 2) ** 2 + (xx - WIDTH / 2) ** 2 <= radius**2


def _colour_images() -> dict[str, tuple[Image.Image, np.ndarray]]:
    """Masks a user may bring, by name: (the image, where its subject is)."""
    disc = _disc()
    red_disc = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    red_disc[disc] = (255, 0, 0)
    green_on_magenta = np.where(disc[..., None], np.uint8([0, 255, 0]), np.uint8([255, 0, 255])).astype(np.uint8)
    cutout = np.dstack([np.random.default_rng(2).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
                        disc.astype(np.uint8) * 255])  # coloured pixels, the alpha marks the subject
    return {"red_disc": (Image.fromarray(red_disc), disc), "green_on_magenta": (Image.fromarray(green_on_magenta), disc),
            "rgba_cutout": (Image.fromarray(cutout), disc)}


@pytest.mark.parametrize(("name", "channel"), [("red_disc", "r"), ("green_on_magenta", "g"), ("rgba_cutout", None),
                                               ("rgba_cutout", "a")])
def test_colour_mask_reads_the_chosen_channel_or_the_alpha(tmp_path, name, channel):
    from vgen.matte.reader import read_clip

    image, subject = _colour_images()[name]
    image.save(tmp_path / f"{name}.png")
    mask = read_clip(str(tmp_path / f"{name}.png"), "mask", as_mask=True, mask_channel=channel).frames[0]
    np.testing.assert_array_equal(mask, subject.astype(np.float32))  # no ghost: exactly 0 or 1


@pytest.mark.parametrize("name", ["red_disc", "green_on_magenta"])
def test_colour_mask_without_a_channel_is_a_config_error_naming_the_file(tmp_path, name):
    from vgen.matte.reader import read_clip

    image, _ = _colour_images()[name]
    image.save(tmp_path / f"{name}.png")
    with pytest.raises(ConfigError, match=rf"mask \(.*{name}\.png\) is a colour image.*input\.mask_channel=r\|g\|b\|a\|luma"):
        read_clip(str(tmp_path / f"{name}.png"), "mask", as_mask=True)


def test_mask_channel_a_needs_an_alpha_channel_and_luma_reads_brightness(tmp_path):
    from vgen.matte.reader import read_clip

    image, subject = _colour_images()["green_on_magenta"]
    image.save(tmp_path / "gm.png")
    with pytest.raises(ConfigError, match=r"mask \(.*gm\.png\): input\.mask_channel=a but it has no alpha"):
        read_clip(str(tmp_path / "gm.png"), "mask", as_mask=True, mask_channel="a")
    luma = read_clip(str(tmp_path / "gm.png"), "mask", as_mask=True, mask_channel="luma").frames[0]
    assert luma[subject].min() == pytest.approx(0.587, abs=0.01)  # what the old code read silently
    assert luma[~subject].max() == pytest.approx(0.413, abs=0.01)


def test_mask_video_with_alpha_uses_the_alpha_and_a_colour_mask_video_is_refused(media, tmp_path):
    """Mask videos made by ffmpeg: coloured frames whose alpha plane (FFV1 yuva420p) is the mask,
    and green-on-magenta H.264 (4:2:0, lossy), readable only with a channel picked."""
    from vgen.matte.reader import read_clip

    truth = media["truth"]
    rgba = np.concatenate([media["frames"], truth[..., None].astype(np.uint8) * 255], axis=-1)
    run_ffmpeg("-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "pipe:0",
               "-c:v", "ffv1", "-pix_fmt", "yuva420p", str(tmp_path / "alpha.mkv"), stdin=rgba.tobytes())
    masks = read_clip(str(tmp_path / "alpha.mkv"), "mask", as_mask=True).frames
    np.testing.assert_array_equal(masks, truth.astype(np.float32))

    coloured = np.where(truth[..., None], np.uint8([0, 255, 0]), np.uint8([255, 0, 255])).astype(np.uint8)
    write_video(tmp_path / "gm.mp4", coloured)
    with pytest.raises(ConfigError, match=r"mask \(.*gm\.mp4\) is a colour image"):
        read_clip(str(tmp_path / "gm.mp4"), "mask", as_mask=True)
    green = read_clip(str(tmp_path / "gm.mp4"), "mask", as_mask=True, mask_channel="g").frames
    assert iou(green, truth) > 0.95


def test_grey_mask_video_after_lossy_coding_is_not_colour(media, tmp_path):
    from vgen.matte.reader import read_clip

    grey = media["frames"].mean(axis=-1).astype(np.uint8)  # textured grey: every level, sharp edges
    write_video(tmp_path / "grey.mp4", np.repeat(grey[..., None], 3, axis=-1), codec=("-c:v", "libx264", "-crf", "40"))
    masks = read_clip(str(tmp_path / "grey.mp4"), "mask", as_mask=True).frames
    assert masks.shape == (FRAMES, HEIGHT, WIDTH)


def _request(media, **overrides):
    from vgen.matte.request import MatteRequest

    fields = {"video": str(media["clip"]), "mask": str(media["mask"])}
    fields.update(overrides)
    return MatteRequest(**fields)


def test_not_a_video_is_a_config_error(media, tmp_path):
    from vgen.matte.request import load_inputs

    text = tmp_path / "notes.txt"
    text.write_text("definitely not a video\n" * 20)
    with pytest.raises(ConfigError, match=r"video: .*notes\.txt is not an image or video"):
        load_inputs(_request(media, video=str(text)))
    with pytest.raises(ConfigError, match=r"mask: file not found: .*missing\.png"):
        load_inputs(_request(media, mask=str(tmp_path / "missing.png")))


def test_audio_only_file_is_a_config_error(media, tmp_path):
    from vgen.matte.request import load_inputs

    audio = tmp_path / "tone.wav"
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.2", str(audio))
    with pytest.raises(ConfigError, match=r"video: .*tone\.wav has no video stream"):
        load_inputs(_request(media, video=str(audio)))


def test_empty_mask_is_a_config_error(media, tmp_path):
    from vgen.matte.request import load_inputs

    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(empty)
    with pytest.raises(ConfigError, match=r"mask: .*empty\.png is empty"):
        load_inputs(_request(media, mask=str(empty)))
    with pytest.raises(ConfigError, match="erode_kernel"):
        load_inputs(_request(media, erode_kernel=SIDE + 2))


def test_frame_range_outside_the_video_is_a_config_error(media):
    from vgen.matte.request import load_inputs

    with pytest.raises(ConfigError, match=rf"frame range \[20, 40\) is outside .*clip\.mkv, which has {FRAMES} frame"):
        load_inputs(_request(media, start_frame=20, end_frame=40))
    with pytest.raises(ConfigError, match=r"frame range \[30, end\)"):
        load_inputs(_request(media, start_frame=30))
    with pytest.raises(ConfigError, match="end_frame"):
        load_inputs(_request(media, start_frame=5, end_frame=5))


def test_mask_size_mismatch_is_a_config_error_unless_resized(media, tmp_path):
    from vgen.matte.request import load_inputs

    small = tmp_path / "small.png"
    Image.fromarray((media["truth"][0, ::2, ::2] * 255).astype(np.uint8)).save(small)
    with pytest.raises(ConfigError, match=r"mask: .*small\.png is 48x32 but .*clip\.mkv frames are 96x64"):
        load_inputs(_request(media, mask=str(small)))
    inputs = load_inputs(_request(media, mask=str(small), resize_mask=True, end_frame=2))
    assert inputs.masks.shape == (1, HEIGHT, WIDTH)
    assert iou(inputs.prompt_mask, media["truth"][0]) > 0.85


def test_mask_video_shorter_than_the_range_is_a_config_error(media, tmp_path):
    from vgen.matte.request import load_inputs

    short = tmp_path / "short.mkv"
    five = np.repeat((media["truth"][:5, ..., None] * 255).astype(np.uint8), 3, axis=-1)
    write_video(short, five, codec=("-c:v", "ffv1"))
    with pytest.raises(ConfigError, match=r"mask: frame range \[2, 8\) is outside .*short\.mkv, which has 5 frame"):
        load_inputs(_request(media, mask=str(short), start_frame=2, end_frame=8))


@pytest.mark.parametrize(
    ("field", "value"),
    [("target", "middle"), ("mask_type", "bluescreen"), ("device", "tpu"), ("erode_kernel", -1), ("start_frame", -3),
     ("mask_channel", "red")],
)
def test_bad_options_are_config_errors_naming_the_field(media, field, value):
    from vgen.matte.request import load_inputs

    with pytest.raises(ConfigError, match=field):
        load_inputs(_request(media, **{field: value}))


def test_guided_backend_needs_a_mask_video(media):
    from vgen.matte.backends import build_backend
    from vgen.matte.request import load_inputs

    request = _request(media, end_frame=3)
    with pytest.raises(ConfigError, match="per-frame mask video"):
        build_backend("guided").run(load_inputs(request), request)


def test_build_backend_rejects_unknown_names_and_options():
    from vgen.matte.backends import build_backend

    with pytest.raises(ConfigError, match="unknown matting backend 'matanyone'"):
        build_backend("matanyone")
    with pytest.raises(ConfigError, match="radius_px"):
        build_backend("guided", radius_px=3)
    assert build_backend("guided", radius=2, eps=0.01).radius == 2


# --- algorithms --------------------------------------------------------------------------------


def test_erode_dilate_and_trimap_on_a_square():
    from vgen.matte.trimap import dilate, erode, make_trimap

    mask = np.zeros((2, 20, 20), dtype=np.float32)
    mask[:, 5:15, 5:15] = 1.0
    assert erode(mask, 3)[0].sum() == 8 * 8 and dilate(mask, 3)[0].sum() == 12 * 12
    assert erode(mask, 4)[0].sum() == 7 * 7 and dilate(mask, 4)[0].sum() == 13 * 13
    assert np.array_equal(erode(mask, 1), mask) and np.array_equal(dilate(mask, 0), mask)
    edge = np.ones((6, 6), dtype=bool)
    assert erode(edge, 3).all()  # the frame border does not erode a mask touching it

    trimap = make_trimap(mask[0], 5, 5)
    assert trimap.dtype == np.uint8 and set(np.unique(trimap)) == {0, 128, 255}
    assert (trimap == 255).sum() == 6 * 6
    assert (trimap == 128).sum() == 14 * 14 - 6 * 6
    assert trimap[0, 0] == 0 and trimap[10, 10] == 255 and trimap[4, 10] == 128


def test_box_mean_matches_brute_force():
    from vgen.matte.guided import box_mean

    rng = np.random.default_rng(3)
    values = rng.random((2, 9, 13))
    radius = 2
    expected = np.empty_like(values)
    for y in range(9):
        for x in range(13):
            window = values[:, max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
            expected[:, y, x] = window.mean(axis=(1, 2))
    np.testing.assert_allclose(box_mean(values, radius), expected, rtol=1e-10)


def test_guided_filter_properties():
    from vgen.matte.guided import box_mean, guided_filter

    rng = np.random.default_rng(4)
    image = rng.random((16, 16))
    # Guided by itself with a tiny eps, the filter keeps the image (edge preserving).
    np.testing.assert_allclose(guided_filter(image, image, 2, 1e-8), image, atol=1e-4)
    # A flat guide has no edges to follow: the result is a (double) box blur.
    flat = np.full((16, 16, 3), 0.5)
    np.testing.assert_allclose(guided_filter(flat, image, 2, 1e-3), box_mean(box_mean(image, 2), 2), atol=1e-9)
    # A colour guide separates regions a gray guide cannot: red vs green of equal luminance-ish.
    guide = np.zeros((16, 16, 3))
    guide[:, :8, 0] = 1.0
    guide[:, 8:, 1] = 1.0
    step = np.zeros((16, 16))
    step[:, :8] = 1.0
    np.testing.assert_allclose(guided_filter(guide, step, 3, 1e-6), step, atol=1e-3)


# --- compositing -------------------------------------------------------------------------------


def test_compositing_outputs():
    from vgen.matte.composite import alpha_frames, apply_target, foreground_frames, rgba_frames

    frames = np.full((1, 2, 2, 3), 200, dtype=np.uint8)
    alpha = np.array([[[1.0, 0.5], [0.0, 0.25]]], dtype=np.float32)

    black = foreground_frames(frames, alpha, "alpha")
    assert black.dtype == np.uint8 and black.shape == (1, 2, 2, 3)
    assert black[0, 0, 0].tolist() == [200, 200, 200] and black[0, 1, 0].tolist() == [0, 0, 0]
    assert black[0, 0, 1].tolist() == [100, 100, 100]
    green = foreground_frames(frames, alpha, "greenscreen")
    assert green[0, 1, 0].tolist() == [0, 255, 0] and green[0, 0, 1].tolist() == [100, 228, 100]

    rgba = rgba_frames(frames, alpha)
    assert rgba.shape == (1, 2, 2, 4) and rgba[0, :, :, 3].tolist() == [[255, 128], [0, 64]]
    assert (rgba[..., :3] == 200).all()
    gray = alpha_frames(alpha)
    assert gray.shape == (1, 2, 2, 3) and (gray[..., 0] == gray[..., 2]).all() and gray[0, 0, 1, 1] == 128

    np.testing.assert_allclose(apply_target(alpha, "background"), 1.0 - alpha)
    assert apply_target(alpha, "foreground") is alpha


# --- audio -------------------------------------------------------------------------------------


def test_audio_streams_are_probed_with_rates_channels_and_languages(media):
    from vgen.matte.audio import probe_audio_streams

    streams = probe_audio_streams(str(media["clip"]))
    assert [(s.audio_index, s.codec, s.sample_rate, s.channels, s.language) for s in streams] == [
        (0, "aac", 44100, 2, "eng"),
        (1, "flac", 22050, 1, "fra"),
    ]
    assert [s.index for s in streams] == [1, 2]  # stream 0 is the video
    for stream in streams:
        assert stream.duration == pytest.approx(FRAMES / FPS, abs=0.06)


def test_audio_streams_decode_at_their_own_rates(media):
    from vgen.matte.audio import decode_audio_stream, probe_audio_streams

    english, french = probe_audio_streams(str(media["clip"]))
    stereo = decode_audio_stream(str(media["clip"]), english)
    mono = decode_audio_stream(str(media["clip"]), french)
    duration = FRAMES / FPS
    assert stereo.dtype == np.float32 and stereo.shape[1] == 2
    assert mono.dtype == np.float32 and mono.shape[1] == 1
    assert stereo.shape[0] == pytest.approx(44100 * duration, rel=0.03)
    assert mono.shape[0] == pytest.approx(22050 * duration, rel=0.01)
    # The channels really are the generated tones: RMS of sines of amplitude 1 and 0.5 (AAC, lossy)
    # and of ffmpeg's `sine` source, amplitude 1/8 (FLAC, lossless).
    rms = np.sqrt(np.mean(stereo[2000:-2000] ** 2, axis=0))
    assert rms[0] == pytest.approx(0.707, abs=0.07) and rms[1] == pytest.approx(0.354, abs=0.04)
    assert np.abs(mono[:, 0]).max() == pytest.approx(0.125, abs=0.002)

    part = decode_audio_stream(str(media["clip"]), french, start_s=0.5, duration_s=0.25)
    assert part.shape == (pytest.approx(22050 * 0.25, abs=2), 1)


def test_still_image_has_no_audio_and_no_fps(media):
    from vgen.matte.request import load_inputs

    still = media["root"] / "still.png"
    Image.fromarray(media["frames"][0]).save(still)
    inputs = load_inputs(_request(media, video=str(still)))
    assert inputs.frames.shape == (1, HEIGHT, WIDTH, 3) and inputs.fps is None
    assert inputs.audio_streams == [] and inputs.is_mask_video
    np.testing.assert_array_equal(inputs.frames[0], media["frames"][0])


# --- sam2_vitmatte (tiny random weights) ------------------------------------------------------


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core machine: with a busy CPU, torch's thread pool spends far
    longer synchronising than computing (measured 19 s vs 0.6 s for 4 SAM2 frames)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow
def test_sam2_vitmatte_runs_end_to_end_with_tiny_models(media, tmp_path, one_torch_thread):
    from vgen.matte.backends import build_backend
    from vgen.matte.request import load_inputs
    request = _request(media, start_frame=3, end_frame=9, device="cpu")
    inputs = load_inputs(request)
    backend = build_backend("sam2_vitmatte", sam2_model="builtin:tiny_sam2", vitmatte_model="builtin:tiny_vitmatte")
    calls = []
    alpha = backend.run(inputs, request, progress=lambda done, total: calls.append((done, total))).alpha

    assert alpha.shape == (6, HEIGHT, WIDTH) and alpha.dtype == np.float32
    assert np.isfinite(alpha).all() and alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert calls == [(done, 12) for done in range(1, 13)]  # 6 tracking steps, then 6 refinements


@pytest.mark.slow
def test_missing_checkpoint_names_the_id_and_how_to_download(media):
    from vgen.errors import CheckpointNotFoundError
    from vgen.matte.backends import build_backend
    from vgen.matte.request import load_inputs

    request = _request(media, end_frame=2, device="cpu")
    backend = build_backend("sam2_vitmatte", sam2_model="no-such-org/sam2-missing", cache_dir=str(media["root"] / "hf"))
    expected = r"^matte\.backend\.sam2_model: checkpoint 'no-such-org/sam2-missing' not found"
    with pytest.raises(CheckpointNotFoundError, match=expected) as error:
        backend.run(load_inputs(request), request)
    assert "hf" in str(error.value) and "download no-such-org/sam2-missing" in str(error.value)
