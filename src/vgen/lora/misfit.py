"""Why a LoRA file does not fit a pipeline, in one line a manifest error row can carry.

diffusers reports a misfit as a multi-line ``load_state_dict`` dump, a ``KeyError`` from a key
converter or a peft "target modules not found"; this module looks at the file itself instead: which
format its keys are in, which of its layers the transformer lacks and which have other shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_LORA_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_down.weight", ".lora_up.weight")
_WRAPPER_PREFIXES = ("base_model.model.", "transformer.", "diffusion_model.")  # peft, diffusers, ComfyUI
_EXAMPLES = 2


def _file_keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return sorted(handle.keys())


def _layer_shapes(state: dict[str, Any], prefix: str) -> dict[str, tuple[int | None, int | None]]:
    """``{layer: (in_features, out_features)}`` from the lora_A / lora_B weights of a converted state dict."""
    layers: dict[str, list[int | None]] = {}
    for key, tensor in state.items():
        if not key.startswith(prefix) or not key.endswith((".lora_A.weight", ".lora_B.weight")):
            continue
        layer, _, kind = key[len(prefix):].rpartition(".lora_")
        shape = layers.setdefault(layer, [None, None])
        if kind == "A.weight":
            shape[0] = tensor.shape[-1]
        else:
            shape[1] = tensor.shape[0]
    return {layer: (shape[0], shape[1]) for layer, shape in layers.items()}


def _model_shape(model: Any, layer: str) -> tuple[int | None, int | None] | None:
    """(in, out) features of ``layer`` in ``model``; None when the model has no such layer."""
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        return None
    return getattr(module, "in_features", None), getattr(module, "out_features", None)


def _named_model_layers(model: Any, keys: list[str]) -> list[str]:
    """Keys whose layer name, once a wrapper prefix is removed, is a layer of ``model``."""
    found = []
    for key in keys:
        suffix = next((suffix for suffix in _LORA_SUFFIXES if key.endswith(suffix)), None)
        if suffix is None:
            continue
        layer = key[: -len(suffix)]
        for prefix in _WRAPPER_PREFIXES:
            layer = layer.removeprefix(prefix)
        if _model_shape(model, layer) is not None:
            found.append(key)
    return found


def _examples(items: list[str]) -> str:
    more = f" and {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else ""
    return ", ".join(items[:_EXAMPLES]) + more


def _shape_text(shape: tuple[int | None, int | None]) -> str:
    return f"{shape[0] if shape[0] is not None else '?'}->{shape[1] if shape[1] is not None else '?'}"


def explain_misfit(pipe: Any, path: Path, error: BaseException | None) -> str:
    """The reason ``path`` could not be loaded into ``pipe`` (``error``: what diffusers raised, if any)."""
    model = getattr(pipe, "transformer", None)
    if model is None or not hasattr(pipe, "lora_state_dict"):
        return f"{type(pipe).__name__} does not load LoRAs into a transformer"
    model_name = type(model).__name__
    try:
        keys = _file_keys(path)
    except Exception as read_error:  # safetensors raises its own types for a file that is not one
        return f"not a readable safetensors file ({str(read_error).strip() or type(read_error).__name__})"
    if not keys:
        return "the file holds no tensors"
    if not any(key.endswith(_LORA_SUFFIXES) for key in keys):
        return (f"no LoRA weights in it (no lora_A/lora_B or lora_down/lora_up keys, e.g. "
                f"{_examples(keys)}): not a LoRA, or a full checkpoint")
    try:
        state = type(pipe).lora_state_dict(str(path))
    except Exception:  # a converter failing (KeyError, ValueError) means the keys are not for this family
        return (f"{type(pipe).__name__} cannot convert its keys (e.g. {_examples(keys)}): made for another "
                "model family or in a LoRA format diffusers does not convert for it")
    layers = _layer_shapes(state, "transformer.")
    if not layers and (named := _named_model_layers(model, keys)):
        return (f"its keys name {model_name} layers but in a key format {type(pipe).__name__} does not load "
                f"(e.g. {_examples(named)}; it loads 'transformer.<layer>.lora_A/lora_B.weight' and the "
                "formats diffusers converts for it)")
    if not layers:
        return (f"none of its keys are for the {model_name} (e.g. {_examples(keys)}): made for another "
                "model family")
    missing = sorted(layer for layer in layers if _model_shape(model, layer) is None)
    if len(missing) == len(layers):
        return (f"none of its {len(layers)} layers exist in {model_name} (e.g. {_examples(missing)}): "
                "made for another model family")
    mismatched = []
    for layer, shape in sorted(layers.items()):
        model_shape = _model_shape(model, layer)
        if model_shape is not None and any(a is not None and a != b for a, b in zip(shape, model_shape)):
            mismatched.append(f"{layer} {_shape_text(shape)} in the LoRA, {_shape_text(model_shape)} in the model")
    if mismatched:
        return (f"{len(mismatched)} of its {len(layers)} layers have other shapes than in {model_name} "
                f"({_examples(mismatched)}): made for another model size or family")
    if missing:
        return (f"{len(missing)} of its {len(layers)} layers do not exist in {model_name} "
                f"(e.g. {_examples(missing)}): made for another model variant")
    if error is None:
        return f"none of its keys fit {model_name}"
    return " ".join(str(error).split())[:500] or type(error).__name__
