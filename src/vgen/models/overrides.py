"""What a model card prescribes beyond the checkpoint: per-component dtypes and the scheduler.

``model.components.<name>.dtype`` loads that component (``vae``, ``image_encoder``, ...) in its own
dtype beside the runtime dtype of the rest; ``model.scheduler`` swaps in a scheduler class built
``from_config`` of the checkpoint's, with overrides such as Wan's ``flow_shift``. The manifest records
the effective values (:func:`effective_settings`).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from vgen.errors import ConfigError

COMPONENT_DTYPES = ("float32", "bfloat16", "float16")


def validate_model_overrides(model_cfg: Any) -> None:
    """Check the override values that need no import (the classes are checked when loading)."""
    for name, component in (model_cfg.get("components") or {}).items():
        if component.get("dtype") not in (None, *COMPONENT_DTYPES):
            raise ConfigError(f"model.components.{name}.dtype: expected one of {', '.join(COMPONENT_DTYPES)} or null, "
                              f"got {component.get('dtype')!r}")


def component_kwargs(model_cfg: Any, directory: Path) -> dict[str, Any]:
    """``{name: module}`` for every component with a dtype override, loaded from ``directory/<name>``."""
    import torch

    overrides = {name: c.get("dtype") for name, c in (model_cfg.get("components") or {}).items() if c.get("dtype")}
    if not overrides:
        return {}
    index = json.loads((directory / "model_index.json").read_text(encoding="utf-8"))
    loaded = {}
    for name, dtype in overrides.items():
        entry = index.get(name)
        if not isinstance(entry, list) or entry[0] is None:
            known = ", ".join(key for key, value in index.items() if isinstance(value, list) and value[0])
            raise ConfigError(f"model.components.{name}: the checkpoint has no component {name!r} (it has {known})")
        library, class_name = entry
        component_cls = getattr(importlib.import_module(library), class_name)
        loaded[name] = component_cls.from_pretrained(directory / name, torch_dtype=getattr(torch, dtype),
                                                     local_files_only=True)
    return loaded


def apply_scheduler(pipe: Any, model_cfg: Any) -> None:
    """Replace ``pipe.scheduler`` per ``model.scheduler`` (nothing when it names no class and no settings)."""
    scheduler_cfg = model_cfg.get("scheduler") or {}
    class_name, settings = scheduler_cfg.get("class_name"), dict(scheduler_cfg.get("settings") or {})
    if class_name is None and not settings:
        return
    import diffusers

    scheduler_cls = type(pipe.scheduler) if class_name is None else getattr(diffusers, class_name, None)
    if scheduler_cls is None or not hasattr(scheduler_cls, "from_config"):
        raise ConfigError(f"model.scheduler.class_name: diffusers has no scheduler named {class_name!r}")
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **settings)


def effective_settings(pipe: Any, model_cfg: Any) -> dict[str, Any]:
    """The dtype of every loaded component and the scheduler class with its overridden settings' values."""
    components = {name: str(module.dtype).removeprefix("torch.") for name, module in pipe.components.items()
                  if hasattr(module, "dtype") and hasattr(module, "parameters")}
    settings = (model_cfg.get("scheduler") or {}).get("settings") or {}
    scheduler = {"class_name": type(pipe.scheduler).__name__,
                 "settings": {key: pipe.scheduler.config.get(key) for key in settings}}
    return {"components": components, "scheduler": scheduler}
