"""``runtime.quantization``: load the transformer / text encoder with quantized weights.

Per component: ``none``; ``int8`` (torchao int8 weight-only, runs on CPU and CUDA); ``fp8`` (torchao
float8 weight-only, CUDA only); ``nf4`` (bitsandbytes 4-bit NormalFloat, CUDA only); and for the
transformer ``gguf``: its weights come from ``runtime.quantization.gguf_file`` (the single-file
format many Wan users download, original Wan key names), kept quantized and dequantized per layer.
Quantization changes the loaded object, so it is part of the pipeline cache key; the packages and
device are checked with the config, before any model loads (no torch import).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from vgen.errors import ConfigError

COMPONENT_MODES = {
    "transformer": ("none", "int8", "fp8", "nf4", "gguf"),
    "text_encoder": ("none", "int8", "fp8", "nf4"),
}
# mode -> (import name, pip command, CUDA only)
REQUIREMENTS = {
    "int8": ("torchao", "pip install 'vgen[quantization]'  (torchao)", False),
    "fp8": ("torchao", "pip install 'vgen[quantization]'  (torchao)", True),
    "nf4": ("bitsandbytes", "pip install 'vgen[bitsandbytes]'  (bitsandbytes)", True),
    "gguf": ("gguf", "pip install gguf", False),
}
GGUF_MAGIC = b"GGUF"  # every GGUF file starts with it


def validate_quantization(runtime_cfg: Any, device: str | None = None) -> dict[str, Any]:
    """The quantization settings, checked: known modes, packages importable, a CUDA device where needed.

    ``device`` is the resolved one at load time (``runtime.device=auto`` on a machine without CUDA);
    without it only an explicit ``runtime.device=cpu`` is known."""
    device = device or runtime_cfg.device
    quant = runtime_cfg.quantization
    settings = {"transformer": quant.transformer, "text_encoder": quant.text_encoder, "gguf_file": quant.gguf_file}
    for component, modes in COMPONENT_MODES.items():
        mode = settings[component]
        if mode not in modes:
            raise ConfigError(f"runtime.quantization.{component}: expected one of {', '.join(modes)}, got {mode!r}")
        if mode == "none":
            continue
        module, pip, cuda_only = REQUIREMENTS[mode]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"runtime.quantization.{component}={mode} needs the {module!r} package, which is not "
                              f"installed: {pip}")
        if cuda_only and device == "cpu":
            raise ConfigError(f"runtime.quantization.{component}={mode} runs on CUDA only, but runtime.device "
                              f"resolves to {device}")
    if (settings["transformer"] == "gguf") != bool(settings["gguf_file"]):
        raise ConfigError("runtime.quantization.gguf_file: set it (to a .gguf transformer file) exactly when "
                          "runtime.quantization.transformer=gguf")
    if settings["gguf_file"]:
        gguf_file = Path(settings["gguf_file"]).expanduser()
        if not gguf_file.is_file():
            raise ConfigError(f"runtime.quantization.gguf_file={settings['gguf_file']!r}: no such file")
        with open(gguf_file, "rb") as handle:
            if handle.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
                raise ConfigError(f"runtime.quantization.gguf_file={settings['gguf_file']!r}: not a GGUF file "
                                  f"(it does not start with {GGUF_MAGIC!r})")
    return settings


def cache_key(runtime_cfg: Any) -> str:
    """What part of the pipeline cache key quantization contributes (``none`` when nothing is quantized)."""
    settings = validate_quantization(runtime_cfg)
    if settings["transformer"] == settings["text_encoder"] == "none":
        return "none"
    gguf = f"@{Path(settings['gguf_file']).expanduser().resolve()}" if settings["gguf_file"] else ""
    return f"transformer={settings['transformer']}{gguf},text_encoder={settings['text_encoder']}"


def _diffusers_config(mode: str, dtype):
    import diffusers

    if mode == "nf4":
        return diffusers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig

    return diffusers.TorchAoConfig(Int8WeightOnlyConfig() if mode == "int8" else Float8WeightOnlyConfig())


def _transformers_config(mode: str, dtype):
    import transformers

    if mode == "nf4":
        return transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_compute_dtype=dtype)
    from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig

    return transformers.TorchAoConfig(Int8WeightOnlyConfig() if mode == "int8" else Float8WeightOnlyConfig())


def load_gguf_transformer(path: str, directory: Path, transformer_class: str, dtype):
    """The transformer from a GGUF file; its architecture comes from the pipeline folder's transformer config."""
    import diffusers

    model_cls = getattr(diffusers, transformer_class)
    return model_cls.from_single_file(
        str(Path(path).expanduser()), config=str(directory), subfolder="transformer", local_files_only=True,
        quantization_config=diffusers.GGUFQuantizationConfig(compute_dtype=dtype), torch_dtype=dtype,
    )


def from_pretrained_kwargs(runtime_cfg: Any, directory: Path, dtype, device: str) -> dict[str, Any]:
    """Extra ``from_pretrained`` arguments: a ``PipelineQuantizationConfig`` and/or a GGUF transformer."""
    import json

    from diffusers import PipelineQuantizationConfig

    settings = validate_quantization(runtime_cfg, device)
    kwargs: dict[str, Any] = {}
    mapping = {}
    if settings["transformer"] not in ("none", "gguf"):
        mapping["transformer"] = _diffusers_config(settings["transformer"], dtype)
    if settings["text_encoder"] != "none":
        mapping["text_encoder"] = _transformers_config(settings["text_encoder"], dtype)
    if mapping:
        kwargs["quantization_config"] = PipelineQuantizationConfig(quant_mapping=mapping)
    if settings["transformer"] == "gguf":
        transformer_class = json.loads((directory / "model_index.json").read_text())["transformer"][1]
        kwargs["transformer"] = load_gguf_transformer(settings["gguf_file"], directory, transformer_class, dtype)
    return kwargs
