"""Loaded pipelines keyed by what makes them different (held process-wide by ``vgen.resident``).

Hydra's basic launcher runs every sweep point in one process, so a model loaded for point 1 is reused
by point 2 when its identity, dtype, device, offload mode, quantization and compilation are
unchanged (step caches and the attention backend are reapplied per job, see vgen.speed.step_cache). Only
one pipeline stays resident: asking for a different key releases the previous one first (GPU memory
is the constraint).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from vgen.devices import Placement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineKey:
    source: str
    revision: str | None
    variant: str | None
    pipeline_class: str
    device: str
    dtype: str
    offload: str
    loading: str = ""  # model.components / model.scheduler overrides, as canonical JSON
    quantization: str = "none"  # vgen.speed.quantization.cache_key
    compile: str = "off"  # vgen.speed.compilation.cache_key

    @classmethod
    def for_model(cls, model_cfg, placement: Placement, *, quantization: str = "none",
                  compile: str = "off") -> "PipelineKey":
        from omegaconf import OmegaConf

        from vgen.hashing import canonical_json

        loading = {key: OmegaConf.to_container(model_cfg[key]) for key in ("components", "scheduler")
                   if model_cfg.get(key)}
        return cls(
            source=model_cfg.source, revision=model_cfg.revision, variant=model_cfg.variant,
            pipeline_class=model_cfg.pipeline_class, device=placement.device, dtype=placement.dtype,
            offload=placement.offload, loading=canonical_json(loading), quantization=quantization, compile=compile,
        )


class PipelineCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: PipelineKey | None = None
        self._pipe: Any = None
        self.loads = 0
        self.last_load_s = 0.0

    def get(self, key: PipelineKey, load: Callable[[], Any]) -> tuple[Any, float]:
        """The pipeline for ``key`` and the seconds spent loading it now (0.0 on a cache hit)."""
        with self._lock:
            if self._key == key:
                return self._pipe, 0.0
            self._release_locked()
            started = time.perf_counter()
            pipe = load()
            self.last_load_s = time.perf_counter() - started
            self._key, self._pipe = key, pipe
            self.loads += 1
            log.info("Loaded %s from %s in %.2fs", key.pipeline_class, key.source, self.last_load_s)
            return pipe, self.last_load_s

    def clear(self) -> None:
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if self._pipe is None:
            return
        self._key, self._pipe = None, None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
