"""Typed schemas of ``python -m vgen.matte`` (dataclasses registered in Hydra's ConfigStore).

The primary config ``conf/matte.yaml`` extends ``matte_schema``; it shares vgen's ``output`` and
``metadata`` groups. Each backend option (``conf/matte/backend/<name>.yaml``) extends
``matte/backend/base_<name>``, a schema derived from the backend's own dataclass fields, so an
option the backend does not take fails when Hydra composes the config, naming the key.
"""

from __future__ import annotations

from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, Optional, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from vgen.config.schema import MetadataConfig, OutputConfig
from vgen.matte.backends import BACKENDS
from vgen.matte.request import MatteRequest


@dataclass
class MatteInputConfig:
    """The source (a video or an image; or several: ``videos``, ``csv``) and its mask (an image of
    the prompt frame or a per-frame mask video) or prompts (``points``, ``box`` or ``objects``, see
    :mod:`vgen.matte.prompts`); ``end_frame`` is exclusive, null = to the end; ``mask_channel``
    picks the mask's channel."""

    video: Optional[str] = MISSING
    videos: Optional[Any] = None  # several clips: paths or {video: ..., mask: ..., ...} (see vgen.matte.clips)
    csv: Optional[str] = None  # several clips from a CSV file with columns video[,mask]
    mask: Optional[str] = MatteRequest.mask
    start_frame: int = MatteRequest.start_frame
    end_frame: Optional[int] = MatteRequest.end_frame
    mask_channel: Optional[str] = MatteRequest.mask_channel
    points: Optional[Any] = MatteRequest.points
    box: Optional[Any] = MatteRequest.box
    objects: Optional[Any] = MatteRequest.objects
    prompt_frame: Optional[int] = MatteRequest.prompt_frame


@dataclass
class MatteConfig:
    """The ``matte`` node: ``backend`` comes from the ``matte/backend`` group."""

    backend: Any = MISSING


@dataclass
class MatteAppConfig:
    """Everything one matting run needs; the request options mirror :class:`MatteRequest`."""

    input: MatteInputConfig = field(default_factory=MatteInputConfig)
    matte: MatteConfig = field(default_factory=MatteConfig)
    output: OutputConfig = MISSING
    metadata: MetadataConfig = MISSING
    target: str = MatteRequest.target
    mask_type: str = MatteRequest.mask_type
    target_size: Any = MatteRequest.target_size  # null, "WxH" or a maximum side in pixels
    erode_kernel: int = MatteRequest.erode_kernel
    dilate_kernel: int = MatteRequest.dilate_kernel
    resize_mask: bool = MatteRequest.resize_mask
    device: str = MatteRequest.device
    temporal_strength: float = MatteRequest.temporal_strength
    temporal_motion_threshold: float = MatteRequest.temporal_motion_threshold
    attach_audio: bool = False
    alpha_output: str = "lossless"
    dry_run: bool = False
    run_dir: str = MISSING


def backend_schema(name: str, backend_class: type) -> type:
    """A config dataclass with ``name`` plus every init field of ``backend_class`` (same types, same defaults)."""
    hints = get_type_hints(backend_class)
    options = [
        (item.name, hints[item.name], field(default=MISSING if item.default is NO_DEFAULT else item.default))
        for item in fields(backend_class)
        if item.init
    ]
    schema = make_dataclass(f"{backend_class.__name__}Config", [("name", str, field(default=name)), *options])
    schema.__module__ = __name__
    return schema


# Module-level names so pickled configs (e.g. by the submitit launcher) can find the classes.
GuidedBackendConfig = backend_schema("guided", BACKENDS["guided"])
Sam2VitMatteBackendConfig = backend_schema("sam2_vitmatte", BACKENDS["sam2_vitmatte"])
BACKEND_SCHEMAS = {"guided": GuidedBackendConfig, "sam2_vitmatte": Sam2VitMatteBackendConfig}


def register_matte_schemas() -> None:
    """Register ``matte_schema`` and ``matte/backend/base_<name>`` per backend (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="matte_schema", node=MatteAppConfig)
    for name, schema in BACKEND_SCHEMAS.items():
        store.store(group="matte/backend", name=f"base_{name}", node=schema)
