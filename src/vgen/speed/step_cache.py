"""The ``cache`` config group: diffusers step caches that skip transformer work between denoising steps.

Each cache reuses (or extrapolates) what the transformer computed at an earlier step when the
change since then looks small, trading a little fidelity for speed. The cache is a set of hooks on
the loaded transformer, not part of the loaded object: it is (re)applied before every job, so a sweep
over ``cache.threshold`` or ``cache=...`` runs on the resident pipeline without reloading it.

Keys are the diffusers config fields (``diffusers.hooks``), defaults are the documented ones (see
conf/cache/*.yaml); each cache accepts only its own keys, checked before any model loads.
"""

from __future__ import annotations

from typing import Any

from vgen.errors import ConfigError

# Keys each cache reads from the ``cache`` group (everything else must be left null).
CACHE_KEYS: dict[str, tuple[str, ...]] = {
    "none": (),
    "first_block": ("threshold",),
    "taylorseer": ("cache_interval", "disable_cache_before_step", "disable_cache_after_step", "max_order",
                   "cache_identifiers"),
    "magcache": ("threshold", "max_skip_steps", "retention_ratio", "mag_ratios", "calibrate"),
    "fastercache": ("spatial_attention_block_skip_range", "spatial_attention_timestep_skip_range",
                    "attention_weight", "is_guidance_distilled"),
}
ALL_KEYS = sorted({key for keys in CACHE_KEYS.values() for key in keys})


def _settings(cache_cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cache_cfg, DictConfig):
        return OmegaConf.to_container(cache_cfg, resolve=True)
    return dict(cache_cfg)


def validate_cache_config(cache_cfg: Any) -> dict[str, Any]:
    """The cache settings checked without torch: a known name, only its own keys, values in range."""
    cfg = _settings(cache_cfg)
    name = cfg.get("name", "none")
    if name not in CACHE_KEYS:
        raise ConfigError(f"cache: expected one of {', '.join(CACHE_KEYS)}, got {name!r}")
    for key in ALL_KEYS:
        if key not in CACHE_KEYS[name] and cfg.get(key) is not None:
            raise ConfigError(f"cache.{key} is not a setting of cache={name} (it takes: "
                              f"{', '.join(CACHE_KEYS[name]) or 'nothing'})")
    for key in CACHE_KEYS[name]:
        if cfg.get(key) is None and key not in ("disable_cache_after_step", "mag_ratios"):
            raise ConfigError(f"cache.{key}: cache={name} needs a value")
    if name in ("first_block", "magcache") and cfg["threshold"] <= 0:
        raise ConfigError(f"cache.threshold={cfg['threshold']}: must be > 0")
    if name == "taylorseer":
        if cfg["cache_interval"] < 1 or cfg["max_order"] < 0 or cfg["disable_cache_before_step"] < 0:
            raise ConfigError("cache.cache_interval must be >= 1, cache.max_order and "
                              "cache.disable_cache_before_step >= 0")
    if name == "magcache":
        if not 0 <= cfg["retention_ratio"] < 1:
            raise ConfigError(f"cache.retention_ratio={cfg['retention_ratio']}: a fraction of the steps in [0, 1)")
        if cfg["max_skip_steps"] < 1:
            raise ConfigError(f"cache.max_skip_steps={cfg['max_skip_steps']}: must be >= 1")
        if not cfg["calibrate"] and not cfg.get("mag_ratios"):
            raise ConfigError(
                "cache.mag_ratios: MagCache needs the checkpoint's magnitude ratios (published per model in the "
                "MagCache repo). Run one job with cache.calibrate=true to log them for this model, then pass "
                "them as cache.mag_ratios=[...]"
            )
    if name == "fastercache":
        window = cfg["spatial_attention_timestep_skip_range"]
        if len(window) != 2 or window[0] >= window[1]:
            raise ConfigError(f"cache.spatial_attention_timestep_skip_range={window}: expected [low, high], low < high")
        if cfg["spatial_attention_block_skip_range"] < 2:
            raise ConfigError("cache.spatial_attention_block_skip_range: must be >= 2 (1 never skips)")
    return cfg


def diffusers_cache_config(cache_cfg: Any, *, steps: int, pipe: Any = None):
    """The diffusers ``*CacheConfig`` for this job (``None`` for ``cache=none``)."""
    import torch
    from diffusers.hooks import FasterCacheConfig, FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    cfg = validate_cache_config(cache_cfg)
    name = cfg["name"]
    if name == "first_block":
        return FirstBlockCacheConfig(threshold=cfg["threshold"])
    if name == "taylorseer":
        return TaylorSeerCacheConfig(
            cache_interval=cfg["cache_interval"], disable_cache_before_step=cfg["disable_cache_before_step"],
            disable_cache_after_step=cfg.get("disable_cache_after_step"), max_order=cfg["max_order"],
            taylor_factors_dtype=torch.float32, cache_identifiers=list(cfg["cache_identifiers"]),
        )
    if name == "magcache":
        return MagCacheConfig(
            threshold=cfg["threshold"], max_skip_steps=cfg["max_skip_steps"], retention_ratio=cfg["retention_ratio"],
            num_inference_steps=steps, calibrate=cfg["calibrate"],
            mag_ratios=None if cfg["calibrate"] else list(cfg.get("mag_ratios")),
        )
    if name == "fastercache":
        weight = cfg["attention_weight"]
        return FasterCacheConfig(
            spatial_attention_block_skip_range=cfg["spatial_attention_block_skip_range"],
            spatial_attention_timestep_skip_range=tuple(cfg["spatial_attention_timestep_skip_range"]),
            attention_weight_callback=lambda _module: weight,
            is_guidance_distilled=cfg["is_guidance_distilled"],
            current_timestep_callback=lambda: pipe.current_timestep,
            tensor_format="BCFHW",
        )
    return None


def apply_step_cache(pipe: Any, cache_cfg: Any, *, steps: int) -> None:
    """Replace whatever cache the pipeline's transformer(s) carry with this job's (hooks only: no reload)."""
    config = diffusers_cache_config(cache_cfg, steps=steps, pipe=pipe)
    for name in ("transformer", "transformer_2"):
        transformer = getattr(pipe, name, None)
        if transformer is None or not hasattr(transformer, "enable_cache"):
            continue
        if getattr(transformer, "_cache_config", None) is not None:
            transformer.disable_cache()
        if config is not None:
            transformer.enable_cache(config)
