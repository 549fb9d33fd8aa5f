"""Helpers for the LoRA tests: real LoRA files for the tiny Wan model and the run kwargs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

ATTENTION_PROJECTIONS = ["to_q", "to_k", "to_v", "to_out.0"]
RUN_KWARGS = dict(height=64, width=64, num_frames=9, num_inference_steps=4, max_sequence_length=64,
                  guidance_scale=1.0, output_type="np")


def make_lora_file(transformer, path: Path, seed: int) -> Path:
    """A rank-4 LoRA with random (non-zero) weights on every attention projection of ``transformer``."""
    import torch
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=ATTENTION_PROJECTIONS)
    model = inject_adapter_in_model(config, copy.deepcopy(transformer))
    state = get_peft_model_state_dict(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({f"transformer.{key}": value.contiguous() for key, value in state.items()}, str(path))
    return path


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def generate(pipe, prompt: str = "a red fox running", seed: int = 0, **extra):
    import torch

    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **RUN_KWARGS, **extra).frames[0]


def make_unfitting_lora_file(path: Path) -> Path:
    """A LoRA whose shapes fit no tiny-Wan layer: loading it fails at run time, for that job only."""
    import numpy as np
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": np.ones((4, 7), np.float32),
               "transformer.blocks.0.attn1.to_q.lora_B.weight": np.ones((7, 4), np.float32)}, str(path))
    return path
