"""``runtime.compile``: regional compilation runs, and a LoRA hotswap afterwards does not recompile;
bad combinations are refused before loading; the mode is part of the pipeline cache key."""

from __future__ import annotations

import pytest

from lora_fixtures import make_lora_file
from vgen.speed.compilation import validate_compile
from vgen.config.compose import compose_run_config
from vgen.errors import ConfigError


def runtime(tmp_path, *overrides):
    return compose_run_config(tmp_path, ["runtime.device=cpu", *overrides]).runtime


@pytest.mark.slow
def test_lora_hotswap_after_regional_compile_does_not_recompile(tmp_path):
    import numpy as np
    import torch
    from diffusers import WanPipeline
    from torch._dynamo.utils import counters

    from vgen.speed.compilation import compile_pipeline
    from vgen.models.tiny_wan import ensure_tiny_wan

    pipe = WanPipeline.from_pretrained(ensure_tiny_wan(), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    first = make_lora_file(pipe.transformer, tmp_path / "a.safetensors", seed=1)
    second = make_lora_file(pipe.transformer, tmp_path / "b.safetensors", seed=2)
    compile_pipeline(pipe, runtime(tmp_path, "runtime.compile=regional", "runtime.lora_max_rank=8"))
    pipe.load_lora_weights(str(first), adapter_name="style")

    def generate():
        return pipe(prompt="a red fox", height=32, width=32, num_frames=5, num_inference_steps=2, output_type="np",
                    generator=torch.Generator().manual_seed(0)).frames[0]

    torch._dynamo.reset()
    counters.clear()
    with_first = generate()
    compiled_frames = counters["stats"]["unique_graphs"]
    assert compiled_frames > 0  # the repeated blocks really were compiled
    pipe.load_lora_weights(str(second), adapter_name="style", hotswap=True)
    with_second = generate()
    assert counters["stats"]["unique_graphs"] == compiled_frames  # no recompilation
    assert not counters["recompiles"]
    assert not np.array_equal(with_first, with_second)  # the swap took effect


@pytest.mark.parametrize(("overrides", "message"), [
    (["runtime.compile=max"], "runtime.compile: expected one of off, regional, full"),
    (["runtime.compile=regional", "runtime.offload=sequential"], "with runtime.offload=sequential"),
    (["runtime.compile=full", "runtime.lora_max_rank=0"], "runtime.lora_max_rank=0"),
])
def test_bad_compile_settings(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_compile(runtime(tmp_path, *overrides))


def test_compile_is_in_the_pipeline_key_not_the_output_key(tmp_path):
    from vgen.speed.compilation import cache_key
    from vgen.production import ProductionManager

    assert cache_key(runtime(tmp_path)) == "off"
    assert cache_key(runtime(tmp_path, "runtime.compile=regional")) == "regional,lora_max_rank=128"
    keys = []
    for overrides in ([], ["runtime.compile=regional"]):
        manager = ProductionManager(compose_run_config(tmp_path, ["queue.jobs=[{prompt: fox}]", *overrides]),
                                    run_dir=tmp_path)
        (job,) = manager.jobs()
        keys.append(manager.job_output_key(job))
    assert keys[0] == keys[1]
