"""The rewrite LLM: a causal LM plus its tokenizer, prompted through the tokenizer's chat template."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgen.enhancer.checkpoints import CheckpointSource
from vgen.enhancer.device import OffloadableModel, model_dtype
from vgen.enhancer.gguf_cache import converted_checkpoint


@dataclass(frozen=True)
class Generation:
    text: str  # decoded new tokens, special tokens removed, not yet cleaned
    new_tokens: int
    seconds: float


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int
    temperature: float  # 0 -> greedy decoding (deterministic)
    top_p: float
    repetition_penalty: float  # > 1 discourages the loops small models fall into
    seed: int


class Rewriter(OffloadableModel):
    """A loaded causal LM; ``generate`` turns chat messages into text."""

    def __init__(self, model: Any, tokenizer: Any, device: str, origin: str):
        super().__init__(model, device)
        self.tokenizer = tokenizer
        self.origin = origin  # "gguf" (converted now), "converted_cache" or "pretrained"

    @classmethod
    def load(cls, source: CheckpointSource, device: str, cache_root: Path) -> "Rewriter":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        directory, origin = source.directory, "pretrained"
        if source.gguf_file:
            directory, converted_now = converted_checkpoint(source, cache_root)
            origin = "gguf" if converted_now else "converted_cache"
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=model_dtype(device)).to(device).eval()
        return cls(model, tokenizer, device, origin)

    def generate(self, messages: list[dict], settings: SamplingSettings, prefill: str = "",
                 stop: str | None = None) -> Generation:
        """The answer to ``messages``; ``prefill`` is put in the model's mouth (and not returned).

        ``stop``: generation also ends once the new text contains this string (kept in the text).
        """
        import torch

        self.to_device()
        inputs = self._encode(messages, prefill).to(self.device)
        prompt_length = inputs["input_ids"].shape[1]
        eos = self.tokenizer.eos_token_id
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "repetition_penalty": settings.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos,
        }
        if stop is not None:
            kwargs.update(stop_strings=[stop], tokenizer=self.tokenizer)
        if settings.temperature > 0:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
        else:  # explicit, so a checkpoint's generation_config cannot switch sampling on
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        started = time.perf_counter()
        cuda_devices = [torch.device(self.device)] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda_devices), torch.inference_mode():
            torch.manual_seed(settings.seed)
            output = self.model.generate(**inputs, **kwargs)
        seconds = time.perf_counter() - started
        new_ids = output[0, prompt_length:]
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        return Generation(text=text, new_tokens=int(new_ids.shape[0]), seconds=seconds)

    def _encode(self, messages: list[dict], prefill: str):
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            # the template already holds the special tokens (BOS included where the model has one)
            return self.tokenizer(text + prefill, return_tensors="pt", add_special_tokens=False)
        # A base model without a chat template: plain text with the system prompt first.
        text = "\n\n".join(m["content"] for m in messages) + "\n\nRewritten prompt: " + prefill
        return self.tokenizer(text.rstrip(), return_tensors="pt")

