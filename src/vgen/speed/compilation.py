"""``runtime.compile``: torch.compile the transformer once, when the pipeline loads.

``regional`` compiles only the repeated transformer blocks (diffusers ``compile_repeated_blocks``):
most of the speed-up of ``full`` for a fraction of the compile time. The LoRA manager puts the LoRAs
of a compiled pipeline into fixed adapter slots padded to ``runtime.lora_max_rank`` and swaps files
into them (``vgen.lora.hotswap``), so switching LoRAs between jobs does not recompile (the first LoRA
job does, once: its adapters are new modules). A compiled model is a different loaded object: the
mode and rank are in the pipeline cache key.

Step caches (the ``cache`` group) decide per step, in Python hooks around the transformer blocks,
whether to run or reuse them; torch.compile cannot trace that into one graph, so with a step cache
the blocks are compiled allowing graph breaks at the hooks (``fullgraph=False``: the block bodies are
still compiled), and without one as a full graph, which fails loudly if anything breaks it. Which of
the two is in the pipeline key, so a sweep from ``cache=none`` to a cache reloads instead of failing.
"""

from __future__ import annotations

from typing import Any

from vgen.errors import ConfigError

COMPILE_MODES = ("off", "regional", "full")


def validate_compile(runtime_cfg: Any) -> str:
    mode = runtime_cfg.compile
    if mode not in COMPILE_MODES:
        raise ConfigError(f"runtime.compile: expected one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    if mode != "off" and runtime_cfg.offload == "sequential":
        raise ConfigError(f"runtime.compile={mode} with runtime.offload=sequential: sequential offload moves every "
                          f"weight on each call, which torch.compile cannot trace; use offload=model or group")
    if runtime_cfg.lora_max_rank < 1:
        raise ConfigError(f"runtime.lora_max_rank={runtime_cfg.lora_max_rank}: must be >= 1")
    return mode


def cache_key(runtime_cfg: Any, cache_cfg: Any) -> str:
    mode = validate_compile(runtime_cfg)
    if mode == "off":
        return "off"
    graphs = "full graphs" if _full_graph(cache_cfg) else "graph breaks at step-cache hooks"
    return f"{mode},lora_max_rank={runtime_cfg.lora_max_rank},{graphs}"


def _full_graph(cache_cfg: Any) -> bool:
    return cache_cfg is None or cache_cfg.name == "none"


def compile_pipeline(pipe: Any, runtime_cfg: Any, cache_cfg: Any) -> Any:
    """Compile the pipeline's transformer(s) per ``runtime.compile`` (``cache_cfg``: the run's step cache)."""
    mode = validate_compile(runtime_cfg)
    if mode == "off":
        return pipe
    fullgraph = _full_graph(cache_cfg)
    for name in ("transformer", "transformer_2"):
        transformer = getattr(pipe, name, None)
        if transformer is None:
            continue
        if mode == "regional":
            transformer.compile_repeated_blocks(fullgraph=fullgraph)
        else:
            transformer.compile(fullgraph=fullgraph)
    return pipe
