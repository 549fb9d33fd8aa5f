"""What the output key covers (docs/MANIFEST.md): output-changing settings change it, the rest does not."""

from __future__ import annotations

import pytest

from vgen.config.compose import compose_run_config
from vgen.production import ProductionManager

JOB = ["queue.jobs=[{prompt: fox}]"]


def key_for(tmp_path, *overrides: str) -> tuple[str, str]:
    """``(job_id, output_key)`` of the one job under ``overrides``."""
    manager = ProductionManager(compose_run_config(tmp_path, [*JOB, *overrides]), run_dir=tmp_path)
    (job,) = manager.jobs()
    return job.job_id, manager.job_output_key(job)


@pytest.fixture
def baseline(tmp_path):
    return key_for(tmp_path)


@pytest.mark.parametrize("override", [
    "model.source=/models/other", "model.revision=abc123", "model.variant=fp16", "+model.pipeline_kwargs.flow_shift=3",
    "runtime.dtype=bfloat16", "runtime.vae_tiling=true", "output=webm_vp9", "output.crf=30",
    "enhancer=smollm2", "enhancer=hf_llm enhancer.model=/models/qwen",
    "cache=first_block", "cache=taylorseer", "cache=fastercache",
])
def test_settings_that_change_the_output_change_the_key_not_the_job_id(tmp_path, baseline, override):
    job_id, key = key_for(tmp_path, *override.split())
    assert job_id == baseline[0] and key != baseline[1]


@pytest.mark.parametrize("override", [
    "runtime.dtype=float32",  # what auto resolves to on a CPU-only machine
    "model.name=my_label", "model.download_hint=x", "runtime.threads=1", "runtime.progress=false",
    "output.retries=5", "output.background_writer=false", "metadata=json", "enhancer.device=cpu",
    "enhancer.on_error=fail", "queue.on_error=stop", "cache=none", "runtime.attention=native",
])
def test_settings_that_do_not_change_the_output_keep_the_key(tmp_path, baseline, override):
    assert key_for(tmp_path, override) == baseline


def test_enhancer_text_settings_change_the_key(tmp_path):
    greedy = key_for(tmp_path, "enhancer=smollm2")
    assert key_for(tmp_path, "enhancer=smollm2", "enhancer.temperature=0.7") != greedy
    assert key_for(tmp_path, "enhancer=smollm2", "enhancer.device=cpu") == greedy


def test_a_conditioning_input_replaced_under_the_same_path_changes_the_key(tmp_path):
    from PIL import Image

    image = tmp_path / "start.png"
    Image.new("RGB", (64, 64), (200, 10, 10)).save(image)
    job = [f"queue.jobs=[{{prompt: fox, image: {image}}}]", "model=tiny_wan_i2v"]
    before = key_for(tmp_path, *job)
    Image.new("RGB", (64, 64), (10, 200, 10)).save(image)
    after = key_for(tmp_path, *job)
    assert after[0] == before[0] and after[1] != before[1]


def test_step_cache_settings_change_the_key(tmp_path):
    cached = key_for(tmp_path, "cache=first_block")
    assert key_for(tmp_path, "cache=first_block", "cache.threshold=0.1") != cached
