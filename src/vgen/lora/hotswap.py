"""Fixed LoRA adapter slots on a compiled pipeline, so that switching LoRAs between jobs does not recompile.

On an uncompiled pipeline vgen loads each LoRA file as its own adapter and activates a job's set with
``set_adapters``. A compiled transformer's graph guards on its adapter modules, on the active adapters
and on each adapter's scaling float: every one of those switches recompiles. A compiled pipeline
instead gets ``count`` adapters named ``vgen_slot_0`` .. ``vgen_slot_<count-1>`` at its first LoRA job
(``count``: the most LoRA files one job of the run uses), and from then on:

- every slot is padded to ``runtime.lora_max_rank`` and its scaling is a tensor (peft's
  ``prepare_model_for_compiled_hotswap``), and every slot stays active;
- a job's file that no slot holds replaces the weights of a slot the job does not need, in place
  (diffusers' ``load_lora_weights(..., hotswap=True)``); files already in a slot stay there;
- weights, per step too, are written into the scaling tensors in place; a slot the job does not use
  gets weight 0 (a job without LoRAs: every slot). peft sets a swapped slot's scaling to the new
  file's ``alpha / rank`` (its own rank, not the padded one); that is the slot's weight-1 scale.

Refused for one job (that job fails with its error row; the slots keep working for the next jobs):
a job with more files than slots (possible for a job enqueued later or a later sweep point), a rank
above ``runtime.lora_max_rank``, and a file adapting a layer that the slot's first file does not
(the first file loaded into a slot fixes its layers: put the LoRA with the most layers first, or use
``runtime.compile=off``; a file with fewer layers is fine, the others are zeroed). When diffusers
itself refuses a swap (e.g. another dropout, DoRA or rsLoRA setting), it has already removed that
slot's adapter: :class:`SlotsLost` is raised, the slots are removed, and the next LoRA job builds them
again (one recompilation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgen.errors import VgenError
from vgen.lora import adapters
from vgen.lora.misfit import explain_misfit
from vgen.lora.resolution import ResolvedLoras

SLOT_PREFIX = "vgen_slot_"
_LORA_A = ".lora_A.weight"


class SlotsLost(VgenError):
    """A swap failed inside diffusers, which removed the slot's adapter: the slots must be rebuilt."""


@dataclass(frozen=True)
class SlotLayout:
    count: int  # adapter slots (the most LoRA files one job uses)
    max_rank: int  # runtime.lora_max_rank: every slot is padded to it


def slot_name(index: int) -> str:
    return f"{SLOT_PREFIX}{index}"


def _transformers(pipe: Any) -> list[Any]:
    return [model for name in ("transformer", "transformer_2") if (model := getattr(pipe, name, None)) is not None]


def _lora_layers(model: Any, adapter_name: str) -> dict[str, Any]:
    """``{module name: peft LoRA layer}`` of ``model`` that carry ``adapter_name``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {name: module for name, module in model.named_modules()
            if isinstance(module, BaseTunerLayer) and adapter_name in getattr(module, "lora_A", {})}


def _read_state(pipe: Any, path: Path) -> dict[str, Any]:
    """The file's state dict in diffusers' key format (other tools' formats converted)."""
    try:
        state = type(pipe).lora_state_dict(str(path))
    except Exception as error:  # a bad file or a converter failing: say why, as for an uncompiled load
        reason = explain_misfit(pipe, path, error)
        raise VgenError(f"LoRA file {path}: cannot load it into {type(pipe).__name__}: {reason}") from error
    return state[0] if isinstance(state, tuple) else state  # some mixins also return network alphas


def _layers_and_rank(pipe: Any, state: dict[str, Any]) -> tuple[set[str], int]:
    prefix = f"{getattr(pipe, 'transformer_name', 'transformer')}."
    layers, rank = set(), 0
    for key, tensor in state.items():
        if key.startswith(prefix) and key.endswith(_LORA_A):
            layers.add(key[len(prefix):-len(_LORA_A)])
            rank = max(rank, tensor.shape[0])
    return layers, rank


@dataclass
class HotswapSlots:
    """The slots of one compiled pipeline: which LoRA (adapter name) each holds, and its layers and scales."""

    layout: SlotLayout
    contents: list[str | None]  # the ``ResolvedLora.adapter_name`` each slot holds (None: free)
    files: list[Path]  # the file each slot's layers come from (its first file)
    layers: list[frozenset[str]] = field(default_factory=list)
    base_scales: list[list[tuple[Any, float]]] = field(default_factory=list)  # (LoRA layer, weight-1 scaling)

    @property
    def names(self) -> list[str]:
        return [slot_name(index) for index in range(self.layout.count)]

    @classmethod
    def create(cls, pipe: Any, resolved: ResolvedLoras, layout: SlotLayout) -> HotswapSlots:
        """Load the job's files into new slots (a slot it does not need gets a copy of its first file,
        at weight 0), activate them all and prepare them for hotswapping."""
        wanted = _files_by_adapter(resolved)
        _check_count(wanted, layout.count)
        files = list(wanted.values())
        files += files[:1] * (layout.count - len(files))
        slots = cls(layout, list(wanted) + [None] * (layout.count - len(wanted)), files)
        try:
            for index, path in enumerate(files):
                slots._check_file(pipe, path, index, layers=None)
                adapters.load_adapter(pipe, path, slot_name(index))
            pipe.set_adapters(slots.names, adapter_weights=[1.0] * layout.count)
            from peft.utils.hotswap import prepare_model_for_compiled_hotswap

            for model in _transformers(pipe):
                prepare_model_for_compiled_hotswap(model, target_rank=layout.max_rank, check_compiled="ignore")
        except Exception:
            adapters.delete(pipe, slots.names)
            raise
        slots.layers = [frozenset(_lora_layers(pipe.transformer, name)) for name in slots.names]
        slots.base_scales = [slots._scales(pipe, index) for index in range(layout.count)]
        return slots

    def fill(self, pipe: Any, resolved: ResolvedLoras) -> int:
        """Swap the job's files that no slot holds into slots it does not need; the number swapped in."""
        wanted = _files_by_adapter(resolved)
        _check_count(wanted, self.layout.count)
        free = [index for index, held in enumerate(self.contents) if held not in wanted]
        swapped = 0
        for adapter_name, path in wanted.items():
            if adapter_name in self.contents:
                continue
            index = free.pop(0)
            self._check_file(pipe, path, index, layers=self.layers[index])
            try:
                adapters.load_adapter(pipe, path, slot_name(index), hotswap=True)
            except VgenError as error:
                adapters.delete(pipe, self.names)
                raise SlotsLost(f"{error} (hotswapping it into {slot_name(index)} failed, so the LoRA slots of "
                                "the compiled pipeline were removed: the next LoRA job rebuilds them and recompiles)"
                                ) from error
            self.contents[index] = adapter_name
            self.base_scales[index] = self._scales(pipe, index)
            swapped += 1
        return swapped

    def set_weights(self, resolved: ResolvedLoras, weights: list[float]) -> None:
        """Write ``weights`` (one per ``resolved.adapter_names``) into the slots' scalings; 0 for the others."""
        by_adapter = dict(zip(resolved.adapter_names, weights))
        for index, held in enumerate(self.contents):
            weight = by_adapter.get(held, 0.0)
            for layer, scale in self.base_scales[index]:
                layer.scaling[slot_name(index)].fill_(weight * scale)

    def _check_file(self, pipe: Any, path: Path, index: int, *, layers: frozenset[str] | None) -> None:
        """Refuse a file that cannot go into slot ``index`` before diffusers loads it (a failed hotswap
        would cost the slot). The file is read here and again by ``load_lora_weights``, which takes the
        LoRA's alpha from the file's metadata (a state dict passed instead would lose it)."""
        state = _read_state(pipe, path)
        file_layers, rank = _layers_and_rank(pipe, state)
        if rank > self.layout.max_rank:
            raise VgenError(f"LoRA file {path}: rank {rank} is above runtime.lora_max_rank={self.layout.max_rank}, "
                            "the rank the compiled pipeline's LoRA slots are padded to (raise it, or use "
                            "runtime.compile=off)")
        if layers is not None and (extra := sorted(file_layers - layers)):
            more = f" and {len(extra) - 2} more" if len(extra) > 2 else ""
            raise VgenError(f"LoRA file {path}: cannot hotswap it into the compiled pipeline: it adapts "
                            f"{len(extra)} layer(s) that {slot_name(index)} (first loaded from {self.files[index]}) "
                            f"does not ({', '.join(extra[:2])}{more}); a slot's first LoRA fixes its layers, so "
                            "put the LoRA with the most layers first in the queue, or use runtime.compile=off")

    def _scales(self, pipe: Any, index: int) -> list[tuple[Any, float]]:
        name = slot_name(index)
        return [(layer, float(layer.scaling[name])) for model in _transformers(pipe)
                for layer in _lora_layers(model, name).values()]


def _files_by_adapter(resolved: ResolvedLoras) -> dict[str, Path]:
    """``{adapter name: file}`` in ``resolved.adapter_names`` order (entries sharing content share a file)."""
    files: dict[str, Path] = {}
    for entry in resolved.entries:
        files.setdefault(entry.adapter_name, entry.path)
    return files


def _check_count(wanted: dict[str, Path], count: int) -> None:
    if len(wanted) > count:
        files = ", ".join(str(path) for path in wanted.values())
        raise VgenError(f"LoRA file(s) {files}: the job uses {len(wanted)} LoRA files but the compiled pipeline has "
                        f"{count} LoRA slot(s), fixed by the most files one job of the run used when it first "
                        "loaded LoRAs; run this job in its own run, or use runtime.compile=off")
