"""Every conditioned model config, run for real through ``python -m vgen`` on a tiny random-init pipeline.

Each case saves a tiny instance of the config's diffusers pipeline (see
``conditioned_model_builders``) and points ``model.source`` at it. Two jobs that differ only in
one conditioning input must give different videos: the input reached the pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

import conditioned_model_builders as builders
from conftest import REPO_ROOT, read_manifest, run_vgen
from media_fixtures import write_video
from vgen.media.probe import probe

BOAT = str(REPO_ROOT / "examples" / "boat.png")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """A mirrored boat, a 12-frame source video, a mask video (right half white) and a mask image."""
    folder = tmp_path_factory.mktemp("inputs")
    Image.open(BOAT).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mirrored.png")
    rng = np.random.default_rng(0)
    write_video(folder / "source.mkv", rng.integers(0, 255, (12, 48, 80, 3), dtype=np.uint8))
    mask = np.zeros((12, 48, 80, 3), np.uint8)
    mask[:, :, 40:] = 255
    write_video(folder / "mask.mkv", mask)
    Image.fromarray(mask[0]).save(folder / "mask.png")
    return {"boat": BOAT, "mirrored": str(folder / "mirrored.png"), "video": str(folder / "source.mkv"),
            "mask": str(folder / "mask.mkv"), "mask_image": str(folder / "mask.png")}


# model, builder, the two jobs' inputs (names from ``inputs`` in braces), expected pipeline class
CASES = [
    ("wan21_i2v_14b_480p", builders.build_wan_i2v, [{"image": "{boat}"}, {"image": "{mirrored}"}]),
    ("wan21_i2v_14b_720p", builders.build_wan_i2v, [{"image": "{boat}"}, {"image": "{mirrored}"}]),
    ("wan21_flf2v_14b_720p", builders.build_wan_flf2v,
     [{"image": "{boat}", "image_end": "{mirrored}"}, {"image": "{boat}", "image_end": "{boat}"}]),
    ("wan21_v2v_1_3b", builders.build_wan_v2v, [{"video": "{video}", "strength": 0.5}, {"video": "{video}", "strength": 0.9}]),
    ("wan21_vace_1_3b", builders.build_wan_vace,
     [{"video": "{video}", "mask": "{mask}", "images_ref": ["{boat}"]}, {"video": "{video}", "mask": "{mask_image}"}]),
    ("wan21_vace_14b", builders.build_wan_vace, [{"video": "{video}", "mask": "{mask}"}, {"images_ref": ["{mirrored}"]}]),
    ("wan22_t2v_a14b", builders.build_wan22_t2v, [{"guidance_scale_2": 3.0}, {"guidance_scale_2": 1.0}]),
    ("wan22_i2v_a14b", builders.build_wan22_i2v,
     [{"image": "{boat}", "guidance_scale_2": 3.5}, {"image": "{boat}", "image_end": "{mirrored}", "guidance_scale_2": 3.5}]),
    ("wan22_ti2v_5b", builders.build_wan22_ti2v, [{}, {"image": "{boat}"}]),
    ("ltx_video_i2v", builders.build_ltx_i2v, [{"image": "{boat}"}, {"image": "{mirrored}"}]),
    ("cogvideox_5b_i2v", builders.build_cogvideox_i2v, [{"image": "{boat}"}, {"image": "{mirrored}"}]),
]


def _flow(value, inputs):
    """A job's values with ``{name}`` replaced by the fixture's file paths, as a Hydra flow-style mapping."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item, inputs) for item in value) + "]"
    return value.format(**inputs) if isinstance(value, str) else str(value)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "build", "jobs"), CASES, ids=[case[0] for case in CASES])
def test_conditioned_config_generates_and_uses_its_inputs(tmp_path: Path, inputs, model, build, jobs):
    checkpoint = tmp_path / "checkpoint"
    build().save_pretrained(checkpoint)
    queue = ", ".join(
        "{prompt: a boat sails off" + "".join(f", {key}: {_flow(value, inputs)}" for key, value in job.items()) + "}"
        for job in jobs
    )
    run = tmp_path / "run"
    result = run_vgen(
        f"model={model}", f"model.source={checkpoint}", "runtime.progress=false", "generation.height=64",
        "generation.width=64", "generation.num_frames=9", "generation.steps=2", f"queue.jobs=[{queue}]",
        f"hydra.run.dir={run}", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = read_manifest(run)
    assert [row["status"] for row in rows] == ["success", "success"], [row.get("error") for row in rows]
    for row, job in zip(rows, jobs):
        assert set(job) <= set(row["inputs"]["job"])
        stream = probe(run / row["artifacts"][0]["path"])["streams"][0]
        assert (stream["frames"], stream["height"], stream["width"]) == (9, 64, 64)
    first, second = (row["artifacts"][0]["sha256"] for row in rows)
    assert first != second  # the differing input changed the video: it reached the pipeline
    model_cfg = OmegaConf.load(REPO_ROOT / "conf" / "model" / f"{model}.yaml")
    recorded = rows[0]["inputs"]["model"]
    for name, component in (model_cfg.get("components") or {}).items():
        assert recorded["components"][name] == component["dtype"]  # the model card's per-component dtype
    if model_cfg.get("scheduler"):
        assert recorded["scheduler"] == {"class_name": model_cfg.scheduler.class_name,
                                         "settings": dict(model_cfg.scheduler.settings)}


@pytest.mark.slow
def test_component_dtype_overrides_beside_a_bf16_pipeline(tmp_path: Path, inputs):
    """Wan I2V as its model card loads it: VAE and image encoder in float32, the rest in bfloat16."""
    checkpoint = tmp_path / "checkpoint"
    builders.build_wan_i2v().save_pretrained(checkpoint)
    run = tmp_path / "run"
    result = run_vgen(
        "model=wan21_i2v_14b_480p", f"model.source={checkpoint}", "runtime.dtype=bfloat16", "runtime.progress=false",
        "generation.height=64", "generation.width=64", "generation.num_frames=5", "generation.steps=1", f"queue.jobs=[{{prompt: a boat, image: {BOAT}}}]",
        f"hydra.run.dir={run}", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    [row] = read_manifest(run)
    assert row["status"] == "success", row.get("error")
    components = row["inputs"]["model"]["components"]
    assert (components["vae"], components["image_encoder"]) == ("float32", "float32")
    assert components["transformer"] == components["text_encoder"] == "bfloat16"


def test_unknown_component_or_scheduler_is_exit_2(tmp_path: Path):
    """A component the checkpoint lacks (the Wan 2.1 I2V config on a Wan 2.2 I2V checkpoint, which has no
    CLIP image encoder), a scheduler diffusers does not have, a dtype vgen does not know: exit 2, no rows."""
    checkpoint = tmp_path / "checkpoint"
    builders.build_wan22_i2v().save_pretrained(checkpoint)
    common = ["model=wan21_i2v_14b_480p", f"model.source={checkpoint}", f"queue.jobs=[{{prompt: x, image: {BOAT}}}]"]
    for extra, message in (([], "model.components.image_encoder: the checkpoint has no component 'image_encoder'"),
                           (["~model.components.image_encoder", "model.scheduler.class_name=UniPC"],
                            "diffusers has no scheduler named 'UniPC'"),
                           (["model.components.vae.dtype=float64"], "model.components.vae.dtype: expected one of")):
        result = run_vgen(*common, *extra, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert not (tmp_path / "run" / "manifests").exists()


@pytest.mark.slow
def test_matte_outputs_drive_a_vace_job(tmp_path: Path):
    """Generate a clip, matte it with the guided backend, then use its foreground and alpha videos as
    the ``video`` and ``mask`` of a tiny VACE job, with no conversion step in between."""
    generated = tmp_path / "generated"
    result = run_vgen("runtime.progress=false", "generation.num_frames=9", "generation.steps=2",
                      "queue.jobs=[{prompt: a boat}]", f"hydra.run.dir={generated}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    clip = generated / read_manifest(generated)[0]["artifacts"][0]["path"]
    rough = np.zeros((9, 64, 64, 3), np.uint8)
    rough[:, 16:48, 16:48] = 255  # a rough subject box the guided filter refines
    write_video(tmp_path / "rough.mkv", rough)
    matte = tmp_path / "matte"
    result = run_vgen(f"input.video={clip}", f"input.mask={tmp_path / 'rough.mkv'}", "matte/backend=guided",
                      f"hydra.run.dir={matte}", module="vgen.matte", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outputs = {artifact["role"]: matte / artifact["path"] for artifact in read_manifest(matte)[0]["artifacts"]}
    checkpoint = tmp_path / "vace"
    builders.build_wan_vace().save_pretrained(checkpoint)
    run = tmp_path / "run"
    result = run_vgen(
        "model=wan21_vace_1_3b", f"model.source={checkpoint}", "runtime.progress=false", "generation.height=64",
        "generation.width=64", "generation.num_frames=9", "generation.steps=2",
        f"queue.jobs=[{{prompt: a boat, video: {outputs['mask_foreground']}, mask: {outputs['mask_alpha']}}}]",
        f"hydra.run.dir={run}", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    [row] = read_manifest(run)
    assert row["status"] == "success", row.get("error")
    assert row["inputs"]["files"]["video"]["path"] == str(outputs["mask_foreground"])
    assert row["inputs"]["files"]["mask"]["frames"] == 9


@pytest.mark.slow
def test_two_expert_lora_phases_through_the_runner(tmp_path: Path):
    """Wan 2.2 A14B layout (tiny): a LoRA goes into both experts; "1;0" changes the video, "0;0" is
    bit-identical to no LoRA, and "0;1" (low-noise expert only) differs from both."""
    from lora_fixtures import make_lora_file

    pipe = builders.build_wan22_t2v()
    pipe.save_pretrained(tmp_path / "checkpoint")
    make_lora_file(pipe.transformer, tmp_path / "loras" / "detail.safetensors", seed=3)
    jobs = ("queue.jobs=[{prompt: a boat}, {prompt: a boat, loras: [{name: detail, weight: '1;0'}]},"
            "{prompt: a boat, loras: [{name: detail, weight: '0;0'}]}, {prompt: a boat, loras: [{name: detail, weight: '0;1'}]}]")
    run = tmp_path / "run"
    result = run_vgen("model=wan22_t2v_a14b", f"model.source={tmp_path / 'checkpoint'}", "runtime.progress=false",
                      "generation.height=64", "generation.width=64", "generation.num_frames=9", "generation.steps=4",
                      "generation.guidance_scale_2=2.0", f"lora.dirs=[{tmp_path / 'loras'}]", jobs,
                      f"hydra.run.dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    base, high_only, off, low_only = (decode(run / row["artifacts"][0]["path"]) for row in read_manifest(run))
    assert np.array_equal(base, off)
    assert not np.array_equal(base, high_only) and not np.array_equal(base, low_only)
    assert not np.array_equal(high_only, low_only)


def decode(path: Path) -> np.ndarray:
    from vgen.media.probe import decode_video

    return decode_video(path)
