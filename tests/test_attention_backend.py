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
    for name in ("default", "native", "_native_math", "_native_flash", "default"):
        apply_attention_backend(pipe, OmegaConf.create({"attention": name, "device": "cpu"}))
        outputs.setdefault(name, []).append(pipe(
            prompt="a fox", height=32, width=32, num_frames=5, num_inference_steps=3, output_type="np",
            generator=torch.Generator().manual_seed(1)).frames[0])
    assert np.array_equal(outputs["native"][0], outputs["default"][0])
    assert np.array_equal(outputs["default"][1], outputs["default"][0])  # reset really resets
    assert np.allclose(outputs["_native_math"][0], outputs["default"][0], atol=1e-4)
    assert np.allclose(outputs["_native_flash"][0], outputs["default"][0], atol=1e-4)  # torch's CPU flash kernel


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
    (["runtime.attention=xformers", "runtime.device=cpu"], "runs on CUDA only, but runtime.device=cpu"),
])
def test_bad_attention_settings(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_attention(runtime(tmp_path, *overrides))


CPU_ONLY = pytest.mark.skipif("__import__('torch').cuda.is_available()",  # evaluated when the test runs
                              reason="this machine has a CUDA device: device=auto resolves to cuda")


@CPU_ONLY
def test_device_auto_is_resolved_for_a_cuda_only_backend_unless_asked_not_to(tmp_path):
    cfg = runtime(tmp_path, "runtime.attention=_native_cudnn")
    assert cfg.device == "auto"
    assert validate_attention(cfg) == "_native_cudnn"  # unresolved (a dry run): torch is not imported for it
    with pytest.raises(ConfigError, match="runtime.device=auto found no CUDA device"):
        validate_attention(cfg, resolve_auto=True)


CUDA_ONLY_ON_CPU = [("_native_cudnn", None)] + [(name, BACKENDS[name]) for name in MISSING[:1]]


@CPU_ONLY
@pytest.mark.parametrize(("name", "backend"), CUDA_ONLY_ON_CPU, ids=[name for name, _ in CUDA_ONLY_ON_CPU])
def test_cuda_only_backend_with_device_auto_on_a_cpu_machine_is_exit_2_before_loading(tmp_path, name, backend):
    """Before, diffusers met the backend only once the model had loaded (``_native_cudnn``: the job
    failed; ``flash``: exit 2 naming only the package)."""
    from conftest import run_vgen
    from test_validation_cli import assert_refused

    run_dir, cache = tmp_path / "run", tmp_path / "model_cache"
    result = run_vgen(f"hydra.run.dir={run_dir}", "runtime.progress=false", f"runtime.attention={name}",
                      "queue.jobs=[{prompt: a fox, steps: 2, height: 32, width: 32, num_frames: 5}]", cwd=tmp_path,
                      env={"VGEN_CACHE_DIR": str(cache)})
    needles = [f"runtime.attention={name} runs on CUDA only", "runtime.device=auto found no CUDA device"]
    if backend is not None:
        needles += [f"it also needs the {backend.module!r} package", backend.pip]
    assert_refused(result, run_dir, *needles)
    assert not cache.exists() or not any(cache.rglob("*.safetensors"))  # the tiny model was never built or loaded


def test_a_dry_run_does_not_resolve_device_auto_and_imports_no_torch(tmp_path):
    from conftest import run_vgen

    result = run_vgen("dry_run=true", "runtime.attention=_native_cudnn", "queue.jobs=[{prompt: a fox}]", cwd=tmp_path,
                      env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert imported and "torch" not in imported


@pytest.mark.slow
@pytest.mark.parametrize("name", ["default", "native"])
def test_device_auto_with_a_backend_that_runs_on_cpu_generates(tmp_path, name):
    from conftest import read_manifest, run_vgen

    run_dir = tmp_path / "run"
    result = run_vgen(f"hydra.run.dir={run_dir}", "runtime.progress=false", f"runtime.attention={name}",
                      "queue.jobs=[{prompt: a fox, steps: 2, height: 32, width: 32, num_frames: 5}]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = read_manifest(run_dir)
    assert row["status"] == "success"
