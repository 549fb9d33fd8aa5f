"""What stays resident in the process between runs: the one explicit piece of module-level state.

Hydra's basic launcher runs every sweep point in one process. Keeping the loaded pipeline, the LoRA
adapters injected into it and the prompt-enhancer models here means a sweep loads each of them once.
Everything in it is keyed (pipeline identity, LoRA file hash, enhancer config hash), so a point that
needs something else simply gets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vgen.enhancer.bridge import PromptEnhancerBridge
from vgen.lora.manager import LoRAInjectionManager
from vgen.pipeline_cache import PipelineCache


@dataclass
class ResidentModels:
    pipelines: PipelineCache = field(default_factory=PipelineCache)
    loras: LoRAInjectionManager = field(default_factory=LoRAInjectionManager)
    enhancer: PromptEnhancerBridge = field(default_factory=PromptEnhancerBridge)


RESIDENT = ResidentModels()
