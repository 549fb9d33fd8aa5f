"""Step caches (``cache=...``): each skips transformer work on a 20-step tiny job, checked before loading,
reapplied per job on the resident pipeline (a threshold sweep loads once), recorded in the output key."""

from __future__ import annotations

import contextlib
import io
import ast

import pytest
from omegaconf import OmegaConf

from vgen.config.compose import compose_run_config
from vgen.errors import ConfigError
from vgen.speed.step_cache import apply_step_cache, validate_cache_config

STEPS = 20
SHAPE = dict(height=32, width=32, num_frames=5)


def cache_settings(tmp_path, *overrides) -> dict:
    return OmegaConf.to_container(compose_run_config(tmp_path, ["runtime.device=cpu", *overrides]).cache)


@pytest.fixture(scope="module")
def tiny_pipe():
    import torch
    from diffusers import WanPipeline

    from vgen.models.tiny_wan import ensure_tiny_wan
    from vgen.speed.probe import BlockWorkCounter

    pipe = WanPipeline.from_pretrained(ensure_tiny_wan(), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    counter = BlockWorkCounter(pipe)

    def generate(cache: dict):
        apply_step_cache(pipe, cache, steps=STEPS)
        counter.take()
        frames = pipe(prompt="a red fox running through fresh snow", num_inference_steps=STEPS, output_type="np",
                      generator=torch.Generator().manual_seed(7), **SHAPE).frames[0]
        return frames, counter.take()

    return generate


@pytest.fixture(scope="module")
def uncached(tiny_pipe):
    return tiny_pipe({"name": "none"})


def calibrated_mag_ratios(tiny_pipe, settings: dict) -> list[float]:
    """MagCache's own calibration run on the tiny model (it prints the ratios it measured)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        tiny_pipe({**settings, "calibrate": True})
    ratios = ast.literal_eval(printed.getvalue().strip().splitlines()[-1])
    assert len(ratios) == STEPS
    return ratios


@pytest.mark.parametrize("name", ["first_block", "taylorseer", "magcache", "fastercache"])
def test_each_cache_skips_transformer_work(name, tiny_pipe, uncached, tmp_path):
    from vgen.speed.probe import psnr

    settings = cache_settings(tmp_path, f"cache={name}")
    if name == "magcache":
        settings["mag_ratios"] = calibrated_mag_ratios(tiny_pipe, settings)
    frames, calls = tiny_pipe(settings)
    reference, reference_calls = uncached
    skipped = 1 - calls / reference_calls
    quality = psnr(reference, frames)
    print(f"cache={name}: {skipped:.0%} of block work skipped, PSNR {quality:.1f} dB vs uncached")
    assert 0 < skipped < 1
    assert 20 < quality < float("inf")  # changed the output, but not into something else


def test_cache_none_after_a_cache_restores_the_uncached_output(tiny_pipe, uncached, tmp_path):
    import numpy as np

    tiny_pipe(cache_settings(tmp_path, "cache=first_block"))
    frames, calls = tiny_pipe(cache_settings(tmp_path, "cache=none"))
    assert calls == uncached[1] and np.array_equal(frames, uncached[0])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["cache=first_block", "cache.max_order=2"], "cache.max_order is not a setting of cache=first_block"),
        (["cache=first_block", "cache.threshold=0"], "cache.threshold=0"),
        (["cache=magcache"], "cache.mag_ratios: MagCache needs"),
        (["cache=magcache", "cache.mag_ratios=[1.0]", "cache.retention_ratio=1.5"], "cache.retention_ratio=1.5"),
        (["cache=taylorseer", "cache.cache_interval=0"], "cache.cache_interval must be >= 1"),
        (["cache=fastercache", "cache.spatial_attention_timestep_skip_range=[600,100]"],
         "spatial_attention_timestep_skip_range"),
    ],
)
def test_bad_cache_settings_name_the_key(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        validate_cache_config(compose_run_config(tmp_path, overrides).cache)


def test_bad_cache_setting_is_exit_2_before_loading(tmp_path):
    from conftest import run_vgen

    run_dir = tmp_path / "run"
    result = run_vgen(f"hydra.run.dir={run_dir}", "runtime.device=cpu", "cache=magcache",
                      "queue.jobs=[{prompt: a fox}]", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "cache.mag_ratios" in result.stderr
    assert not (run_dir / "manifests").exists() and not (run_dir / "videos").exists()


def test_sweep_over_cache_and_attention_reuses_the_resident_pipeline(tmp_path):
    """Sweep points (one process, as Hydra's basic launcher runs them) reconfigure, never reload."""
    from vgen.production import ProductionManager
    from vgen.resident import ResidentModels
    from vgen.speed.probe import BlockWorkCounter

    resident = ResidentModels()
    job = ["runtime.device=cpu", "queue.jobs=[{prompt: a red fox, steps: 12, height: 32, width: 32, num_frames: 5}]"]
    points = [[], ["cache=first_block", "cache.threshold=0.05"], ["cache=first_block", "cache.threshold=0.5"],
              ["runtime.attention=native"], ["runtime.attention=_native_math", "cache=taylorseer"]]
    counter, work, rows = None, [], []
    for number, point in enumerate(points):
        manager = ProductionManager(compose_run_config(tmp_path / str(number), [*job, *point]),
                                    run_dir=tmp_path / str(number), resident=resident)
        (spec,) = manager.jobs()
        manager.load_pipeline()
        if counter is None:
            counter = BlockWorkCounter(manager.pipeline()[0])
        result = manager.run_generation(spec)
        work.append(counter.take())
        rows.append(manager.persist(result, manager.media_context()))
    assert resident.pipelines.loads == 1
    print("block linear calls per sweep point:", work)
    assert work[0] >= work[1] > work[2] and work[3] == work[0] and work[4] < work[0]
    assert [row["inputs"]["output_recipe"].get("cache", {}).get("threshold") for row in rows[:3]] == [None, 0.05, 0.5]
    assert rows[3]["output_key"] == rows[0]["output_key"]
