"""What an enhancer config may say, checked before any model loads, and the hashes that key its models."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vgen.errors import ConfigError
from vgen.hashing import canonical_json, sha256_hex

BACKENDS = ("none", "smollm2", "hf_llm")
MODES = ("expand", "rewrite")
SOURCES = ("text", "image", "text+image")
ON_ERROR = ("fallback", "fail")
CAPTIONERS = (None, "none", "florence2")
DEVICE_PREFIXES = ("auto", "cpu", "cuda", "mps")

# Keys that identify a loaded model: the LLM and captioner caches are keyed
# on these, so a sweep over temperature or word_limits in one process reuses the loaded weights.
_LLM_KEYS = ("backend", "model", "gguf_file", "device", "cache_dir")
_CAPTIONER_KEYS = ("captioner", "captioner_model", "device")


def as_dict(enhancer_cfg: Any) -> dict[str, Any]:
    """The resolved section over the ``EnhancerConfig`` defaults, as a plain dict.

    Accepts a DictConfig (interpolations resolved against its root), a dataclass or a partial
    mapping; a wrong type or unknown key raises ConfigError.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from vgen.config.schema import EnhancerConfig

    try:
        if OmegaConf.is_config(enhancer_cfg):
            enhancer_cfg = OmegaConf.to_container(enhancer_cfg, resolve=True)
        merged = OmegaConf.merge(OmegaConf.structured(EnhancerConfig), enhancer_cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        message = getattr(exc, "msg", None) or str(exc).splitlines()[0]
        raise ConfigError(f"enhancer.{key}: {message}" if key else f"enhancer: {message}") from None
    return OmegaConf.to_container(merged, resolve=True)


def validate_enhancer_config(enhancer_cfg: Any) -> dict[str, Any]:
    """Check backend/mode/on_error/captioner/generation settings; return the section as a dict.

    Raises :class:`ConfigError` naming the offending ``enhancer.<key>``.
    """
    cfg = as_dict(enhancer_cfg)
    _choice(cfg, "backend", BACKENDS)
    _choice(cfg, "on_error", ON_ERROR)
    if cfg.get("backend", "none") == "none":
        return cfg
    if cfg.get("mode") in SOURCES:
        raise ConfigError(
            f"enhancer.mode={cfg['mode']} is now enhancer.source={cfg['mode']}; "
            "enhancer.mode chooses expand or rewrite"
        )
    _choice(cfg, "mode", MODES)
    _choice(cfg, "source", SOURCES)
    _choice(cfg, "captioner", CAPTIONERS)
    if cfg["backend"] == "hf_llm" and cfg.get("model") in (None, "", "???"):
        raise ConfigError(
            "enhancer.model is required for enhancer=hf_llm: set enhancer.model=<hub id or local dir>"
        )
    if cfg.get("source") != "text" and cfg.get("captioner") in (None, "none"):
        raise ConfigError(
            f"enhancer.source={cfg['source']} needs a captioner: set enhancer.captioner=florence2 "
            "(or use enhancer.source=text)"
        )
    if cfg.get("captioner") == "florence2" and not cfg.get("captioner_model"):
        raise ConfigError("enhancer.captioner_model is required with enhancer.captioner=florence2")
    device = str(cfg.get("device", "auto"))
    if not device.startswith(DEVICE_PREFIXES):
        raise ConfigError(f"enhancer.device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    _positive_int(cfg, "max_new_tokens")
    _positive_int(cfg, "caption_max_new_tokens")
    _word_limits(cfg["word_limits"])
    for key in ("temperature", "retry_temperature"):
        if not float(cfg[key]) >= 0.0:
            raise ConfigError(f"enhancer.{key} must be >= 0, got {cfg[key]!r}")
    if not 0.0 <= float(cfg["min_recall"]) <= 1.0:
        raise ConfigError(f"enhancer.min_recall must be in [0, 1], got {cfg['min_recall']!r}")
    for key in ("max_invented", "retries"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < 0:
            raise ConfigError(f"enhancer.{key} must be an integer >= 0, got {cfg[key]!r}")
    if not float(cfg["repetition_penalty"]) > 0.0:
        raise ConfigError(f"enhancer.repetition_penalty must be > 0, got {cfg['repetition_penalty']!r}")
    if not 0.0 < float(cfg.get("top_p", 1.0)) <= 1.0:
        raise ConfigError(f"enhancer.top_p must be in (0, 1], got {cfg.get('top_p')!r}")
    return cfg


def config_hash(cfg: Mapping[str, Any]) -> str:
    """Hash of the section minus ``on_error`` (error policy does not change what the models produce)."""
    return sha256_hex(canonical_json({k: v for k, v in cfg.items() if k != "on_error"}))[:16]


def llm_key(cfg: Mapping[str, Any]) -> str:
    return canonical_json({k: cfg.get(k) for k in _LLM_KEYS})


def captioner_key(cfg: Mapping[str, Any]) -> str | None:
    """None when no caption is needed (no captioner, or ``source=text``)."""
    if cfg.get("captioner") in (None, "none") or cfg.get("source") == "text":
        return None
    return canonical_json({k: cfg.get(k) for k in _CAPTIONER_KEYS})


def enhancer_cache_root(cfg: Mapping[str, Any]) -> Path:
    """``enhancer.cache_dir``, else ``$VGEN_CACHE_DIR/enhancer``, else ``~/.cache/vgen/enhancer``."""
    if cfg.get("cache_dir"):
        return Path(cfg["cache_dir"]).expanduser()
    if os.environ.get("VGEN_CACHE_DIR"):
        return Path(os.environ["VGEN_CACHE_DIR"]).expanduser() / "enhancer"
    return Path.home() / ".cache" / "vgen" / "enhancer"


def _choice(cfg: Mapping[str, Any], key: str, allowed: tuple) -> None:
    if cfg.get(key) not in allowed:
        shown = ", ".join("null" if a is None else a for a in allowed)
        raise ConfigError(f"enhancer.{key}={cfg.get(key)!r} is not one of: {shown}")


def _positive_int(cfg: Mapping[str, Any], key: str) -> None:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"enhancer.{key} must be a positive integer, got {value!r}")


def _word_limits(limits: Mapping[str, Any]) -> None:
    from vgen.enhancer.prompts import TASKS

    for task, pair in limits.items():
        if task not in TASKS:
            raise ConfigError(f"enhancer.word_limits.{task}: unknown task; expected one of {', '.join(TASKS)}")
        if (
            len(pair) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in pair)
            or pair[0] > pair[1]
        ):
            raise ConfigError(f"enhancer.word_limits.{task} must be [min, max] with 0 < min <= max, got {pair!r}")


def word_limits(cfg: Mapping[str, Any], task: str) -> tuple[int, int]:
    """``(min, max)`` words of an enhanced prompt for ``task``."""
    if task not in cfg["word_limits"]:
        raise ConfigError(f"enhancer.word_limits has no entry for task {task!r}")
    low, high = cfg["word_limits"][task]
    return int(low), int(high)
