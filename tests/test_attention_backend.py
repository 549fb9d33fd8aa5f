"""``runtime.attention``: native equals the default exactly; a missing package is exit 2 before loading."""

from __future__ import annotations

import importlib.util

import pytest

from vgen.speed.attention import BACKENDS, validate_attention
from vgen.config.compose import compose_run_config
from vgen.errors import ConfigError


def runtime(tmp_path, *overrides):
    return compose_run_config(tmp_path, list(overrides)).runtime


def test_native_equals_the_default_exactly():
    import numpy as np
    import torch
    from diffusers import WanPipeline
    from omegaconf import OmegaConf

    from vgen.speed.attention import apply_attention_backend
    from vgen.models.tiny_wan import ensure_tiny_wan

    pipe = WanPipeline.from_pretrained(ensure_tiny_wan(), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    outputs = {}
    for name in ("default", "native", "_native_math", "default"):
        apply_attention_backend(pipe, OmegaConf.create({"attention": name, "device": "cpu"}))
        outputs.setdefault(name, []).append(pipe(
            prompt="a fox", height=32, width=32, num_frames=5, num_inference_steps=3, output_type="np",
            generator=torch.Generator().manual_seed(1)).frames[0])
    assert np.array_equal(outputs["native"][0], outputs["default"][0])
    assert np.array_equal(outputs["default"][1], outputs["default"][0])  # reset really resets
    assert np.allclose(outputs["_native_math"][0], outputs["default"][0], atol=1e-4)


MISSING = [name for name, backend in BACKENDS.items()
           if backend.module and importlib.util.find_spec(backend.module) is None]


@pytest.mark.skipif(not MISSING, reason="every optional attention package is installed here")
def test_missing_package_is_exit_2_naming_knob_package_and_pip(tmp_path):
    from conftest import run_vgen

    name = MISSING[0]
    backend = BACKENDS[name]
    run_dir = tmp_path / "run"
    result = run_vgen(f"hydra.run.dir={run_dir}", "runtime.device=cuda", f"runtime.attention={name}",
                      "queue.jobs=[{prompt: a fox}]", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"runtime.attention={name}" in result.stderr and repr(backend.module) in result.stderr
    assert backend.pip in result.stderr
    assert not run_dir.exists() or not any(run_dir.glob("**/*.jsonl"))


@pytest.mark.parametrize(("overrides", "message"), [
    (["runtime.attention=flash_hub"], "runtime.attention: expected default or one of"),
    (["runtime.attention=_native_cudnn", "runtime.device=cpu"], "runs on CUDA only"),
])
def test_bad_attention_settings(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_attention(runtime(tmp_path, *overrides))
