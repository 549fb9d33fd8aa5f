"""Per-model generation defaults and where each effective generation value came from.

A model YAML may set ``generation_defaults`` (its card's size, frames, steps, guidance, fps, negative
prompt, ...). conf/config.yaml's ``generation`` values read them through the resolver
``${vgen_model_default:KEY,FALLBACK}``, so the precedence is plain Hydra composition: the command
line and an experiment (``+experiment=x``, a ``_global_`` overlay after ``_self_``) replace the
interpolation; without them the model's value applies, else FALLBACK (conf/config.yaml's own value).
Every resolved view (the resolved config, the manifest's job settings, the artifact metadata) shows
the effective values.
"""

from __future__ import annotations

from typing import Any, Iterable

from omegaconf import DictConfig, OmegaConf

RESOLVER_NAME = "vgen_model_default"
MODEL_DEFAULTS_KEY = "model.generation_defaults"


def model_default(key: str, fallback: Any, *, _root_: DictConfig) -> Any:
    """``${vgen_model_default:KEY,FALLBACK}``: the model's ``generation_defaults.KEY``, or FALLBACK when unset."""
    value = OmegaConf.select(_root_, f"{MODEL_DEFAULTS_KEY}.{key}", default=None)
    return fallback if value is None else value


def register_resolver() -> None:
    OmegaConf.register_new_resolver(RESOLVER_NAME, model_default, replace=True)


def _overridden_on_command_line(overrides: Iterable[str]) -> set[str]:
    """Generation keys the command line sets (``generation.K=``, ``+generation.K=``, ``++...``); "*" for all."""
    keys = set()
    for override in overrides:
        name = override.split("=", 1)[0].lstrip("+~")
        if name == "generation":
            keys.add("*")
        elif name.startswith("generation."):
            keys.add(name.split(".")[1])
    return keys


def generation_sources(cfg: DictConfig, overrides: Iterable[str]) -> dict[str, tuple[Any, str]]:
    """``{key: (effective value, source)}`` for each key a model may default, source being
    ``command line``, ``experiment`` (a config composed after conf/config.yaml replaced the model's
    value), ``model NAME`` or ``config.yaml``. Works on the unresolved config, before any job expands."""
    generation, model_defaults = cfg.generation, cfg.model.generation_defaults
    on_command_line = _overridden_on_command_line(overrides)
    sources = {}
    for key in model_defaults:
        if key in on_command_line or "*" in on_command_line:
            source = "command line"
        elif not OmegaConf.is_interpolation(generation, key):
            source = "experiment"
        elif model_defaults[key] is not None:
            source = f"model {cfg.model.name}"
        else:
            source = "config.yaml"
        sources[key] = (generation[key], source)
    return sources
