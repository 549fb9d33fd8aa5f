"""Tests for ``python -m vgen.matte``: persistence of every output, the manifest row, the CLI.

Persistence tests compose ``conf/matte.yaml`` and call ``vgen.matte.app.run`` in-process (fast);
the CLI tests start the real entry point as a subprocess. Media come from ``media_fixtures``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from PIL import Image

from conftest import manifest_validator, read_manifest, run_vgen
from media_fixtures import FPS, HEIGHT, WIDTH, make_media, write_video
from vgen.config.locate import config_dir
from vgen.hashing import file_sha256
from vgen.media.metadata_io import read_metadata
from vgen.media.probe import decode_video, probe

FAST_H264 = ["output.preset=ultrafast"]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    return make_media(tmp_path_factory.mktemp("matte_app"))


def compose_matte(*overrides: str, return_hydra_config: bool = False):
    """The matte config composed from ``conf/matte.yaml`` like ``hydra.main`` does."""
    from vgen.config.registry import register_all

    register_all()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="matte", return_hydra_config=return_hydra_config, overrides=list(overrides))


def run_in_process(run_dir: Path, *overrides: str) -> int:
    """Compose the matte config like ``hydra.main`` does and run it; returns the exit code."""
    from vgen.matte.app import run

    cfg = compose_matte(f"run_dir={run_dir}", *overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return run(cfg)


def inputs_for(media: dict, *extra: str) -> list[str]:
    return [f"input.video={media['clip']}", f"input.mask={media['mask_video']}", "matte/backend=guided", *extra]


def artifacts_by_role(row: dict) -> dict[str, list[dict]]:
    roles: dict[str, list[dict]] = {}
    for artifact in row["artifacts"]:
        roles.setdefault(artifact["role"], []).append(artifact)
    return roles


def check_row(run_dir: Path) -> dict:
    """The run's single manifest row, validated against the schema, its files matching their hashes."""
    rows = read_manifest(run_dir)
    assert len(rows) == 1
    errors = [error.message for error in manifest_validator().iter_errors(rows[0])]
    assert not errors, errors
    for artifact in rows[0]["artifacts"]:
        assert file_sha256(run_dir / artifact["path"]) == artifact["sha256"]
    return rows[0]


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    predicted = alpha > 0.5
    return float(np.logical_and(predicted, truth).sum() / np.logical_or(predicted, truth).sum())


# --- persistence (in-process) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def h265_run(media, tmp_path_factory) -> tuple[Path, dict]:
    """mkv/h265 for both videos (alpha_output=output), the RGBA archive and both audio tracks
    re-attached, frames [4, 16)."""
    run_dir = tmp_path_factory.mktemp("h265") / "run"
    overrides = inputs_for(media, "input.start_frame=4", "input.end_frame=16", "output=mkv_h265",
                           "output.preset=ultrafast", "output.save_masks=true", "attach_audio=true",
                           "alpha_output=output")
    assert run_in_process(run_dir, *overrides) == 0
    return run_dir, check_row(run_dir)


def test_output_override_is_honoured_for_both_videos(h265_run, media):
    run_dir, row = h265_run
    roles = artifacts_by_role(row)
    assert row["status"] == "success" and row["job_index"] == 0
    for role in ("mask_foreground", "mask_alpha"):
        (artifact,) = roles[role]
        assert artifact["path"].startswith("mask_outputs/") and artifact["path"].endswith(".mkv")
        video = next(s for s in probe(run_dir / artifact["path"])["streams"] if s["type"] == "video")
        assert (artifact["container"], artifact["codec"], video["codec_name"]) == ("mkv", "hevc", "hevc")
        assert (video["width"], video["height"], video["frames"]) == (WIDTH, HEIGHT, 12)
        assert artifact["fps"] == pytest.approx(FPS)
    # The alpha video really is the matte of frames 4..15 (the guided filter recovers the square).
    alpha = decode_video(run_dir / roles["mask_alpha"][0]["path"])[..., 0] / 255.0
    assert iou(alpha, media["truth"][4:16]) > 0.9


def test_archive_holds_rgba_frames_and_metadata(h265_run):
    run_dir, row = h265_run
    (archive,) = artifacts_by_role(row)["rgba_archive"]
    with zipfile.ZipFile(run_dir / archive["path"]) as bundle:
        names = bundle.namelist()
        assert names == [f"frame_{index:05d}.png" for index in range(12)] + ["metadata.json"]
        first = Image.open(bundle.open(names[0]))
        assert first.mode == "RGBA" and first.size == (WIDTH, HEIGHT)
        metadata = json.loads(bundle.read("metadata.json"))
    assert metadata["frame_range"] == [4, 16] and metadata["job_id"] == row["job_id"]
    assert archive["frames"] == 12


def test_every_audio_track_is_saved_with_its_rate_channels_and_language(h265_run):
    run_dir, row = h265_run
    tracks = artifacts_by_role(row)["audio"]
    facts = [(t["sample_rate"], t["channels"], t["language"], t["extra"]["source_codec"]) for t in tracks]
    assert facts == [(44100, 2, "eng", "aac"), (22050, 1, "fra", "flac")]
    for track in tracks:
        samples, rate = soundfile.read(run_dir / track["path"], dtype="float32", always_2d=True)
        assert rate == track["sample_rate"] and samples.shape[1] == track["channels"]
        assert track["duration_s"] == pytest.approx(12 / FPS, abs=0.03)  # the frame range, not the whole clip
        assert samples.shape[0] == pytest.approx(rate * 12 / FPS, rel=0.05)
        assert np.abs(samples).max() > 0.05  # the tones, not silence


def test_reattached_foreground_keeps_both_tracks_with_languages(h265_run):
    run_dir, row = h265_run
    (foreground,) = artifacts_by_role(row)["mask_foreground"]
    audio = [s for s in probe(run_dir / foreground["path"])["streams"] if s["type"] == "audio"]
    assert [(s["language"], s["codec_name"], s["sample_rate"], s["channels"]) for s in audio] == [
        ("eng", "flac", 44100, 2), ("fra", "flac", 22050, 1)
    ]
    assert foreground["extra"]["audio_language"] == ["eng", "fra"]
    stored = read_metadata(run_dir / foreground["path"])  # metadata=embedded (the default)
    assert stored["inputs"] == row["inputs"]
    assert [t["language"] for t in stored["audio_tracks"]] == ["eng", "fra"]


def test_defaults_write_no_archive_and_no_audio_in_the_video_greenscreen(media, tmp_path):
    run_dir = tmp_path / "run"
    assert run_in_process(run_dir, *inputs_for(media, "input.end_frame=6", "mask_type=greenscreen", *FAST_H264)) == 0
    roles = artifacts_by_role(check_row(run_dir))
    assert sorted(roles) == ["audio", "mask_alpha", "mask_foreground"]
    assert not list((run_dir / "mask_outputs").glob("*.zip"))
    path = run_dir / roles["mask_foreground"][0]["path"]
    assert [s["type"] for s in probe(path)["streams"]] == ["video"]
    corner = decode_video(path)[:, :4, -4:].reshape(-1, 3).mean(axis=0)  # background: pure green
    assert corner[1] > 200 and corner[0] < 40 and corner[2] < 40


def test_webm_reattach_transcodes_every_track_to_opus(media, tmp_path):
    run_dir = tmp_path / "run"
    overrides = inputs_for(media, "input.end_frame=6", "output=webm_vp9", "output.preset=realtime", "attach_audio=true")
    assert run_in_process(run_dir, *overrides) == 0
    (foreground,) = artifacts_by_role(check_row(run_dir))["mask_foreground"]
    audio = [s for s in probe(run_dir / foreground["path"])["streams"] if s["type"] == "audio"]
    assert [(s["codec_name"], s["language"]) for s in audio] == [("opus", "eng"), ("opus", "fra")]


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_still_image_input_saves_images_with_a_png_alpha(media, tmp_path, image_format):
    still = tmp_path / "still.png"
    Image.fromarray(media["frames"][0]).save(still)
    run_dir = tmp_path / "run"
    overrides = [f"input.video={still}", f"input.mask={media['mask']}", "matte/backend=guided", "attach_audio=true",
                 f"output.image_format={image_format}"]
    assert run_in_process(run_dir, *overrides) == 0
    roles = artifacts_by_role(check_row(run_dir))
    assert sorted(roles) == ["mask_alpha", "mask_foreground"]  # a still has no audio
    containers = {"mask_foreground": image_format, "mask_alpha": "png"}  # the alpha stays lossless
    for role, (artifact,) in roles.items():
        assert (artifact["kind"], artifact["container"], artifact["fps"], artifact["frames"]) == (
            "image", containers[role], None, 1)
    alpha = np.asarray(Image.open(run_dir / roles["mask_alpha"][0]["path"]))[..., 0] / 255.0
    assert iou(alpha, media["truth"][0]) > 0.9


def test_output_fps_equal_to_the_source_fps_is_accepted(media, tmp_path):
    run_dir = tmp_path / "run"
    assert run_in_process(run_dir, *inputs_for(media, "input.end_frame=4", f"output.fps={FPS}", *FAST_H264)) == 0
    roles = artifacts_by_role(check_row(run_dir))
    assert [artifact["fps"] for artifact in roles["mask_foreground"] + roles["mask_alpha"]] == [FPS, FPS]


def test_write_failure_gives_one_error_row_and_exit_1(media, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "mask_outputs").write_text("a file where the output folder should be")
    code = run_in_process(run_dir, *inputs_for(media, "input.end_frame=4", "output.retries=0", *FAST_H264))
    assert code == 1
    row = check_row(run_dir)
    assert row["status"] == "error" and row["artifacts"] == [] and "mask_outputs" in row["error"]["message"]


def test_job_id_is_the_hash_of_the_request_and_backend(media, tmp_path):
    from vgen.matte.app import matte_job_id
    from vgen.matte.request import MatteRequest

    request = MatteRequest(video="/a.mp4", mask="/m.png")
    guided = {"name": "guided", "radius": 4, "eps": 0.001}
    assert matte_job_id(request, guided) == matte_job_id(MatteRequest(video="/a.mp4", mask="/m.png"), dict(guided))
    assert matte_job_id(request, guided) != matte_job_id(request, {**guided, "radius": 5})
    assert matte_job_id(request, guided) != matte_job_id(MatteRequest(video="/a.mp4", mask="/m.png", end_frame=3), guided)


def test_temporal_filter_is_on_by_default_and_steadies_still_regions(media, tmp_path):
    """The same guided run with the filter (default) and without (temporal_strength=0): the decoded
    alpha changes less between frames where the truth stays the same, and the row records it."""
    from vgen.matte.evaluation import flicker

    alphas = {}
    for name, extra in (("default", []), ("off", ["temporal_strength=0"])):
        run_dir = tmp_path / name
        assert run_in_process(run_dir, *inputs_for(media, "input.end_frame=12", *FAST_H264, *extra)) == 0
        row = check_row(run_dir)
        alphas[name] = decode_video(run_dir / artifacts_by_role(row)["mask_alpha"][0]["path"])[..., 0] / 255.0
        alphas[name + "_request"] = row["inputs"]["request"]
    assert alphas["default_request"]["temporal_strength"] == 0.7 and alphas["off_request"]["temporal_strength"] == 0
    truth = media["truth"][:12]
    assert flicker(alphas["default"], truth) < 0.8 * flicker(alphas["off"], truth)


# --- media layer pieces this app relies on --------------------------------------------------------


def test_mux_audio_adds_several_tagged_tracks(tmp_path):
    from vgen.media.context import MediaPersistenceContext
    from vgen.media.metadata_state import MetadataState
    from vgen.media.writers import mux_audio

    context = MediaPersistenceContext.from_config(
        {"name": "t", "container": "mp4", "codec": "libx264", "preset": "ultrafast"}, MetadataState("none"))
    video = context.save_video(np.zeros((8, 32, 32, 3), np.uint8), tmp_path / "clip", fps=16)
    tone = np.sin(np.arange(8000, dtype=np.float32) / 10.0)[:, None]
    mux_audio(video.path, [(tone, 16000), (np.repeat(tone, 2, axis=1), 22050)], language=["deu", None])
    audio = [s for s in probe(video.path)["streams"] if s["type"] == "audio"]
    assert [(s["codec_name"], s["channels"], s["sample_rate"]) for s in audio] == [("aac", 1, 16000), ("aac", 2, 22050)]
    assert [s["language"] for s in audio] == ["deu", "und"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # staged WAVs removed
    with pytest.raises(Exception, match="2 audio track"):
        mux_audio(video.path, [(tone, 16000), (tone, 16000)], language=["eng"])


def test_decode_video_range(media):
    whole = decode_video(media["clip"])
    part = decode_video(media["clip"], 5, 9)
    assert whole.shape == (28, HEIGHT, WIDTH, 3) and part.shape == (4, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(part, whole[5:9])
    assert decode_video(media["clip"], 40).shape[0] == 0


# --- the CLI (subprocess) ---------------------------------------------------------------------


@pytest.mark.slow
def test_cli_json_metadata_row_lists_every_role_with_sidecars(media, tmp_path):
    run_dir = tmp_path / "run"
    result = run_vgen(*inputs_for(media, "input.end_frame=8", "output.save_masks=true", "metadata=json",
                                  *FAST_H264, f"hydra.run.dir={run_dir}"), module="vgen.matte", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = check_row(run_dir)
    roles = artifacts_by_role(row)
    assert sorted(roles) == ["audio", "mask_alpha", "mask_foreground", "rgba_archive"]
    assert row["metadata_mode"] == "json" and row["inputs"]["backend"] == {
        "name": "guided", "radius": 4, "eps": 0.001, "trimap_erode": 6, "trimap_dilate": 6}
    assert row["inputs"]["request"]["video"] == str(media["clip"]) and row["inputs"]["request"]["end_frame"] == 8
    assert set(row["timings"]) == {"decode_s", "matte_s", "persist_s"}
    for role in ("mask_foreground", "mask_alpha", "audio"):
        for artifact in roles[role]:
            sidecar = json.loads((run_dir / artifact["metadata_sidecar"]).read_text())
            assert sidecar["job_id"] == row["job_id"] and sidecar["inputs"] == row["inputs"]
            assert sidecar["frame_range"] == [0, 8]
            assert [t["source_codec"] for t in sidecar["audio_tracks"]] == ["aac", "flac"]
    english, french = roles["audio"]
    assert (english["sample_rate"], english["channels"], english["language"], english["extra"]["source_codec"]) == (
        44100, 2, "eng", "aac")
    assert (french["sample_rate"], french["channels"], french["language"]) == (22050, 1, "fra")
    french_sidecar = json.loads((run_dir / french["metadata_sidecar"]).read_text())
    assert french_sidecar["audio_track"]["language"] == "fra"
    assert roles["rgba_archive"][0]["metadata_sidecar"] is None  # its metadata is a member of the ZIP
    assert (roles["mask_alpha"][0]["container"], roles["mask_alpha"][0]["codec"]) == ("mkv", "ffv1")  # lossless
    assert (run_dir / "resolved_config.yaml").is_file()


@pytest.mark.slow
def test_cli_default_backend_is_tiny_and_runs_offline(media, tmp_path, vgen_cache_dir):
    """No checkpoint, no network: the default backend builds its tiny models into the vgen cache."""
    run_dir = tmp_path / "run"
    result = run_vgen(
        f"input.video={media['clip']}", f"input.mask={media['mask']}", "input.end_frame=4", "device=cpu", *FAST_H264,
        f"hydra.run.dir={run_dir}", module="vgen.matte", cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty_hf")},
    )
    assert result.returncode == 0, result.stderr
    assert "built-in tiny random-init models: the matte is meaningless" in result.stderr
    row = check_row(run_dir)
    assert row["inputs"]["backend"]["name"] == "sam2_vitmatte"
    assert (row["inputs"]["backend"]["sam2_model"], row["inputs"]["backend"]["vitmatte_model"]) == (
        "builtin:tiny_sam2", "builtin:tiny_vitmatte")
    assert (vgen_cache_dir / "models" / "tiny_matte-v1" / "sam2" / "config.json").is_file()
    (alpha,) = artifacts_by_role(row)["mask_alpha"]
    assert alpha["frames"] == 4 and (alpha["width"], alpha["height"]) == (WIDTH, HEIGHT)


@pytest.mark.slow
def test_cli_prompts_save_the_prompt_mask_which_is_reusable_as_input_mask(media, tmp_path):
    """Two objects prompted on frame 6 (tiny models: the mask is noise, the path and shapes are real);
    the saved mask of frame 6 is a lossless black/white PNG that a second run takes as input.mask."""
    run_dir = tmp_path / "run"
    prompts = ["input.objects=[{points:[[20,20,1],[60,40,0]]},{box:[50,10,90,50]}]", "input.prompt_frame=6"]
    common = [f"input.video={media['clip']}", "input.start_frame=2", "input.end_frame=10", "device=cpu", *FAST_H264]
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = run_vgen(*common, *prompts, f"hydra.run.dir={run_dir}", module="vgen.matte", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    row = check_row(run_dir)
    assert row["inputs"]["request"]["objects"] == [{"points": [[20, 20, 1], [60, 40, 0]]}, {"box": [50, 10, 90, 50]}]
    assert row["inputs"]["request"]["prompt_frame"] == 6 and row["inputs"]["request"]["mask"] is None
    roles = artifacts_by_role(row)
    (mask,) = roles["prompt_mask"]
    assert mask["path"] == "mask_outputs/clip_prompt_mask.png" and (mask["width"], mask["height"]) == (WIDTH, HEIGHT)
    assert read_metadata(run_dir / mask["path"])["prompt_frame"] == 6
    pixels = np.asarray(Image.open(run_dir / mask["path"]))
    assert set(np.unique(pixels)) <= {0, 255}
    assert roles["mask_alpha"][0]["frames"] == 8  # frames 2..9, tracked forward and backward from 6

    if not pixels.any():  # random weights may mark nothing; the reuse needs a non-empty mask
        Image.fromarray(np.full_like(pixels, 255)).save(run_dir / mask["path"])
    rerun = tmp_path / "rerun"
    result = run_vgen(*common, f"input.mask={run_dir / mask['path']}", "input.prompt_frame=6",
                      f"hydra.run.dir={rerun}", module="vgen.matte", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "prompt_mask" not in artifacts_by_role(check_row(rerun))  # a given mask is not saved again


def test_cli_dry_run_prints_the_plan_imports_no_torch_and_writes_nothing(media, tmp_path):
    import subprocess
    import sys

    argv = ["vgen.matte", f"input.video={media['clip']}", f"input.mask={media['mask']}", "output.save_masks=true",
            "dry_run=true"]  # the default backend (tiny, not yet built): a dry run loads and builds nothing
    code = (
        "import sys, runpy\n"
        f"sys.argv = {argv!r}\n"
        "try:\n    runpy.run_module('vgen.matte', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('HEAVY', [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout and "nothing will be computed or written" in result.stdout
    assert '"name":"sam2_vitmatte"' in result.stdout and "frames [0, 28) at 24 fps" in result.stdout
    assert "clip_rgba.zip (rgba_archive)" in result.stdout and "clip_audio1_fra.wav" in result.stdout
    assert "clip_alpha.mkv (mask_alpha)" in result.stdout and "clip_foreground.mp4 (mask_foreground)" in result.stdout
    assert list(tmp_path.iterdir()) == []


def _colour_masks(media: dict, root: Path) -> dict[str, Path]:
    """Masks made by other tools: a red disc on black (Pillow), the moving square green on magenta
    (an H.264 video by ffmpeg)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    red_disc = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    red_disc[(yy - 20) ** 2 + (xx - 20) ** 2 <= 100] = (255, 0, 0)  # the square's place in frame 0
    Image.fromarray(red_disc).save(root / "red_disc.png")
    green_on_magenta = np.where(media["truth"][..., None], np.uint8([0, 255, 0]), np.uint8([255, 0, 255]))
    write_video(root / "green_on_magenta.mp4", green_on_magenta.astype(np.uint8))
    return {"red_disc": root / "red_disc.png", "green_on_magenta": root / "green_on_magenta.mp4"}


def _bad_inputs(media: dict, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    colour = _colour_masks(media, tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("definitely not a video\n" * 20)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(empty)
    small = tmp_path / "small.png"
    Image.fromarray(np.full((HEIGHT // 2, WIDTH // 2), 255, np.uint8)).save(small)
    return {
        "not_a_video": ([f"input.video={notes}", f"input.mask={media['mask_video']}"], r"input|video: .*notes\.txt is not"),
        "empty_mask": ([f"input.video={media['clip']}", f"input.mask={empty}"], r"mask: .*empty\.png is empty"),
        "range_out_of_bounds": (inputs_for(media, "input.start_frame=20", "input.end_frame=40"),
                                r"frame range \[20, 40\) is outside .*clip\.mkv, which has 28 frame"),
        "mask_size_mismatch": ([f"input.video={media['clip']}", f"input.mask={small}"],
                               r"mask: .*small\.png is 48x32 but .*clip\.mkv frames are 96x64"),
        "missing_checkpoint": ([f"input.video={media['clip']}", f"input.mask={media['mask']}", "input.end_frame=2",
                                "device=cpu", "matte/backend=sam2_vitmatte",
                                "matte.backend.sam2_model=no-such-org/sam2-missing",
                                f"matte.backend.cache_dir={tmp_path / 'hf'}"],
                               r"matte\.backend\.sam2_model: checkpoint 'no-such-org/sam2-missing' not found locally"
                               r".*set matte\.backend\.sam2_model=<local dir>; matte/backend=tiny runs offline"),
        "point_outside_frame": ([f"input.video={media['clip']}", "input.points=[[20,20,1],[200,5,0]]"],
                                r"input\.points\[1\]: \(200, 5\) is outside the 96x64 frame"),
        "mask_and_prompts": ([f"input.video={media['clip']}", f"input.mask={media['mask']}", "input.box=[0,0,40,40]"],
                             r"input\.mask: give a mask file or prompts .*not both"),
        "prompts_with_guided": ([f"input.video={media['clip']}", "input.box=[0,0,40,40]", "matte/backend=guided"],
                                r"backend 'guided' refines a per-frame mask video"),
        "temporal_strength": (inputs_for(media, "temporal_strength=1.5"),
                              r"temporal_strength: expected a number in \[0, 1\) \(0 = off\), got 1\.5"),
        "unknown_builtin": ([f"input.video={media['clip']}", f"input.mask={media['mask']}",
                             "matte.backend.vitmatte_model=builtin:huge"],
                            r"matte\.backend\.vitmatte_model: unknown built-in model 'builtin:huge' "
                            r"\(known: builtin:tiny_sam2, builtin:tiny_vitmatte\)"),
        # The matte keeps the source's timing (24 fps): a retimed video would not match its audio.
        "output_fps_retimes": (inputs_for(media, "output.fps=10"),
                               r"output\.fps=10 differs from the source's 24 fps; the matte keeps the source's"),
        "colour_mask_image": ([f"input.video={media['clip']}", f"input.mask={colour['red_disc']}"],
                              r"mask \(.*red_disc\.png\) is a colour image.*input\.mask_channel=r\|g\|b\|a\|luma"),
        "colour_mask_video": ([f"input.video={media['clip']}", f"input.mask={colour['green_on_magenta']}",
                               "matte/backend=guided"], r"mask \(.*green_on_magenta\.mp4\) is a colour image"),
        "bad_mask_channel": (inputs_for(media, "input.mask_channel=red"),
                             r"input\.mask_channel: expected null or one of r, g, b, a, luma, got 'red'"),
        "bad_alpha_output": (inputs_for(media, "alpha_output=ffv1"),
                             r"alpha_output: expected one of lossless, output, got 'ffv1'"),
    }


def check_refused(result, run_dir: Path, expected: str) -> str:
    """Exit 2, one ERROR line matching ``expected`` (returned), no traceback, nothing written."""
    import re

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and re.search(expected, errors[0]), result.stderr
    assert not (run_dir / "manifests").exists() and not (run_dir / "mask_outputs").exists()
    return errors[0]


def run_bad_input(media: dict, tmp_path: Path, case: str) -> str:
    """Run ``case`` of :func:`_bad_inputs` with ``attach_audio=true``; the checked error line."""
    overrides, expected = _bad_inputs(media, tmp_path)[case]
    run_dir = tmp_path / "run"
    result = run_vgen(*overrides, "attach_audio=true", f"hydra.run.dir={run_dir}", module="vgen.matte", cwd=tmp_path,
                      env={"HF_HUB_OFFLINE": "1"})
    return check_refused(result, run_dir, expected)


@pytest.mark.parametrize("case", ["not_a_video", "empty_mask", "range_out_of_bounds", "mask_size_mismatch",
                                  "output_fps_retimes", "colour_mask_image", "colour_mask_video", "bad_mask_channel",
                                  "bad_alpha_output", "unknown_builtin", "point_outside_frame", "mask_and_prompts",
                                  "prompts_with_guided", "temporal_strength"])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(media, tmp_path, case):
    run_bad_input(media, tmp_path, case)


@pytest.mark.slow
def test_cli_missing_checkpoint_names_a_key_the_command_line_accepts(media, tmp_path):
    import re

    error = run_bad_input(media, tmp_path, "missing_checkpoint")
    key = re.search(r"set (\S+)=<local dir>", error).group(1)
    cfg = compose_matte(f"{key}={tmp_path / 'sam2'}")  # what the message tells the user to type
    assert cfg.matte.backend.sam2_model == str(tmp_path / "sam2")


def test_cli_colour_mask_with_a_channel_picked_is_the_mask_without_a_ghost(media, tmp_path):
    colour = _colour_masks(media, tmp_path)
    run_dir = tmp_path / "run"
    result = run_vgen(f"input.video={media['clip']}", f"input.mask={colour['green_on_magenta']}", "matte/backend=guided",
                      "input.mask_channel=g", "input.end_frame=8", f"hydra.run.dir={run_dir}", module="vgen.matte",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = check_row(run_dir)
    assert row["inputs"]["request"]["mask_channel"] == "g"
    alpha = decode_video(run_dir / artifacts_by_role(row)["mask_alpha"][0]["path"])[..., 0] / 255.0
    truth = media["truth"][:8]
    assert iou(alpha, truth) > 0.9
    assert alpha[~truth].mean() < 0.02  # read as brightness, magenta was a 41% ghost


def test_cli_default_alpha_is_lossless_and_equals_the_archive_alpha(media, tmp_path):
    """The foreground keeps the lossy default preset (mp4/h264); the alpha is FFV1 gray in .mkv."""
    run_dir = tmp_path / "run"
    result = run_vgen(*inputs_for(media, "input.end_frame=10", "output.save_masks=true", *FAST_H264,
                                  f"hydra.run.dir={run_dir}"), module="vgen.matte", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    roles = artifacts_by_role(check_row(run_dir))
    (foreground,), (alpha,), (archive,) = roles["mask_foreground"], roles["mask_alpha"], roles["rgba_archive"]
    assert (foreground["container"], foreground["codec"]) == ("mp4", "h264")
    assert (alpha["container"], alpha["codec"], alpha["extra"]["pix_fmt"]) == ("mkv", "ffv1", "gray")
    assert alpha["path"].endswith("_alpha.mkv") and alpha["fps"] == pytest.approx(FPS)
    with zipfile.ZipFile(run_dir / archive["path"]) as bundle:
        archived = np.stack([np.asarray(Image.open(bundle.open(f"frame_{index:05d}.png")))[..., 3]
                             for index in range(10)])
    decoded = decode_video(run_dir / alpha["path"])
    np.testing.assert_array_equal(decoded[..., 0], archived)
    assert np.unique(archived).size > 20  # a soft matte, not only 0 and 255


def test_cli_attach_audio_on_a_silent_clip_says_there_is_no_audio(media, tmp_path):
    silent = tmp_path / "silent.mkv"
    write_video(silent, media["frames"][:6])
    run_dir = tmp_path / "run"
    result = run_vgen(f"input.video={silent}", f"input.mask={media['mask_video']}", "matte/backend=guided",
                      "attach_audio=true", *FAST_H264, f"hydra.run.dir={run_dir}", module="vgen.matte", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert any(f"attach_audio=true: {silent} has no audio to attach" in line for line in warnings), result.stderr
    roles = artifacts_by_role(check_row(run_dir))
    assert sorted(roles) == ["mask_alpha", "mask_foreground"]
    assert [s["type"] for s in probe(run_dir / roles["mask_foreground"][0]["path"])["streams"]] == ["video"]
