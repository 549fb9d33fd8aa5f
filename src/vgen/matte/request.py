"""What a matting job asks for (:class:`MatteRequest`) and its validated, decoded inputs.

Everything here runs before any model loads, so a bad file or option fails fast with a
:class:`ConfigError` naming the field and the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from vgen.devices import DEVICE_PATTERN
from vgen.errors import ConfigError
from vgen.matte.audio import AudioStreamInfo, probe_audio_streams
from vgen.matte.prompts import ObjectPrompt, check_in_frame, has_prompts, parse_prompts
from vgen.matte.reader import MASK_CHANNELS, read_clip
from vgen.matte.temporal import check_temporal
from vgen.matte.trimap import adjust_mask

TARGETS = ("foreground", "background")
MASK_TYPES = ("alpha", "greenscreen")
MAX_TARGET_SIDE = 8192
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass
class MatteRequest:
    """One matting job. ``end_frame`` is exclusive (None = to the end); ``target_size`` is None
    (keep), ``"WxH"`` or a maximum side in pixels; ``target="background"`` inverts the alpha;
    ``mask_channel`` (None = a grey mask or the alpha of an RGBA one) picks the mask's channel.
    The subject is marked by ``mask`` or by prompts (``points``/``box`` or ``objects``, see
    :mod:`vgen.matte.prompts`) on ``prompt_frame`` (a frame index of the video; None = ``start_frame``),
    which is also the frame a mask image belongs to."""

    video: str
    mask: Optional[str] = None
    start_frame: int = 0
    end_frame: Optional[int] = None
    target_size: Union[None, str, int] = None
    target: str = "foreground"
    mask_type: str = "alpha"
    erode_kernel: int = 0
    dilate_kernel: int = 0
    resize_mask: bool = False
    device: str = "auto"
    mask_channel: Optional[str] = None
    points: Optional[List[Any]] = None
    box: Optional[List[Any]] = None
    objects: Optional[List[Any]] = None
    prompt_frame: Optional[int] = None
    temporal_strength: float = 0.7
    temporal_motion_threshold: float = 0.05

    @property
    def prompt_start(self) -> int:
        """The prompt frame as a video frame index."""
        return self.start_frame if self.prompt_frame is None else self.prompt_frame


@dataclass
class MatteInputs:
    """Decoded inputs at the working size: ``masks`` is (1, H, W) for a mask image (of the prompt
    frame) or (F, H, W) for a per-frame mask video, float32 in [0, 1], erode/dilate already applied;
    None when ``prompts`` (scaled to the working size) mark the subject instead. ``prompt_index``
    is the prompt frame's index in ``frames``."""

    frames: np.ndarray
    fps: Optional[float]
    masks: Optional[np.ndarray]
    audio_streams: List[AudioStreamInfo] = field(default_factory=list)
    source_size: Tuple[int, int] = (0, 0)  # (H, W) before any target_size resize
    prompts: List[ObjectPrompt] = field(default_factory=list)
    prompt_index: int = 0

    @property
    def is_mask_video(self) -> bool:
        return self.masks is not None and self.masks.shape[0] == self.frames.shape[0]

    @property
    def prompt_mask(self) -> np.ndarray:
        """The given mask of the prompt frame."""
        return self.masks[self.prompt_index] if self.is_mask_video else self.masks[0]


def validate_request(request: MatteRequest) -> None:
    """Check the options that need no file access."""
    if request.target not in TARGETS:
        raise ConfigError(f"target: expected one of {', '.join(TARGETS)}, got {request.target!r}")
    if request.mask_type not in MASK_TYPES:
        raise ConfigError(f"mask_type: expected one of {', '.join(MASK_TYPES)}, got {request.mask_type!r}")
    if request.mask_channel is not None and request.mask_channel not in MASK_CHANNELS:
        raise ConfigError(
            f"input.mask_channel: expected null or one of {', '.join(MASK_CHANNELS)}, got {request.mask_channel!r}"
        )
    if not DEVICE_PATTERN.match(str(request.device)):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {request.device!r}")
    for name in ("erode_kernel", "dilate_kernel"):
        value = getattr(request, name)
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name}: expected a kernel size >= 0 (0 = off), got {value!r}")
    if not isinstance(request.start_frame, int) or request.start_frame < 0:
        raise ConfigError(f"start_frame: expected an integer >= 0, got {request.start_frame!r}")
    if request.end_frame is not None and (
        not isinstance(request.end_frame, int) or request.end_frame <= request.start_frame
    ):
        raise ConfigError(
            f"end_frame: expected None or an integer > start_frame ({request.start_frame}), got {request.end_frame!r}"
        )
    if request.target_size is not None:
        resolve_target_size(request.target_size, (2, 2))
    check_temporal(request.temporal_strength, request.temporal_motion_threshold)
    prompted = has_prompts(request.points, request.box, request.objects)
    if prompted == (request.mask is not None):
        raise ConfigError(
            "input.mask: give a mask file or prompts (input.points / input.box / input.objects), "
            + ("not both" if prompted else "none given")
        )
    parse_prompts(request.points, request.box, request.objects)
    if request.prompt_frame is not None and (
        not isinstance(request.prompt_frame, int) or isinstance(request.prompt_frame, bool)
        or request.prompt_frame < request.start_frame
        or (request.end_frame is not None and request.prompt_frame >= request.end_frame)
    ):  # fmt: skip
        raise ConfigError(
            f"input.prompt_frame: expected None or a frame index in [start_frame, end_frame) = "
            f"[{request.start_frame}, {request.end_frame if request.end_frame is not None else 'end'}), "
            f"got {request.prompt_frame!r}"
        )


def resolve_target_size(spec: Union[None, str, int], source_hw: Tuple[int, int]) -> Tuple[int, int]:
    """(H, W) to work at: ``None`` keeps ``source_hw``; ``"WxH"`` is exact; an int (or digit
    string) is the longest side, the other side scaled to keep the aspect ratio, rounded to even."""
    if spec is None:
        return source_hw
    if isinstance(spec, bool):
        raise ConfigError(f"target_size: expected None, 'WxH' or a maximum side, got {spec!r}")
    text = str(spec).strip()
    exact = _SIZE_PATTERN.match(text)
    if exact:
        width, height = int(exact.group(1)), int(exact.group(2))
        _check_side(spec, width)
        _check_side(spec, height)
        return height, width
    if not text.isdigit():
        raise ConfigError(
            f"target_size: expected None, 'WxH' (e.g. '832x480') or a maximum side (e.g. 832), got {spec!r}"
        )
    side = int(text)
    _check_side(spec, side)
    height, width = source_hw
    scale = side / max(height, width)
    return _even(height * scale), _even(width * scale)


def _check_side(spec, side: int) -> None:
    if side <= 0 or side % 2 or side > MAX_TARGET_SIDE:
        raise ConfigError(f"target_size: {spec!r}: every side must be positive, even and <= {MAX_TARGET_SIDE}")


def _even(value: float) -> int:
    return max(2, int(round(value / 2.0)) * 2)


def load_inputs(request: MatteRequest) -> MatteInputs:
    """Validate ``request`` and decode its video range, mask(s) or prompts, and audio stream list."""
    validate_request(request)
    clip = read_clip(request.video, "video", request.start_frame, request.end_frame)
    frames = clip.frames
    source_hw = frames.shape[1:3]
    frame_count = frames.shape[0]
    prompt_index = request.prompt_start - request.start_frame
    if prompt_index >= frame_count:
        raise ConfigError(
            f"input.prompt_frame: frame {request.prompt_start} is outside the frames "
            f"[{request.start_frame}, {request.start_frame + frame_count}) of {request.video}"
        )
    working_hw = resolve_target_size(request.target_size, source_hw)

    prompts = parse_prompts(request.points, request.box, request.objects)
    check_in_frame(prompts, source_hw)
    prompts = [prompt.scaled(source_hw, working_hw) for prompt in prompts]
    masks = None if prompts else _load_masks(request, frame_count, source_hw)

    if working_hw != source_hw:
        frames = _resize(frames, working_hw, "bilinear")
        masks = None if masks is None else _resize(masks, working_hw, "bilinear")
    return MatteInputs(
        frames=frames,
        fps=clip.fps,
        masks=masks,
        audio_streams=probe_audio_streams(request.video),
        source_size=source_hw,
        prompts=prompts,
        prompt_index=prompt_index,
    )


def _load_masks(request: MatteRequest, frame_count: int, source_hw) -> np.ndarray:
    """The mask file's masks at the source size, erode/dilate applied."""
    masks = _read_masks(request, frame_count)
    masks = _match_mask_size(request, masks, source_hw)
    masks = adjust_mask(masks, request.erode_kernel, request.dilate_kernel)
    if not np.any(masks > 0.5):
        raise ConfigError(
            f"erode_kernel: eroding {request.mask} by {request.erode_kernel} px leaves an empty mask; "
            "use a smaller kernel"
        )
    return masks


def _read_masks(request: MatteRequest, frame_count: int) -> np.ndarray:
    """The first-frame mask (1, H, W), or the mask video's frames for the video's range
    (mask video frame i belongs to video frame i)."""
    masks = read_clip(
        request.mask, "mask", request.start_frame, request.start_frame + frame_count, as_mask=True,
        mask_channel=request.mask_channel,
    ).frames
    if not np.any(masks > 0.5):
        raise ConfigError(f"mask: {request.mask} is empty (no pixel above 0.5); white/opaque marks the subject")
    return masks


def _match_mask_size(request: MatteRequest, masks: np.ndarray, video_hw) -> np.ndarray:
    mask_hw = masks.shape[1:3]
    if mask_hw == tuple(video_hw):
        return masks
    if not request.resize_mask:
        raise ConfigError(
            f"mask: {request.mask} is {mask_hw[1]}x{mask_hw[0]} but {request.video} frames are "
            f"{video_hw[1]}x{video_hw[0]} (WxH); provide a mask of the frame size or set resize_mask: true"
        )
    return _resize(masks, tuple(video_hw), "nearest")


def _resize(stack: np.ndarray, hw: Tuple[int, int], method: str) -> np.ndarray:
    """Resize (F, H, W[, C]) frames or masks to ``hw`` with Pillow, keeping the dtype."""
    from PIL import Image

    resample = Image.Resampling.NEAREST if method == "nearest" else Image.Resampling.BILINEAR
    height, width = hw
    resized = [np.asarray(Image.fromarray(item).resize((width, height), resample)) for item in stack]
    return np.stack(resized).astype(stack.dtype, copy=False)
