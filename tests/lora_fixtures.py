"""Helpers for the LoRA tests: real LoRA files for the tiny Wan model and the run kwargs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

ATTENTION_PROJECTIONS = ["to_q", "to_k", "to_v", "to_out.0"]
FEED_FORWARD = ["net.0.proj", "net.2"]
RUN_KWARGS = dict(height=64, width=64, num_frames=9, num_inference_steps=4, max_sequence_length=64,
                  guidance_scale=1.0, output_type="np")


def make_lora_file(transformer, path: Path, seed: int, targets: list[str] = ATTENTION_PROJECTIONS,
                   rank: int = 4, alpha: float | None = None) -> Path:
    """A LoRA of ``rank`` with random (non-zero) weights on the ``targets`` layers (default: every attention
    projection) of ``transformer``. Without ``alpha`` the file has no metadata and diffusers reads its
    alpha as its rank (scale 1); with it, the file carries diffusers' adapter metadata (scale alpha/rank),
    as ``save_lora_weights`` writes it."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights=False, target_modules=targets)
    model = inject_adapter_in_model(config, copy.deepcopy(transformer))
    state = get_peft_model_state_dict(model)
    metadata = None
    if alpha is not None:
        adapter = {f"transformer.{key}": value for key, value in
                   {"r": rank, "lora_alpha": alpha, "target_modules": targets}.items()}
        metadata = {"format": "pt", "lora_adapter_metadata": json.dumps(adapter)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({f"transformer.{key}": value.contiguous() for key, value in state.items()}, str(path), metadata=metadata)
    return path


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def generate(pipe, prompt: str = "a red fox running", seed: int = 0, **extra):
    import torch

    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **RUN_KWARGS, **extra).frames[0]


_ORIGINAL_WAN_NAMES = {"attn1": "self_attn", "attn2": "cross_attn", "to_q": "q", "to_k": "k", "to_v": "v",
                       "to_out.0": "o", "ffn": "ffn", "net.0.proj": "0", "net.2": "2"}


def rewrite_in_other_format(source: Path, target: Path, style: str) -> Path:
    """Save the diffusers-format LoRA ``source`` in the key format another tool writes.

    ``style``: ``"comfy"`` (original Wan names under ``diffusion_model.``, lora_A/lora_B, as ComfyUI
    and Wan2GP save), ``"comfy_down_up"`` (the same with lora_down/lora_up and an ``alpha`` per layer)
    or ``"musubi"`` (kohya musubi-tuner: ``lora_unet_blocks_0_self_attn_q.lora_down.weight`` + alpha;
    diffusers converts it only when it covers the attention and feed-forward layers, as musubi's do).
    Alpha equals the rank, so every format means exactly the same weights. Formats diffusers does not
    load for Wan: ``"peft"`` (``base_model.model.`` prefix, as ``PeftModel.save_pretrained`` writes),
    ``"bare"`` (no prefix) and ``"down_up"`` (``transformer.`` keys named lora_down/lora_up).
    """
    import torch
    from safetensors.torch import load_file, save_file

    out = {}
    for key, tensor in load_file(str(source)).items():
        bare = key.removeprefix("transformer.")
        if style in ("peft", "bare", "down_up"):
            renamed = bare.replace("lora_A", "lora_down").replace("lora_B", "lora_up") if style == "down_up" else bare
            out[{"peft": "base_model.model.", "bare": "", "down_up": "transformer."}[style] + renamed] = tensor
            continue
        layer, kind = key.removeprefix("transformer.").rsplit(".lora_", 1)  # blocks.0.attn1.to_q / A.weight
        block, index, module, projection = layer.split(".", 3)
        original = f"{block}.{index}.{_ORIGINAL_WAN_NAMES[module]}.{_ORIGINAL_WAN_NAMES[projection]}"
        down_up = {"A.weight": "lora_down.weight", "B.weight": "lora_up.weight"}[kind]
        if style == "comfy":
            out[f"diffusion_model.{original}.lora_{kind}"] = tensor
            continue
        name = f"diffusion_model.{original}" if style == "comfy_down_up" else f"lora_unet_{original.replace('.', '_')}"
        out[f"{name}.{down_up}"] = tensor
        if kind == "A.weight":
            out[f"{name}.alpha"] = torch.tensor(float(tensor.shape[0]))
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(target))
    return target


def make_unfitting_lora_file(path: Path) -> Path:
    """A LoRA whose shapes fit no tiny-Wan layer: loading it fails at run time, for that job only."""
    import numpy as np
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": np.ones((4, 7), np.float32),
               "transformer.blocks.0.attn1.to_q.lora_B.weight": np.ones((7, 4), np.float32)}, str(path))
    return path
