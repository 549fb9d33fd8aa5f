"""Prompt enhancement: rewrite short prompts with a small local LLM, optionally from an image caption.

Importing this package is cheap; torch/transformers load only when a model does.
"""

from vgen.enhancer.bridge import EnhancementResult, PromptEnhancerBridge
from vgen.enhancer.settings import validate_enhancer_config

__all__ = ["EnhancementResult", "PromptEnhancerBridge", "validate_enhancer_config"]
