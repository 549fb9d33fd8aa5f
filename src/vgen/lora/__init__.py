"""LoRA library: discovery, Wan2GP-compatible presets and multipliers, and adapter injection."""

from vgen.lora.library import LoRALibrary
from vgen.lora.manager import LoRAInjectionManager
from vgen.lora.multipliers import LoraSchedule, parse_multiplier, split_multiplier_tokens
from vgen.lora.resolution import LoRAPresetResolution, ResolvedLora, ResolvedLoras

__all__ = [
    "LoRAInjectionManager",
    "LoRALibrary",
    "LoRAPresetResolution",
    "LoraSchedule",
    "ResolvedLora",
    "ResolvedLoras",
    "parse_multiplier",
    "split_multiplier_tokens",
]
