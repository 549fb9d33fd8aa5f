"""Conditioning inputs: job keys, validation before loading, the fit policy, frame matching, records.

The end-to-end tests run ``python -m vgen`` with the built-in ``tiny_wan_i2v`` model (a real
``WanImageToVideoPipeline`` with tiny random weights) on real image and video files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, manifest_validator, read_manifest, run_vgen
from media_fixtures import write_video
from vgen.conditioning.fit import fit_image, fit_mask
from vgen.conditioning.media import load_image, load_video_frames
from vgen.conditioning.prepare import prepare_inputs
from vgen.conditioning.spec import conditioning_settings
from vgen.conditioning.validate import validate_job_inputs
from vgen.errors import ConfigError
from vgen.jobs.expand import expand_jobs

DEFAULTS = {"prompt": "", "negative_prompt": "", "height": 64, "width": 64, "num_frames": 9, "steps": 2,
            "guidance_scale": 5.0, "fps": 16, "seed": 1, "image": None, "image_end": None, "images_ref": None,
            "video": None, "mask": None, "strength": None, "guidance_scale_2": None, "fit": "crop",
            "loop_video": False}
BOAT = REPO_ROOT / "examples" / "boat.png"
T2V = SimpleNamespace(name="tiny_wan", size_multiple=16, frame_multiple=4)  # the shape rules of vgen.jobs.validation


def model(task: str, **inputs):
    from omegaconf import OmegaConf

    return OmegaConf.create({"name": f"m_{task}", "task": task, "inputs": inputs})


def queue(jobs=(), prompts_file=None):
    return SimpleNamespace(jobs=list(jobs), prompts_file=prompts_file, repeats=1, default_jobs=[])


def gradient(width: int, height: int) -> Image.Image:
    """An image whose every pixel says where it came from: red = x, green = y."""
    xs, ys = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))
    return Image.fromarray(np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8))


# ------------------------------------------------------------------------------------ job keys


def test_text_to_video_settings_and_job_ids_do_not_change():
    """Unset inputs are dropped, and fit/loop_video only kept with input files: a t2v job id is stable."""
    [job] = expand_jobs(queue([{"prompt": "a fox"}]), DEFAULTS, T2V)
    assert not {"image", "fit", "loop_video", "strength"} & set(job.settings)
    assert job.job_id == expand_jobs(queue([{"prompt": "a fox"}]), {k: DEFAULTS[k] for k in list(DEFAULTS)[:9]}, T2V)[0].job_id


def test_prompts_file_paths_are_relative_to_its_folder_and_csv_cells_are_typed(tmp_path, monkeypatch):
    shots = tmp_path / "shots"
    shots.mkdir()
    (shots / "list.csv").write_text("prompt,image,strength,images_ref,loop_video\n"
                                    "a boat,boat.png,0.5,a.png;b/c.png,true\n")
    monkeypatch.chdir(REPO_ROOT)
    [job] = expand_jobs(queue([{"prompt": "b", "video": "clip.mkv"}], prompts_file=str(shots / "list.csv")),
                        DEFAULTS, T2V)[1:]
    assert job.settings["image"] == str(shots / "boat.png")
    assert job.settings["images_ref"] == [str(shots / "a.png"), str(shots / "b" / "c.png")]
    assert job.settings["strength"] == 0.5 and job.settings["loop_video"] is True
    [first] = expand_jobs(queue([{"prompt": "b", "video": "clip.mkv"}]), DEFAULTS, T2V)
    assert first.settings["video"] == str(REPO_ROOT / "clip.mkv")  # queue.jobs: relative to the working dir


@pytest.mark.parametrize(("job", "match"), [
    ({"strength": 1.5}, r"queue.jobs\[0\].strength: must be in"),
    ({"strength": "lots"}, r"strength: expected a number"),
    ({"images_ref": []}, r"images_ref: expected a non-empty list"),
    ({"image": 3}, r"image: expected a file path"),
    ({"image": "a.png", "loop_video": "maybe"}, r"loop_video: expected true or false"),
])
def test_bad_conditioning_values_name_the_job_and_key(job, match):
    with pytest.raises(ConfigError, match=match):
        expand_jobs(queue([{"prompt": "x", **job}]), DEFAULTS, T2V)


def test_validation_against_the_model_declaration(tmp_path):
    i2v = model("i2v", image={"arg": "image", "required": True})
    settings = conditioning_settings({**DEFAULTS, "prompt": "x", "image": str(BOAT)}, "w")
    validate_job_inputs(0, settings, i2v)
    with pytest.raises(ConfigError, match=r"job\[3\]\.image: model m_t2v \(task t2v\) does not take image"):
        validate_job_inputs(3, settings, model("t2v"))
    with pytest.raises(ConfigError, match=r"job\[1\]\.image: .*requires image"):
        validate_job_inputs(1, conditioning_settings({**DEFAULTS, "prompt": "x"}, "w"), i2v)
    broken = tmp_path / "broken.png"
    broken.write_bytes(BOAT.read_bytes()[:200])  # a truncated PNG: identifiable, not decodable
    with pytest.raises(ConfigError, match=r"job\[0\]\.image: cannot decode image"):
        validate_job_inputs(0, {**settings, "image": str(broken)}, i2v)
    with pytest.raises(ConfigError, match=r"model.task: expected one of"):
        validate_job_inputs(0, settings, model("img2vid"))


def test_a_short_source_video_is_refused_unless_looped(tmp_path):
    clip = tmp_path / "five.mkv"
    write_video(clip, np.stack([np.full((32, 48, 3), 40 * i, np.uint8) for i in range(5)]))
    v2v = model("v2v", video={"arg": "video", "required": True})
    settings = conditioning_settings({**DEFAULTS, "prompt": "x", "video": str(clip)}, "w")
    with pytest.raises(ConfigError, match=r"job\[0\]\.video: .*has 5 frame\(s\), the job needs num_frames=9"):
        validate_job_inputs(0, settings, v2v)
    looped = {**settings, "loop_video": True}
    validate_job_inputs(0, looped, v2v)
    frames = prepare_inputs(looped, v2v).pipeline_kwargs["video"]
    levels = [int(np.asarray(frame).mean().round(-1)) for frame in frames]
    assert len(frames) == 9 and levels == [0, 40, 80, 120, 160, 0, 40, 80, 120]
    assert all(frame.size == (64, 64) and frame.mode == "RGB" for frame in frames)
    assert len(load_video_frames(clip, 3, loop=False)) == 3  # trimmed to the frames asked for


# ----------------------------------------------------------------------------------- fit policy


def test_fit_policies_crop_pad_stretch():
    source = gradient(200, 100)  # 2:1 into a square
    crop = np.asarray(fit_image(source, 64, 64, "crop")).astype(int)
    assert crop.shape == (64, 64, 3)
    assert 55 < crop[:, 0, 0].mean() < 75 and 180 < crop[:, -1, 0].mean() < 200  # the middle half of x
    assert crop[0, :, 1].mean() < 8 and crop[-1, :, 1].mean() > 247  # the full y range
    pad = np.asarray(fit_image(source, 64, 64, "pad")).astype(int)
    assert (pad[:16] == 0).all() and (pad[-16:] == 0).all()  # black bars above and below the 64x32 image
    assert pad[16:48, 0, 0].max() < 8 and pad[16:48, -1, 0].min() > 247
    stretch = np.asarray(fit_image(source, 64, 64, "stretch")).astype(int)
    assert stretch[:, 0, 0].max() < 8 and stretch[:, -1, 0].min() > 247 and stretch[-1, :, 1].min() > 247


def test_masks_are_binarised_and_padded_as_generate():
    soft = Image.fromarray(np.tile(np.linspace(0, 255, 100).astype(np.uint8), (50, 1)))
    mask = np.asarray(fit_mask(soft, 32, 32, "pad"))
    assert set(np.unique(mask)) == {0, 255} and mask.shape == (32, 32, 3)
    assert (mask[:8] == 255).all()  # padding: nothing there to keep, so the model generates it
    assert mask[16, 0, 0] == 0 and mask[16, -1, 0] == 255


def test_exif_orientation_and_rgb(tmp_path):
    """A portrait JPEG stored landscape with EXIF orientation 6 (rotate 90 CW), and a grey PNG with alpha."""
    landscape = Image.new("RGB", (60, 40), (250, 0, 0))
    landscape.paste((0, 0, 250), (0, 0, 30, 40))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    landscape.save(path, exif=exif.tobytes(), quality=95)
    upright = np.asarray(load_image(path)).astype(int)
    assert upright.shape == (60, 40, 3)
    assert upright[5, 20, 2] > 200 and upright[-5, 20, 0] > 200  # blue on top after the rotation
    rgba = tmp_path / "logo.png"
    Image.new("LA", (8, 8), (200, 0)).save(rgba)
    assert load_image(rgba).mode == "RGB"


# ------------------------------------------------------------------------------- end to end


def test_image_to_video_end_to_end_records_the_input(tmp_path):
    run = tmp_path / "run"
    result = run_vgen("model=tiny_wan_i2v", "runtime.progress=false", "generation.fit=pad",
                      f"queue.jobs=[{{prompt: a boat sails off, image: {BOAT}}}]", f"hydra.run.dir={run}",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [row] = read_manifest(run)
    manifest_validator().validate(row)
    assert row["inputs"]["job"]["image"] == str(BOAT) and row["inputs"]["job"]["fit"] == "pad"
    assert row["inputs"]["files"]["image"] == {
        "path": str(BOAT), "kind": "image", "bytes": BOAT.stat().st_size,
        "sha256": hashlib.sha256(BOAT.read_bytes()).hexdigest(),
    }
    assert "prepare_inputs_s" in row["timings"]
    from vgen.media.metadata_io import read_metadata

    assert read_metadata(run / row["artifacts"][0]["path"])["inputs"]["files"] == row["inputs"]["files"]


@pytest.mark.parametrize(("args", "message"), [
    (["'queue.jobs=[{prompt: x, image: /etc/shadow}]'"], "job[0].image: model tiny_wan (task t2v) does not take image"),
    (["model=tiny_wan_i2v", "'queue.jobs=[{prompt: x}, {prompt: y}]'", "generation.image=missing.png"],
     "job[0].image: no such file:"),
    (["model=tiny_wan_i2v", "'queue.jobs=[{prompt: x, image: " + str(BOAT) + "}, {prompt: y}]'"],
     "job[1].image: model tiny_wan_i2v (task i2v) requires image"),
])
def test_bad_inputs_exit_2_before_loading_and_write_nothing(tmp_path, args, message):
    run = tmp_path / "run"
    result = run_vgen(*[arg.strip("'") for arg in args], f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Loaded" not in result.stderr
    assert not (run / "manifests").exists() and not (run / "videos").exists()


def test_dry_run_lists_each_jobs_inputs(tmp_path):
    (tmp_path / "shots.jsonl").write_text(json.dumps({"prompt": "a boat", "image": "boat.png"}) + "\n")
    (tmp_path / "boat.png").write_bytes(BOAT.read_bytes())
    result = run_vgen("model=tiny_wan_i2v", "dry_run=true", "queue.jobs=[]", f"queue.prompts_file={tmp_path / 'shots.jsonl'}",
                      cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert f"inputs: image={tmp_path / 'boat.png'} (fit=crop, loop_video=False)" in result.stdout


# ------------------------------------------------------------------------------- reproducing


@pytest.fixture(scope="module")
def i2v_run(tmp_path_factory):
    """One i2v job on a copy of the example image, with the source image embedded in the video."""
    work = tmp_path_factory.mktemp("i2v")
    image = work / "start.png"
    image.write_bytes(BOAT.read_bytes())
    result = run_vgen("model=tiny_wan_i2v", "runtime.progress=false", "metadata.embed_source_images=true",
                      "generation.steps=2", "queue.jobs=[{prompt: a boat sails off, image: start.png}]",
                      f"hydra.run.dir={work / 'run'}", cwd=work)
    assert result.returncode == 0, result.stderr
    [row] = read_manifest(work / "run")
    return SimpleNamespace(work=work, image=image, run=work / "run", video=work / "run" / row["artifacts"][0]["path"])


def test_reproduce_an_i2v_job_from_the_video_alone(i2v_run, tmp_path):
    moved = tmp_path / "start.png.bak"
    i2v_run.image.rename(moved)  # the input file is gone: only the video holds it
    try:
        result = run_vgen(str(i2v_run.video), "--out", str(tmp_path / "again"), module="vgen.reproduce",
                          cwd=tmp_path, timeout=600)
    finally:
        moved.rename(i2v_run.image)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 artifact(s) identical" in result.stdout
    [row] = read_manifest(tmp_path / "again")
    assert row["inputs"]["job"]["image"].startswith(str(tmp_path / "again" / "source_images"))


def test_reproduce_refuses_a_changed_input(i2v_run, tmp_path):
    original = i2v_run.image.read_bytes()
    Image.open(BOAT).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(i2v_run.image)
    try:
        result = run_vgen(str(i2v_run.run), "--out", str(tmp_path / "again"), module="vgen.reproduce", cwd=tmp_path)
    finally:
        i2v_run.image.write_bytes(original)
    assert result.returncode == 2
    assert f"input image {i2v_run.image} changed since the run" in result.stderr
    assert not (tmp_path / "again").exists()
