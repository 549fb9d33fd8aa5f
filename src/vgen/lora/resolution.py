"""Results of resolving LoRA choices: a preset's contents and one job's LoRA set."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from vgen.lora.multipliers import LoraSchedule
from vgen.lora.prompts import PromptTransform


@dataclass(frozen=True)
class LoRAPresetResolution:
    """A preset as written: LoRA ``names`` with their unparsed ``multipliers`` and its prompt.

    ``prompt`` is the full prompt when ``prompt_is_full``, else the prefix it adds.
    """

    name: str
    path: Path
    names: list[str]
    multipliers: list[str | float]
    prompt: str
    prompt_is_full: bool
    transform: PromptTransform


class ResolvedLora(NamedTuple):
    name: str
    path: Path
    sha256: str
    schedule: LoraSchedule

    @property
    def adapter_name(self) -> str:
        """Stable per file content, so the same file is loaded once per pipeline whatever its name."""
        return f"vgen_{self.sha256[:16]}"


@dataclass
class ResolvedLoras:
    """The LoRAs of one job. ``applied_weights[step]`` records the adapter weights set for each step.

    Entries whose files have the same content (e.g. a LoRA and its copy under another name) share one
    adapter, whose weight at each step is the sum of theirs: a LoRA's effect is linear in its weight,
    so ``a:0.2`` + ``a_copy:0.8`` is exactly ``a:1.0``.
    """

    entries: list[ResolvedLora] = field(default_factory=list)
    preset: str | None = None
    prompt: PromptTransform = field(default_factory=PromptTransform)
    applied_weights: list[list[float]] = field(default_factory=list)

    @property
    def adapter_names(self) -> list[str]:
        """One name per distinct file content, in the order the entries first use it."""
        return list(dict.fromkeys(entry.adapter_name for entry in self.entries))

    @property
    def is_scheduled(self) -> bool:
        return any(not entry.schedule.is_constant for entry in self.entries)

    def weights_for_step(self, step: int) -> list[float]:
        """The weight of each of ``adapter_names`` at ``step`` (summed over entries sharing an adapter)."""
        weights = dict.fromkeys(self.adapter_names, 0.0)
        for entry in self.entries:
            weights[entry.adapter_name] += entry.schedule.weight_for_step(step)
        return list(weights.values())

    def payload(self) -> dict[str, Any]:
        """``adapter_payloads["lora"]``: empty when the job uses no LoRA and keeps its prompt."""
        if not self.entries and self.prompt.is_identity:
            return {}
        return {
            "loras": [
                {"name": e.name, "path": str(e.path), "sha256": e.sha256, "weight": e.schedule.to_payload()}
                for e in self.entries
            ],
            "preset": self.preset,
            "prompt_transform": self.prompt.to_payload(),
        }
