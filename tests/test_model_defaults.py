"""Per-model generation defaults (``model.generation_defaults``) and their precedence:
command line > experiment > the model's defaults > conf/config.yaml ``generation``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from conftest import read_manifest, run_vgen
from test_config import compose_vgen, options
from vgen.conditioning.spec import job_inputs
from vgen.conditioning.validate import declared_inputs
from vgen.config.compose import compose_run_config
from vgen.config.model_defaults import generation_sources
from vgen.jobs.expand import expand_jobs
from vgen.media.probe import probe
from vgen.plan import format_generation_sources

WAN_NEGATIVE_START = "Bright tones, overexposed, static, blurred details"
# A model that declares no defaults keeps conf/config.yaml's values, so tiny_wan's job ids stay
# what they were before model defaults existed (this id was printed by the dry run of that code).
TINY_WAN_DEFAULT_JOB_ID = "d67d3f8c52abf21c"
TEST_MODEL = """\
defaults:
  - base_model
  - _self_
name: tiny_wan_defaults
family: wan
pipeline_class: WanPipeline
source: builtin:tiny_wan
task: t2v
frame_multiple: 4
size_multiple: 16
generation_defaults:
  negative_prompt: "from the test model"
  height: 32
  width: 48
  num_frames: 5
  steps: 2
  guidance_scale: 3.0
  fps: 8
"""


def placeholder_inputs(model_cfg) -> dict:
    """A job's required file inputs (paths only: expanding a queue does not open them)."""
    files = {"image": "first.png", "image_end": "last.png", "video": "source.mp4", "mask": "mask.png",
             "images_ref": ["ref.png"]}
    return {key: files[key] for key, spec in declared_inputs(model_cfg).items() if spec.get("required")}


# ---------------------------------------------------------------------------------- every model config


@pytest.mark.parametrize("name", options("model"))
def test_every_model_config_default_job_is_valid_and_uses_its_defaults(name, tmp_path):
    """The model's defaults satisfy its own size/frame rules and inputs, and are what its jobs get."""
    cfg = compose_run_config(tmp_path, [f"model={name}"])
    defaults = {key: value for key, value in OmegaConf.to_container(cfg.model.generation_defaults).items()
                if value is not None}
    job = {"prompt": "a default job", **placeholder_inputs(cfg.model)}
    queue = SimpleNamespace(jobs=[job], prompts_file=None, default_jobs=[], grid=None, repeats=1)
    [spec] = expand_jobs(queue, OmegaConf.to_container(cfg.generation, resolve=True), cfg.model)
    for key, value in defaults.items():
        assert spec.settings[key] == value, key
    assert set(job_inputs(spec.settings)) <= set(declared_inputs(cfg.model))  # e.g. strength, guidance_scale_2
    real_model = not cfg.model.source.startswith("builtin:")
    assert bool(defaults) == real_model  # every real model says its card's settings; the tiny ones keep 64x64


def test_wan_configs_share_the_official_negative_prompt():
    for name in options("model"):
        cfg = compose_vgen([f"model={name}"])
        if cfg.model.family == "wan" and not cfg.model.source.startswith("builtin:"):
            assert cfg.model.generation_defaults.negative_prompt.startswith(WAN_NEGATIVE_START), name


@pytest.mark.parametrize("override", ["model.generation_defaults.heigth=480", "model.generation_defaults.steps=many"])
def test_a_misspelt_or_mistyped_model_default_fails_at_compose_time(override):
    with pytest.raises((ConfigCompositionException, ValidationError, ConfigKeyError)) as info:
        compose_vgen([override])
    assert override.split("=")[0].split(".")[-1] in str(info.value) + str(info.value.__cause__)


# ---------------------------------------------------------------------------------- precedence, unit level


def test_sources_follow_the_precedence_chain(tmp_path):
    overrides = ["model=wan21_t2v_1_3b", "+experiment=wan21_480p", "generation.fps=8",
                 "model.generation_defaults.negative_prompt=null", "model.generation_defaults.guidance_scale_2=2.5"]
    cfg = compose_run_config(tmp_path, overrides)
    sources = generation_sources(cfg, overrides)
    assert sources["fps"] == (8, "command line")
    assert sources["steps"] == (30, "experiment")  # the model says 50
    assert sources["guidance_scale_2"] == (2.5, "model wan21_t2v_1_3b")
    assert sources["negative_prompt"] == ("blurry, low quality, distorted", "config.yaml")
    assert sources["strength"] == (None, "config.yaml")
    lines = format_generation_sources(cfg, overrides)
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "command line", "experiment", "model wan21_t2v_1_3b", "config.yaml"]


def test_a_null_model_default_falls_back_to_config_yaml(tmp_path):
    cfg = compose_run_config(tmp_path, ["model=wan21_t2v_1_3b", "model.generation_defaults.steps=null"])
    assert cfg.generation.steps == 4 and cfg.generation.height == 480


# ---------------------------------------------------------------------------------- through python -m vgen


def dry_run(tmp_path: Path, *args: str) -> str:
    result = run_vgen("dry_run=true", "queue.jobs=[{prompt: a fox}]", f"hydra.run.dir={tmp_path / 'run'}", *args,
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "run").exists()
    return result.stdout


def test_dry_run_model_default_applies(tmp_path):
    out = dry_run(tmp_path, "model=wan21_t2v_1_3b")
    assert " 832x480x81 fps=16 steps=50 cfg=5.0 " in out
    assert "  model wan21_t2v_1_3b: negative_prompt='" + WAN_NEGATIVE_START in out
    assert "height=480 width=832 num_frames=81 steps=50 guidance_scale=5.0 fps=16" in out


def test_dry_run_experiment_overrides_the_model_default(tmp_path):
    out = dry_run(tmp_path, "+experiment=wan21_480p")  # steps 30 where the model says 50
    assert " 832x480x81 fps=16 steps=30 cfg=5.0 " in out
    assert "  experiment: height=480 width=832 num_frames=81 steps=30 guidance_scale=5.0 fps=16" in out


def test_dry_run_command_line_overrides_experiment_and_model(tmp_path):
    out = dry_run(tmp_path, "+experiment=wan21_480p", "generation.steps=7", "generation.height=256",
                  "generation.negative_prompt=mine")
    assert " 832x256x81 fps=16 steps=7 cfg=5.0 " in out
    assert "  command line: negative_prompt='mine' height=256 steps=7" in out


def test_dry_run_model_without_defaults_uses_config_yaml(tmp_path):
    out = dry_run(tmp_path, "model=tiny_wan", "queue.jobs=[{prompt: a}]")
    assert f" {TINY_WAN_DEFAULT_JOB_ID} seed=42 64x64x9 fps=16 steps=4 cfg=5.0 " in out
    assert "  config.yaml: negative_prompt='blurry, low quality, distorted' height=64 width=64 num_frames=9" in out


# ---------------------------------------------------------------------------------- a real tiny run


@pytest.mark.slow
def test_model_defaults_reach_the_pipeline_manifest_and_reruns(tmp_path):
    """A test-only model config (on hydra.searchpath) with defaults, run for real on the tiny pipeline."""
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "tiny_wan_defaults.yaml").write_text(TEST_MODEL)
    run_dir = tmp_path / "run"
    args = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "model=tiny_wan_defaults", "runtime.progress=false",
            "metadata=json", "queue.jobs=[{prompt: one},{prompt: two, steps: 3}]", "generation.fps=12"]
    result = run_vgen(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_manifest(run_dir)
    jobs = [row["inputs"]["job"] for row in rows]
    for job, steps in zip(jobs, (2, 3)):  # the job's own key beats the model's default
        assert (job["height"], job["width"], job["num_frames"], job["steps"]) == (32, 48, 5, steps)
        assert (job["guidance_scale"], job["fps"], job["negative_prompt"]) == (3.0, 12, "from the test model")
    stream = probe(run_dir / rows[0]["artifacts"][0]["path"])["streams"][0]
    assert (stream["frames"], stream["height"], stream["width"], stream["fps"]) == (5, 32, 48, 12.0)
    resolved = OmegaConf.load(run_dir / "resolved_config.yaml")
    assert (resolved.generation.height, resolved.generation.fps, resolved.model.generation_defaults.fps) == (32, 12, 8)
    sidecar = json.loads((run_dir / (rows[0]["artifacts"][0]["path"] + ".json")).read_text())
    assert sidecar["config"]["generation"]["num_frames"] == 5

    # Resume in place: the saved task overrides reapply (hydra.* ones, like the search path, are not saved).
    resumed = run_vgen(args[0], f"hydra.run.dir={run_dir}", "queue.resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(read_manifest(run_dir)) == 2  # both jobs found done under the same ids: nothing reran

    again = run_vgen(str(run_dir), "--out", str(tmp_path / "again"), module="vgen.reproduce", cwd=tmp_path)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "2 of 2 artifact(s) identical" in again.stdout
