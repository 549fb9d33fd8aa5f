"""The runner's entry point to prompt enhancement: load once per config, rewrite prompts, report.

One bridge per ProductionManager. Models are cached on the bridge (not in module globals), keyed by
what identifies them, so every job of a queue, and every point of a sweep run in one process,
shares one load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from vgen.enhancer.attempts import enhance_faithfully
from vgen.enhancer.checkpoints import llm_display_name, llm_source, resolve_checkpoint
from vgen.enhancer.cleaning import EmptyEnhancementError
from vgen.enhancer.settings import (
    captioner_key,
    config_hash,
    enhancer_cache_root,
    llm_key,
    validate_enhancer_config,
)
from vgen.errors import VgenError

log = logging.getLogger(__name__)

_PAYLOAD_SETTINGS = ("max_new_tokens", "temperature", "top_p", "repetition_penalty", "seed", "word_limits",
                     "min_recall", "max_invented", "retries", "retry_temperature")


@dataclass
class EnhancementResult:
    prompt: str  # the original prompt
    enhanced_prompt: str  # == prompt when disabled or on fallback
    caption: str | None = None
    error: str | None = None  # "Type: message" when a fallback happened
    fidelity: dict | None = None  # score, attempts and fallback reason (vgen.enhancer.attempts)


class PromptEnhancerBridge:
    """Loads the enhancer's models on demand and rewrites prompts; safe to share between threads."""

    def __init__(self, loader_stats: dict | None = None):
        # loader_stats["prompt_enhancer"] collects one row per model load: {kind, model, origin, seconds}.
        self.loader_stats = loader_stats if loader_stats is not None else {}
        self.load_count = 0
        self._llms: dict[str, Any] = {}
        self._captioners: dict[str, Any] = {}
        self._primed: dict[str, tuple[str, str | None]] = {}
        self._loads: Counter[str] = Counter()
        self._lock = threading.RLock()

    def prime(self, enhancer_cfg: Any) -> None:
        """Load the models ``enhancer_cfg`` needs (no-op when already loaded or backend none)."""
        cfg = validate_enhancer_config(enhancer_cfg)
        if cfg["backend"] != "none":
            self._models_for(cfg)

    def enhance(self, enhancer_cfg: Any, prompt: str, *, task: str = "t2v", image: Any = None) -> EnhancementResult:
        """Rewrite ``prompt``; with a captioner and an ``image``, caption it first.

        Failures follow ``enhancer.on_error``: ``fallback`` keeps the prompt and records the error,
        ``fail`` raises :class:`VgenError`. Invalid config always raises ConfigError.
        """
        cfg = validate_enhancer_config(enhancer_cfg)
        if cfg["backend"] == "none":
            return EnhancementResult(prompt=prompt, enhanced_prompt=prompt)
        caption = None
        try:
            with self._lock:
                llm, captioner = self._models_for(cfg)
                try:
                    caption = self._caption(cfg, captioner, image)
                    enhanced, fidelity = enhance_faithfully(cfg, llm, prompt, caption, task)
                finally:
                    if cfg["offload_after_use"]:
                        for model in (llm, captioner):
                            if model is not None:
                                model.offload()
            return EnhancementResult(prompt=prompt, enhanced_prompt=enhanced, caption=caption, fidelity=fidelity)
        except Exception as exc:  # noqa: BLE001 - any failure is subject to on_error
            error = f"{type(exc).__name__}: {exc}"
            if cfg["on_error"] == "fail":
                if isinstance(exc, VgenError):
                    raise
                raise VgenError(f"prompt enhancer failed: {error}") from exc
            log.warning("prompt enhancer failed, keeping the original prompt: %s", error)
            return EnhancementResult(prompt=prompt, enhanced_prompt=prompt, caption=caption, error=error)

    def payload(self, enhancer_cfg: Any, results: list[EnhancementResult]) -> dict:
        """``adapter_payloads["prompt_enhancer"]`` for the manifest; ``{}`` when disabled."""
        cfg = validate_enhancer_config(enhancer_cfg)
        if cfg["backend"] == "none":
            return {}
        has_captioner = cfg.get("captioner") not in (None, "none")
        return {
            "backend": cfg["backend"],
            "model": llm_display_name(cfg),
            "mode": cfg["mode"],
            "source": cfg["source"],
            "captioner": cfg["captioner"] if has_captioner else None,
            "captioner_model": cfg["captioner_model"] if has_captioner else None,
            "settings": {k: cfg[k] for k in _PAYLOAD_SETTINGS},
            "source_prompts": [r.prompt for r in results],
            "enhanced_prompts": [r.enhanced_prompt for r in results],
            "captions": [r.caption for r in results],
            "errors": [r.error for r in results],
            "fidelity": [r.fidelity for r in results],
        }

    def reset(self) -> None:
        """Drop every loaded model and return accelerator memory."""
        import gc

        from vgen.enhancer.device import release_accelerator_memory

        with self._lock:
            self._llms.clear()
            self._captioners.clear()
            self._primed.clear()
        gc.collect()
        release_accelerator_memory()

    def snapshot_state(self) -> dict:
        """Configs whose models are loaded now, and how many model loads each config caused so far."""
        with self._lock:
            return {"primed_configs": sorted(self._primed), "loads": dict(self._loads)}

    def _models_for(self, cfg: dict) -> tuple[Any, Any]:
        with self._lock:
            digest = config_hash(cfg)
            keys = self._primed.get(digest) or (llm_key(cfg), captioner_key(cfg))
            if keys[0] not in self._llms:
                self._llms[keys[0]] = self._load(digest, "llm", llm_display_name(cfg), lambda: _load_llm(cfg))
            if keys[1] is not None and keys[1] not in self._captioners:
                self._captioners[keys[1]] = self._load(
                    digest, "captioner", cfg["captioner_model"], lambda: _load_captioner(cfg)
                )
            self._primed[digest] = keys
            return self._llms[keys[0]], self._captioners.get(keys[1]) if keys[1] else None

    def _load(self, digest: str, kind: str, name: str, loader) -> Any:
        started = time.perf_counter()
        model = loader()
        seconds = time.perf_counter() - started
        self.load_count += 1
        self._loads[digest] += 1
        row = {"kind": kind, "model": name, "origin": getattr(model, "origin", "pretrained"), "seconds": seconds}
        self.loader_stats.setdefault("prompt_enhancer", []).append(row)
        log.info("prompt enhancer loaded %s %s in %.1f s (%s)", kind, name, seconds, row["origin"])
        return model

    @staticmethod
    def _caption(cfg: dict, captioner: Any, image: Any) -> str | None:
        if captioner is None:  # source text
            return None
        if image is None:
            if cfg["source"] == "image":
                raise VgenError("enhancer.source=image rewrites from the start image, and this job has none")
            return None
        caption = captioner.caption(image, cfg["caption_max_new_tokens"])
        if not caption:
            raise EmptyEnhancementError(f"captioner {cfg['captioner_model']} returned an empty caption")
        return caption


def _load_llm(cfg: dict):
    from vgen.enhancer.device import resolve_device
    from vgen.enhancer.llm import Rewriter

    return Rewriter.load(llm_source(cfg), resolve_device(cfg["device"]), enhancer_cache_root(cfg))


def _load_captioner(cfg: dict):
    from vgen.enhancer.captioner import Florence2Captioner
    from vgen.enhancer.device import resolve_device

    source = resolve_checkpoint(cfg["captioner_model"], field="enhancer.captioner_model")
    return Florence2Captioner.load(source, resolve_device(cfg["device"]))
