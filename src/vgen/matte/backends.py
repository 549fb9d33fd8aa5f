"""Matting backends: ``backend.run(inputs, request, progress=None) -> Matte`` (alpha (F, H, W) float32).

``guided``: no weights; refines a per-frame mask video into a soft alpha with the guided filter.
``sam2_vitmatte``: SAM2 video tracking propagates the prompt frame's mask (given, or made by SAM2
from click/box prompts) forward and backward through the clip, then ViTMatte turns a trimap around
each tracked mask into a soft alpha. Several prompted objects are tracked separately and merged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Protocol

import numpy as np

from vgen.config.schema import RuntimeConfig
from vgen.devices import resolve_placement
from vgen.errors import CheckpointNotFoundError, ConfigError
from vgen.matte.guided import refine_alpha
from vgen.matte.request import MatteInputs, MatteRequest
from vgen.matte.tiny_models import BUILTIN_PREFIX, check_builtin, resolve_builtin
from vgen.matte.trimap import TRIMAP_BACKGROUND, TRIMAP_FOREGROUND, force_sure_regions, make_trimap

log = logging.getLogger("vgen.matte")
ProgressFn = Callable[[int, int], None]
"""Called as ``progress(frames_done, frames_total)`` after every frame."""

CONFIG_NODE = "matte.backend"  # where a backend's options sit in the composed config: the command-line key prefix
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Matte:
    """A backend's result: the alpha (F, H, W) float32 in [0, 1], and the binary (H, W) mask SAM2
    made from prompts on the prompt frame (None when a mask file marked the subject)."""

    alpha: np.ndarray
    prompt_mask: Optional[np.ndarray] = None


class MatteBackend(Protocol):
    name: str

    def check(self, inputs: MatteInputs, request: MatteRequest) -> None:
        """Raise a :class:`ConfigError` when the backend cannot matte these inputs (no model loads)."""

    def run(self, inputs: MatteInputs, request: MatteRequest, progress: Optional[ProgressFn] = None) -> Matte: ...


@dataclass
class GuidedBackend:
    """Guided-filter refinement of a per-frame mask video (radius in px, eps on [0, 1] colours);
    the mask eroded by ``trimap_erode`` px is solid foreground, outside it dilated by
    ``trimap_dilate`` px solid background (0 = off), as in the ``sam2_vitmatte`` trimap."""

    radius: int = 4
    eps: float = 1e-3
    trimap_erode: int = 6
    trimap_dilate: int = 6
    name: str = field(default="guided", init=False)

    def __post_init__(self) -> None:
        if self.radius < 1 or not self.eps > 0:
            raise ConfigError(f"{CONFIG_NODE}: expected radius >= 1 and eps > 0, got {self.radius} and {self.eps}")
        for name in ("trimap_erode", "trimap_dilate"):
            value = getattr(self, name)
            if value < 0:
                raise ConfigError(f"{CONFIG_NODE}.{name}: expected a kernel size >= 0 (0 = off), got {value}")

    def check(self, inputs: MatteInputs, request: MatteRequest) -> None:
        if inputs.prompts:
            raise ConfigError(
                "input.points/input.box/input.objects: backend 'guided' refines a per-frame mask video (input.mask); "
                "prompts need backend sam2_vitmatte (or tiny)"
            )
        if not inputs.is_mask_video:
            raise ConfigError(
                f"mask: backend 'guided' refines a per-frame mask video, but {request.mask} is a single "
                "image; give a mask video with one mask per frame, or use backend sam2_vitmatte to track "
                "a first-frame mask"
            )

    def run(self, inputs: MatteInputs, request: MatteRequest, progress: Optional[ProgressFn] = None) -> Matte:
        self.check(inputs, request)
        total = inputs.frames.shape[0]
        alpha = np.empty(inputs.masks.shape, dtype=np.float32)
        for index in range(total):
            refined = refine_alpha(inputs.frames[index], inputs.masks[index], self.radius, self.eps)
            alpha[index] = force_sure_regions(refined, inputs.masks[index], self.trimap_erode, self.trimap_dilate)
            _report(progress, index + 1, total)
        return Matte(alpha)


@dataclass
class Sam2VitMatteBackend:
    """SAM2 video propagation of the prompt frame's mask or prompts + ViTMatte edge refinement.

    ``sam2_model``/``vitmatte_model`` are local directories or Hugging Face ids already in the
    cache (nothing is downloaded). ``trimap_erode``/``trimap_dilate`` size the unknown band that
    ViTMatte resolves around each tracked mask.
    """

    sam2_model: str = "facebook/sam2.1-hiera-tiny"
    vitmatte_model: str = "hustvl/vitmatte-small-composition-1k"
    trimap_erode: int = 10
    trimap_dilate: int = 10
    cache_dir: Optional[str] = None
    name: str = field(default="sam2_vitmatte", init=False)
    _models: Optional[tuple] = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("sam2_model", "vitmatte_model"):  # checked before any model loads
            check_builtin(getattr(self, name), f"{CONFIG_NODE}.{name}")

    def check(self, inputs: MatteInputs, request: MatteRequest) -> None:
        if not inputs.prompts and not np.any(inputs.prompt_mask > 0.5):
            raise ConfigError(
                f"mask: frame {request.prompt_start} of {request.mask} is empty; SAM2 needs the subject marked there"
            )

    def run(self, inputs: MatteInputs, request: MatteRequest, progress: Optional[ProgressFn] = None) -> Matte:
        import torch

        self.check(inputs, request)
        device = _resolve_device(request.device)
        sam2, vitmatte, vitmatte_processor = self._load()
        sam2, vitmatte = sam2.to(device), vitmatte.to(device)
        tracked = self._track(sam2, inputs, device, progress)
        total = 2 * inputs.frames.shape[0]
        alpha = np.empty(tracked.shape, dtype=np.float32)
        with torch.inference_mode():
            for index, (frame, mask) in enumerate(zip(inputs.frames, tracked)):
                alpha[index] = self._refine(vitmatte, vitmatte_processor, frame, mask, device)
                _report(progress, inputs.frames.shape[0] + index + 1, total)
        return Matte(alpha, tracked[inputs.prompt_index] if inputs.prompts else None)

    def _load(self) -> tuple:
        """Load both models and the ViTMatte processor once per backend instance.

        The Pillow ViTMatte processor is used because the default one needs torchvision."""
        if self._models is None:
            if any(source.startswith(BUILTIN_PREFIX) for source in (self.sam2_model, self.vitmatte_model)):
                log.warning("matte.backend: built-in tiny random-init models: the matte is meaningless (a smoke "
                            "run); real mattes: matte/backend=sam2_vitmatte with checkpoints")
            from transformers import Sam2VideoModel, VitMatteForImageMatting, VitMatteImageProcessorPil

            sam2 = load_pretrained(Sam2VideoModel, self.sam2_model, f"{CONFIG_NODE}.sam2_model", self.cache_dir)
            vitmatte = load_pretrained(
                VitMatteForImageMatting, self.vitmatte_model, f"{CONFIG_NODE}.vitmatte_model", self.cache_dir
            )
            processor = load_pretrained(
                VitMatteImageProcessorPil, self.vitmatte_model, f"{CONFIG_NODE}.vitmatte_model", self.cache_dir
            )
            self._models = (sam2.eval(), vitmatte.eval(), processor)
        return self._models

    def _track(self, sam2, inputs: MatteInputs, device: str, progress: Optional[ProgressFn]) -> np.ndarray:
        """Binary (F, H, W) masks, the union of the tracked objects: the prompts (or the mask) go to
        SAM2 on the prompt frame, then the frames stream forward from it, then backward before it.

        The frames are preprocessed here (resize to the model's square input, ImageNet
        normalisation, as ``Sam2VideoVideoProcessor`` does) because the transformers processor
        classes require torchvision, which has no build matching this torch.
        """
        import torch
        import torch.nn.functional as F
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        frame_count, height, width = inputs.frames.shape[:3]
        size = _square_size(sam2.config.image_size)
        session = Sam2VideoInferenceSession(
            video_height=height, video_width=width, inference_device=device, inference_state_device=device,
            video_storage_device="cpu", dtype=torch.float32,
        )  # fmt: skip
        _add_prompts(session, inputs, size, device)

        mean = torch.tensor(IMAGENET_MEAN, device=device).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1)
        start = inputs.prompt_index
        order = [(index, False) for index in range(start, frame_count)] + [
            (index, True) for index in range(start - 1, -1, -1)
        ]
        tracked = np.empty((frame_count, height, width), dtype=bool)
        with torch.inference_mode():
            for step, (index, reverse) in enumerate(order):
                pixels = torch.from_numpy(inputs.frames[index]).to(device).permute(2, 0, 1)[None].float() / 255.0
                pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
                output = sam2(inference_session=session, frame=(pixels[0] - mean) / std, frame_idx=index,
                              reverse=reverse)
                logits = F.interpolate(output.pred_masks.float(), size=(height, width), mode="bilinear",
                                       align_corners=False)  # (objects, 1, H, W)
                tracked[index] = (logits[:, 0] > 0).any(dim=0).cpu().numpy()
                _report(progress, step + 1, 2 * frame_count)
        return tracked

    def _refine(self, vitmatte, processor, frame: np.ndarray, mask: np.ndarray, device: str) -> np.ndarray:
        """ViTMatte alpha for one frame; sure foreground/background of the trimap stay 1/0."""
        height, width = mask.shape
        trimap = make_trimap(mask.astype(np.float32), self.trimap_erode, self.trimap_dilate)
        encoded = processor(images=frame, trimaps=trimap, return_tensors="pt")
        pixel_values = encoded["pixel_values"].to(device)
        alpha = vitmatte(pixel_values=pixel_values).alphas[0, 0, :height, :width].float().cpu().numpy()
        alpha = np.clip(alpha, 0.0, 1.0)
        alpha[trimap == TRIMAP_FOREGROUND] = 1.0
        alpha[trimap == TRIMAP_BACKGROUND] = 0.0
        return alpha


BACKENDS: Dict[str, type] = {"guided": GuidedBackend, "sam2_vitmatte": Sam2VitMatteBackend}


def build_backend(name: str, **options: Any) -> MatteBackend:
    """The backend called ``name`` configured with ``options`` (its dataclass fields)."""
    if name not in BACKENDS:
        raise ConfigError(f"backend.name: unknown matting backend {name!r}; expected one of {', '.join(BACKENDS)}")
    backend_class = BACKENDS[name]
    accepted = {item.name for item in fields(backend_class) if item.init}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(
            f"backend: option(s) {', '.join(unknown)} not accepted by backend {name!r} "
            f"(accepted: {', '.join(sorted(accepted))})"
        )
    return backend_class(**options)


def load_pretrained(model_class, source: str, field_name: str, cache_dir: Optional[str] = None):
    """``model_class.from_pretrained`` from a built-in tiny model, a local directory or the Hugging
    Face cache only."""
    if source.startswith(BUILTIN_PREFIX):
        loaded = model_class.from_pretrained(resolve_builtin(source, field_name))
    elif Path(source).is_dir():
        loaded = model_class.from_pretrained(source)
    else:
        loaded = _from_hf_cache(model_class, source, field_name, cache_dir)
    log.info("loaded %s from %s", model_class.__name__, source)  # once per model and run, however many clips
    return loaded


def _from_hf_cache(model_class, source: str, field_name: str, cache_dir: Optional[str]):
    try:
        return model_class.from_pretrained(source, local_files_only=True, cache_dir=cache_dir)
    except OSError as error:
        from huggingface_hub.constants import HF_HUB_CACHE

        raise CheckpointNotFoundError(
            f"{field_name}: checkpoint {source!r} not found locally (not a directory; not in the Hugging Face "
            f"cache {cache_dir or HF_HUB_CACHE}). vgen never downloads at run time: fetch it with "
            f"`huggingface-cli download {source}` (or `hf download {source}`), or set {field_name}=<local dir>; "
            "matte/backend=tiny runs offline with built-in random-init models (meaningless output, for smoke tests)"
        ) from error


def _add_prompts(session, inputs: MatteInputs, size: int, device: str) -> None:
    """Put the prompt frame's inputs into a SAM2 ``session``: each prompted object's clicks and box
    (object ids 1, 2, ...), or the given mask as object 1."""
    import torch
    import torch.nn.functional as F

    from vgen.matte.prompts import sam2_point_inputs

    frame = inputs.prompt_index
    if not inputs.prompts:
        mask = torch.from_numpy(inputs.prompt_mask > 0.5).float()[None, None].to(device)
        mask = F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        session.add_mask_inputs(session.obj_id_to_idx(1), frame, (mask >= 0.5).float())
        session.obj_with_new_inputs = [1]
        return
    frame_hw = inputs.frames.shape[1:3]
    for object_id, prompt in enumerate(inputs.prompts, start=1):
        coords, labels = sam2_point_inputs(prompt, frame_hw, size)
        session.add_point_inputs(
            session.obj_id_to_idx(object_id), frame,
            {"point_coords": torch.from_numpy(coords), "point_labels": torch.from_numpy(labels)},
        )
    session.obj_with_new_inputs = list(range(1, len(inputs.prompts) + 1))


def _resolve_device(device: str) -> str:
    """auto -> cuda when available, else cpu; the same rules (and errors) as ``runtime.device``."""
    return resolve_placement(RuntimeConfig(device=device, dtype="float32")).device


def _square_size(image_size) -> int:
    return int(image_size[0] if isinstance(image_size, (list, tuple)) else image_size)


def _report(progress: Optional[ProgressFn], done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
