"""Load a diffusers pipeline from ``model.source`` and place it on the device (dtype, offload, tiling).

vgen never downloads at run time: sources are a local dir, a hub id already in the Hugging Face
cache, or ``builtin:tiny_wan``. A missing checkpoint is a :class:`CheckpointNotFoundError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vgen.devices import Placement
from vgen.errors import CheckpointNotFoundError, ConfigError

BUILTIN_PREFIX = "builtin:"


def resolve_source(model_cfg, cache_dir: str | None) -> Path:
    """The local directory holding ``model.source`` (building the built-in model when needed)."""
    source = model_cfg.source
    if source.startswith(BUILTIN_PREFIX):
        from vgen.models.tiny_wan import BUILTIN_MODELS, ensure_tiny_wan

        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_MODELS:
            raise ConfigError(f"model.source: unknown built-in model {name!r} (known: {', '.join(BUILTIN_MODELS)})")
        return ensure_tiny_wan(cache_dir, name)
    local = Path(source).expanduser()
    if local.is_dir():
        if not (local / "model_index.json").is_file():
            raise CheckpointNotFoundError(
                f"model.source={source!r}: the directory exists but holds no model_index.json, so it is not a "
                f"diffusers pipeline. Point model.source at the folder that contains model_index.json."
            )
        return local
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:  # a path, not an "org/name" hub id
        raise CheckpointNotFoundError(
            f"Model {model_cfg.name!r}: model.source={source!r} is not an existing directory. Point it at a "
            f"local diffusers folder (one with model_index.json) or use a hub id already in the HF cache."
        )
    return _from_hf_cache(model_cfg)


def _from_hf_cache(model_cfg) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(model_cfg.source, revision=model_cfg.revision, local_files_only=model_cfg.local_files_only)
        )
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        hint = model_cfg.download_hint or f"huggingface-cli download {model_cfg.source}"
        raise CheckpointNotFoundError(
            f"Model {model_cfg.name!r}: checkpoint {model_cfg.source!r}"
            f"{' (revision ' + model_cfg.revision + ')' if model_cfg.revision else ''} is not available locally. "
            f"vgen looked for it as a local directory and in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
            f"and never downloads at run time. To get it: {hint}; or set model.source to a local diffusers "
            f"folder. ({type(exc).__name__})"
        ) from None


def load_pipeline(model_cfg, placement: Placement, cache_dir: str | None, runtime_cfg=None):
    """``<pipeline_class>.from_pretrained(dir, torch_dtype=...)`` placed per ``placement``, quantized per
    ``runtime_cfg.quantization`` when given (see vgen.speed.quantization)."""
    import diffusers
    import torch
    import transformers

    diffusers.utils.logging.disable_progress_bar()  # vgen reports loading itself
    transformers.utils.logging.disable_progress_bar()

    pipeline_cls = getattr(diffusers, model_cfg.pipeline_class, None)
    if pipeline_cls is None:
        raise ConfigError(f"model.pipeline_class: diffusers has no pipeline named {model_cfg.pipeline_class!r}")
    directory = resolve_source(model_cfg, cache_dir)
    from vgen.models.overrides import apply_scheduler, component_kwargs

    kwargs = {"dtype": getattr(torch, placement.dtype), "local_files_only": True}
    if model_cfg.variant:
        kwargs["variant"] = model_cfg.variant
    if runtime_cfg is not None:
        from vgen.speed.quantization import from_pretrained_kwargs

        kwargs.update(from_pretrained_kwargs(runtime_cfg, directory, kwargs["dtype"], placement.device))
    # a quantized component (e.g. a GGUF transformer) replaces that component's dtype override
    pipe = pipeline_cls.from_pretrained(directory, **{**component_kwargs(model_cfg, directory), **kwargs})
    apply_scheduler(pipe, model_cfg)
    place_pipeline(pipe, placement)
    pipe.set_progress_bar_config(disable=True)  # vgen shows its own step bar
    return pipe


def place_pipeline(pipe: Any, placement: Placement) -> None:
    """Put a loaded pipeline on its device the way ``runtime.offload`` says, and set VAE tiling."""
    import torch

    if placement.offload == "model":
        pipe.enable_model_cpu_offload(device=placement.device)
    elif placement.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=placement.device)
    elif placement.offload == "group":  # block-level groups, the next one copied on a CUDA stream during compute
        pipe.enable_group_offload(onload_device=torch.device(placement.device), offload_type="block_level",
                                  num_blocks_per_group=1, use_stream=True)
    else:
        pipe.to(placement.device)
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_tiling"):
        vae.enable_tiling() if placement.vae_tiling else vae.disable_tiling()
