"""``LoRAInjectionManager``: discovery cache, per-job LoRA resolution and adapter activation.

One manager serves a whole process (it may be shared between ProductionManagers). Resolution is
pure Python (no torch) so the runner can validate every job before loading a model; activation
loads each LoRA file once per pipeline and then only switches adapters and weights (on a compiled
pipeline: swaps files into fixed adapter slots, see ``vgen.lora.hotswap``).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vgen.errors import ConfigError
from vgen.hashing import file_sha256, payload_hash
from vgen.lora.hotswap import HotswapSlots, SlotLayout, SlotsLost
from vgen.lora.library import LoRALibrary, discover, expand_dirs
from vgen.lora.multipliers import parse_multiplier
from vgen.lora.presets import PresetSpec, load_preset, parse_lora_entries
from vgen.lora.prompts import PromptTransform
from vgen.lora.resolution import LoRAPresetResolution, ResolvedLora, ResolvedLoras

JOB_KEYS = ("loras", "lora_preset")


def default_preset_group_dir() -> Path:
    """The ``lora`` config group dir: its YAML options double as presets a job can name."""
    from vgen.config.locate import config_dir

    return config_dir() / "lora"


def _as_mapping(lora_cfg: Any) -> dict[str, Any]:
    """A plain dict from a DictConfig, a ``LoraConfig`` dataclass or a mapping."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(lora_cfg):
        return OmegaConf.to_container(lora_cfg, resolve=True)
    if dataclasses.is_dataclass(lora_cfg) and not isinstance(lora_cfg, type):
        return dataclasses.asdict(lora_cfg)
    if isinstance(lora_cfg, Mapping):
        return dict(lora_cfg)
    raise TypeError(f"lora config must be a DictConfig, LoraConfig or mapping, got {type(lora_cfg).__name__}")


def _file_version(path: Path, *, kind: str) -> tuple[Path, int, int]:
    """(path, size, mtime): a cache key that changes when the file is replaced."""
    try:
        stat = path.stat()
    except OSError as error:
        raise ConfigError(f"{kind} {path}: cannot read it ({error.strerror})") from error
    return path, stat.st_size, stat.st_mtime_ns


class LoRAInjectionManager:
    def __init__(self, preset_group_dir: str | Path | None = None) -> None:
        self.preset_group_dir = Path(preset_group_dir) if preset_group_dir else default_preset_group_dir()
        self._libraries: dict[tuple[str, str], dict[str, Any]] = {}
        self._file_hashes: dict[tuple[Path, int, int], str] = {}
        self._preset_specs: dict[tuple[Path, int, int], PresetSpec] = {}
        self._loaded: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
        self._slots: weakref.WeakKeyDictionary[Any, HotswapSlots] = weakref.WeakKeyDictionary()
        self.load_count = 0  # discoveries run (hydrate cache misses)
        self.lora_file_loads = 0  # LoRA files loaded into a pipeline

    # ----- discovery -------------------------------------------------------------------------
    def hydrate(self, lora_cfg: Any, model_family: str, *, refresh: bool = False) -> LoRALibrary:
        """Discover LoRAs and presets for this config, memoised by (model family, config hash)."""
        cfg = _as_mapping(lora_cfg)
        key = (model_family, payload_hash(cfg)["sha256"])
        entry = self._libraries.get(key)
        if entry is not None and not refresh:
            entry["hits"] += 1
            return entry["library"]
        library = discover(expand_dirs(cfg.get("dirs") or [], model_family), [self.preset_group_dir])
        self._libraries[key] = {"library": library, "hits": entry["hits"] if entry else 0}
        self.load_count += 1
        return library

    def presets(self, lora_cfg: Any, model_family: str) -> list[str]:
        return sorted(self.hydrate(lora_cfg, model_family).presets)

    def resolve_preset(self, lora_cfg: Any, model_family: str, name: str) -> LoRAPresetResolution:
        key, path = self.hydrate(lora_cfg, model_family).preset_path(name)
        spec = self._load_preset(path)
        transform = spec.prompt
        return LoRAPresetResolution(
            name=key,
            path=path,
            names=[lora for lora, _ in spec.entries],
            multipliers=[weight for _, weight in spec.entries],
            prompt=transform.full if transform.full is not None else transform.prefix,
            prompt_is_full=transform.full is not None,
            transform=transform,
        )

    # ----- per-job resolution (no torch) -----------------------------------------------------
    def resolve_job(
        self,
        lora_cfg: Any,
        model_family: str,
        job: Mapping[str, Any],
        *,
        num_steps: int,
        num_phases: int = 1,
        phase_starts: list[int] | None = None,
    ) -> ResolvedLoras:
        """The job's LoRAs: its own ``loras``/``lora_preset`` keys if present, else the run's config.

        A level may name a preset and list LoRAs; the list is added after the preset's LoRAs, and
        the run config's own prompt settings, when set, win over its preset's prompt.
        ``num_phases``/``phase_starts`` describe two-expert models (see ``parse_multiplier``).
        """
        cfg = _as_mapping(lora_cfg)
        library = self.hydrate(lora_cfg, model_family)
        if any(key in job for key in JOB_KEYS):
            preset_name, items, source = job.get("lora_preset"), job.get("loras"), "job.loras"
            own_prompt = PromptTransform()
        else:
            preset_name, items, source = cfg.get("preset"), cfg.get("loras"), "lora.loras"
            own_prompt = PromptTransform.from_preset(
                cfg.get("prompt"),
                bool(cfg.get("full_prompt")),
                cfg.get("prompt_prefix") or "",
                cfg.get("prompt_suffix") or "",
            )
        chosen: list[tuple[str, str | float]] = []
        preset = None
        prompt = own_prompt
        if preset_name:
            preset = self.resolve_preset(lora_cfg, model_family, str(preset_name))
            chosen += list(zip(preset.names, preset.multipliers))
            prompt = own_prompt if not own_prompt.is_identity else preset.transform
        chosen += parse_lora_entries(items, source=source)

        entries: list[ResolvedLora] = []
        for name, weight in chosen:
            try:
                schedule = parse_multiplier(
                    weight, num_steps=num_steps, num_phases=num_phases, phase_starts=phase_starts
                )
            except ConfigError as error:
                raise ConfigError(f"LoRA {name!r}: bad weight {weight!r}: {error}") from None
            key, path = library.lora_path(name)
            if any(entry.path == path for entry in entries):
                raise ConfigError(f"LoRA {name!r} ({path}) is selected twice for one job")
            entries.append(ResolvedLora(key, path, self._sha256(path), schedule))
        return ResolvedLoras(entries=entries, preset=preset.name if preset else None, prompt=prompt)

    def _sha256(self, path: Path) -> str:
        """File hash, cached by (path, size, mtime) so each file is read once per change."""
        key = _file_version(path, kind="LoRA file")
        if key not in self._file_hashes:
            self._file_hashes[key] = file_sha256(path)
        return self._file_hashes[key]

    def _load_preset(self, path: Path) -> PresetSpec:
        """Parsed once per file change (its warnings, e.g. extra multipliers, are logged once)."""
        key = _file_version(path, kind="LoRA preset")
        if key not in self._preset_specs:
            self._preset_specs[key] = load_preset(path)
        return self._preset_specs[key]

    def apply_prompt(self, resolved: ResolvedLoras, prompt: str) -> str:
        return resolved.prompt.apply(prompt)

    # ----- activation (torch) ----------------------------------------------------------------
    def activate(self, pipe: Any, resolved: ResolvedLoras, *, slots: SlotLayout | None = None) -> None:
        """Load missing adapters into ``pipe`` and set step 0's weights; disable LoRA for none.

        ``slots``: ``pipe`` is compiled, so its LoRAs go into fixed hotswapped slots (see
        ``vgen.lora.hotswap``); pass the same layout for every job on that pipeline.
        """
        from vgen.lora import adapters

        if slots is not None:
            self._activate_slots(pipe, resolved, slots)
            return
        loaded = self._loaded.setdefault(pipe, set())
        resolved.applied_weights.clear()
        if not resolved.entries:
            if loaded:
                adapters.disable(pipe)
            return
        for entry in resolved.entries:
            if entry.adapter_name not in loaded:
                adapters.load_adapter(pipe, entry.path, entry.adapter_name)
                loaded.add(entry.adapter_name)
                self.lora_file_loads += 1
        self._apply_step(pipe, resolved, 0, enable=True)

    def _activate_slots(self, pipe: Any, resolved: ResolvedLoras, layout: SlotLayout) -> None:
        resolved.applied_weights.clear()
        slots = self._slots.get(pipe)
        if slots is None:
            if not resolved.entries:
                return
            slots = self._slots[pipe] = HotswapSlots.create(pipe, resolved, layout)
            self.lora_file_loads += len(resolved.adapter_names)
        else:
            try:
                self.lora_file_loads += slots.fill(pipe, resolved)
            except SlotsLost:
                del self._slots[pipe]
                raise
        if resolved.entries:
            self._apply_step(pipe, resolved, 0)
        else:
            slots.set_weights(resolved, [])

    def _apply_step(self, pipe: Any, resolved: ResolvedLoras, step: int, *, enable: bool = False) -> None:
        from vgen.lora import adapters

        weights = resolved.weights_for_step(step)
        if (slots := self._slots.get(pipe)) is not None:
            slots.set_weights(resolved, weights)
        else:
            adapters.set_weights(pipe, resolved, weights, enable=enable)
        resolved.applied_weights.append(weights)

    def step_callback(self, pipe: Any, resolved: ResolvedLoras) -> Callable | None:
        """A ``callback_on_step_end`` that sets the next step's weights; ``None`` for constant weights.

        diffusers calls it at the end of step ``i``, so it applies step ``i + 1``'s weights (step 0's
        are set by :meth:`activate`). It returns ``callback_kwargs`` unchanged, so it chains.
        """
        if not resolved.is_scheduled:
            return None
        num_steps = resolved.entries[0].schedule.num_steps

        def on_step_end(pipeline: Any, step_index: int, timestep: Any, callback_kwargs: dict) -> dict:
            if step_index + 1 < num_steps:
                self._apply_step(pipeline, resolved, step_index + 1)
            return callback_kwargs

        return on_step_end

    # ----- cache management ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget discoveries and file hashes, and unload this manager's adapters from live pipelines."""
        from vgen.lora import adapters

        for pipe, names in list(self._loaded.items()):
            adapters.delete(pipe, sorted(names))
        for pipe, slots in list(self._slots.items()):
            adapters.delete(pipe, slots.names)
        self._loaded = weakref.WeakKeyDictionary()
        self._slots = weakref.WeakKeyDictionary()
        self._libraries.clear()
        self._file_hashes.clear()
        self._preset_specs.clear()

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "entries": [
                {
                    "model_family": family,
                    "config_hash": config_hash,
                    "loras_count": len(entry["library"].loras),
                    "presets_count": len(entry["library"].presets),
                    "hits": entry["hits"],
                }
                for (family, config_hash), entry in self._libraries.items()
            ]
        }
