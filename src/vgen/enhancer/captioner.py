"""Florence-2 captioner: a detailed caption of a job's start image, fed to the rewrite LLM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vgen.enhancer.checkpoints import CheckpointSource
from vgen.enhancer.device import OffloadableModel, model_dtype

CAPTION_TASK = "<DETAILED_CAPTION>"
CAPTION_NUM_BEAMS = 3  # Florence-2's recommended decoding for captions


class Florence2Captioner(OffloadableModel):
    def __init__(self, model: Any, processor: Any, device: str):
        super().__init__(model, device)
        self.processor = processor

    @classmethod
    def load(cls, source: CheckpointSource, device: str) -> "Florence2Captioner":
        from transformers import AutoProcessor, Florence2ForConditionalGeneration

        processor = AutoProcessor.from_pretrained(source.directory)
        model = Florence2ForConditionalGeneration.from_pretrained(source.directory, dtype=model_dtype(device))
        return cls(model.to(device).eval(), processor, device)

    def caption(self, image: Any, max_new_tokens: int) -> str:
        """Caption a PIL image, an image file path or an HxWxC uint8 array; whitespace collapsed."""
        import torch

        self.to_device()
        pil = _to_pil(image)
        inputs = self.processor(text=CAPTION_TASK, images=pil, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=max_new_tokens, num_beams=CAPTION_NUM_BEAMS, do_sample=False
            )
        text = self.processor.batch_decode(output, skip_special_tokens=True)[0]
        return " ".join(text.split())


def _to_pil(image: Any):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            return opened.convert("RGB")
    return Image.fromarray(image).convert("RGB")
