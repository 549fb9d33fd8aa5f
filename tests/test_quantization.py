"""``runtime.quantization``: int8 weight-only runs and stays close; a GGUF transformer file written here
loads and runs; CUDA-only modes and missing packages are exit 2 before loading; the cache key covers it."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from vgen.config.compose import compose_run_config
from vgen.errors import ConfigError
from vgen.speed.quantization import validate_quantization

JOB = dict(prompt="a red fox", height=32, width=32, num_frames=5, num_inference_steps=4, output_type="np")

# diffusers names -> the original Wan checkpoint names GGUF files use (inverse of diffusers' converter)
WAN_ORIGINAL_NAMES = [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn2", "cross_attn"), ("attn1", "self_attn"), (".to_out.0.", ".o."), (".to_q.", ".q."), (".to_k.", ".k."),
    (".to_v.", ".v."), ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2"),
    ("norm2", "norm__placeholder"), ("norm3", "norm2"), ("norm__placeholder", "norm3"),
]


def original_wan_name(name: str) -> str:
    if name == "scale_shift_table":
        return "head.modulation"
    if name.startswith("proj_out."):
        return "head.head." + name[len("proj_out."):]
    name = name.replace("scale_shift_table", "modulation")
    for diffusers_name, original in WAN_ORIGINAL_NAMES:
        name = name.replace(diffusers_name, original)
    return name


def write_wan_gguf(transformer, path) -> int:
    """Write the transformer as a GGUF file the way conversion tools do: Q8_0 where a row splits into
    32-value blocks, F32 elsewhere. Returns how many tensors were quantized."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch="wan")
    quantized = 0
    for name, tensor in transformer.state_dict().items():
        data = tensor.detach().float().numpy()
        if data.ndim == 2 and data.shape[-1] % 32 == 0:
            writer.add_tensor(original_wan_name(name), gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            quantized += 1
        else:
            writer.add_tensor(original_wan_name(name), data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return quantized


def runtime(tmp_path, *overrides):
    return compose_run_config(tmp_path, ["runtime.device=cpu", *overrides]).runtime


def generate(runtime_cfg):
    import torch
    from omegaconf import OmegaConf

    from vgen.devices import resolve_placement
    from vgen.models.loader import load_pipeline

    model_cfg = OmegaConf.create({"source": "builtin:tiny_wan", "pipeline_class": "WanPipeline", "variant": None,
                                  "name": "tiny_wan", "revision": None, "local_files_only": True})
    pipe = load_pipeline(model_cfg, resolve_placement(runtime_cfg), None, runtime_cfg)
    frames = pipe(generator=torch.Generator().manual_seed(3), **JOB).frames[0]
    return pipe, frames


@pytest.fixture(scope="module")
def unquantized(tmp_path_factory):
    return generate(runtime(tmp_path_factory.mktemp("plain")))


@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao (vgen[quantization]) not installed")
def test_int8_weight_only_runs_and_stays_close(tmp_path, unquantized):
    from vgen.speed.probe import psnr

    pipe, frames = generate(runtime(tmp_path, "runtime.quantization.transformer=int8",
                                    "runtime.quantization.text_encoder=int8"))
    assert "Int8" in type(pipe.transformer.blocks[0].ffn.net[2].weight).__name__
    assert "Int8" in type(pipe.text_encoder.encoder.block[0].layer[1].DenseReluDense.wo.weight).__name__
    quality = psnr(unquantized[1], frames)
    print(f"int8 weight-only transformer + text encoder: PSNR {quality:.1f} dB vs float32")
    assert 25 < quality < float("inf")


@pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="gguf not installed")
def test_gguf_transformer_file_loads_and_runs(tmp_path, unquantized):
    from vgen.speed.probe import psnr

    path = tmp_path / "wan-tiny-Q8_0.gguf"
    assert write_wan_gguf(unquantized[0].transformer, path) > 0
    pipe, frames = generate(runtime(tmp_path, "runtime.quantization.transformer=gguf",
                                    f"runtime.quantization.gguf_file={path}"))
    assert type(pipe.transformer.blocks[0].ffn.net[2].weight).__name__ == "GGUFParameter"
    quality = psnr(unquantized[1], frames)
    print(f"GGUF Q8_0 transformer: PSNR {quality:.1f} dB vs float32")
    assert 25 < quality < float("inf")


@pytest.mark.parametrize(("overrides", "message"), [
    (["runtime.quantization.transformer=nf4"], "runtime.quantization.transformer=nf4 "),
    (["runtime.quantization.text_encoder=fp8"], "runtime.quantization.text_encoder=fp8 "),
    (["runtime.quantization.transformer=int4"], "runtime.quantization.transformer: expected one of"),
    (["runtime.quantization.transformer=gguf"], "runtime.quantization.gguf_file: set it"),
    (["runtime.quantization.transformer=gguf", "runtime.quantization.gguf_file=/nonexistent.gguf"], "no such file"),
])
def test_bad_quantization_settings(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_quantization(runtime(tmp_path, *overrides))


def test_nf4_on_cpu_is_exit_2_before_loading(tmp_path):
    from conftest import run_vgen

    run_dir = tmp_path / "run"
    result = run_vgen(f"hydra.run.dir={run_dir}", "runtime.device=cpu", "runtime.quantization.transformer=nf4",
                      "queue.jobs=[{prompt: a fox}]", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "runtime.quantization.transformer=nf4" in result.stderr
    assert ("bitsandbytes" in result.stderr and "pip install" in result.stderr) or "CUDA only" in result.stderr
    assert not any(run_dir.glob("**/*.jsonl"))


def test_quantization_is_in_the_pipeline_key_and_the_output_key(tmp_path):
    from vgen.production import ProductionManager
    from vgen.speed.quantization import cache_key

    assert cache_key(runtime(tmp_path)) == "none"
    assert cache_key(runtime(tmp_path, "runtime.quantization.transformer=int8")) != "none"
    keys = []
    for overrides in ([], ["runtime.quantization.text_encoder=int8"]):
        manager = ProductionManager(compose_run_config(tmp_path, ["queue.jobs=[{prompt: fox}]", *overrides]),
                                    run_dir=tmp_path)
        (job,) = manager.jobs()
        keys.append(manager.job_output_key(job))
    assert keys[0] != keys[1]
    assert json.dumps(manager.job_output_recipe(job)).count("text_encoder=int8") == 1


def test_cuda_only_mode_is_refused_for_an_auto_device_that_resolved_to_cpu(tmp_path):
    from vgen.speed.quantization import from_pretrained_kwargs

    settings = runtime(tmp_path, "runtime.device=auto", "runtime.quantization.text_encoder=fp8")
    validate_quantization(settings)  # auto: the device is not known before loading
    with pytest.raises(ConfigError, match="text_encoder=fp8 runs on CUDA only"):
        from_pretrained_kwargs(settings, tmp_path, None, "cpu")
