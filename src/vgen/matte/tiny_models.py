"""Tiny random-init SAM2-video and ViTMatte checkpoints: the offline ``matte/backend=tiny``.

:func:`ensure_tiny_matte` builds them once into the vgen cache (``$VGEN_CACHE_DIR``, like the
``tiny_wan`` model); ``matte.backend.sam2_model=builtin:tiny_sam2`` and
``matte.backend.vitmatte_model=builtin:tiny_vitmatte`` load them through the real ``sam2_vitmatte``
path (loading, tracking, prompting, refinement) with no download. Their output is noise; only
shapes and ranges are meaningful: for smoke runs and CI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TINY_IMAGE_SIZE = 128  # SAM2 input side; must be a multiple of 16 (patch stride 4 x three 2x stages)
# SAM2's memory attention hard-codes 64 memory channels (kv_in_dim=64), and object pointers only
# get their expected shape when the model width is a larger multiple of the memory width (as in
# the real checkpoints: 256 / 64), hence 128 / 64.
HIDDEN = 128
MEMORY_CHANNELS = 64
TINY_MATTE_VERSION = "1"  # bump when the recipe below changes, so caches rebuild
BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("tiny_sam2", "tiny_vitmatte")  # builtin:<name>, a folder of tiny_matte_dir()


@dataclass(frozen=True)
class TinyMatteModels:
    sam2: Path
    vitmatte: Path


def tiny_matte_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    from vgen.models.tiny_wan import default_cache_root

    root = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
    return root / "models" / f"tiny_matte-v{TINY_MATTE_VERSION}"


def ensure_tiny_matte(cache_dir: str | os.PathLike | None = None) -> TinyMatteModels:
    """Both tiny checkpoints in the vgen cache, built first if needed (atomically, like ``tiny_wan``)."""
    from vgen.models.tiny_wan import build_once

    target = tiny_matte_dir(cache_dir)
    build_once(target, "vitmatte/preprocessor_config.json", build_tiny_sam2_vitmatte)
    return TinyMatteModels(sam2=target / "sam2", vitmatte=target / "vitmatte")


def check_builtin(source: str, field_name: str) -> None:
    """A ``builtin:`` source must name one of :data:`BUILTIN_MODELS` (other sources pass)."""
    from vgen.errors import ConfigError

    if source.startswith(BUILTIN_PREFIX) and source[len(BUILTIN_PREFIX):] not in BUILTIN_MODELS:
        known = ", ".join(BUILTIN_PREFIX + item for item in BUILTIN_MODELS)
        raise ConfigError(f"{field_name}: unknown built-in model {source!r} (known: {known})")


def resolve_builtin(source: str, field_name: str) -> Path:
    """The folder of ``builtin:tiny_sam2`` / ``builtin:tiny_vitmatte`` (building the cache if needed)."""
    check_builtin(source, field_name)
    models = ensure_tiny_matte()
    return models.sam2 if source == BUILTIN_PREFIX + "tiny_sam2" else models.vitmatte


def build_tiny_sam2_vitmatte(directory: str | os.PathLike, seed: int = 0) -> TinyMatteModels:
    """Save a tiny ``Sam2VideoModel`` to ``directory/sam2`` and a tiny ``VitMatteForImageMatting``
    with its image processor to ``directory/vitmatte``; return both paths."""
    import torch
    from transformers import Sam2VideoModel, VitMatteForImageMatting, VitMatteImageProcessorPil

    root = Path(directory)
    models = TinyMatteModels(sam2=root / "sam2", vitmatte=root / "vitmatte")
    torch.manual_seed(seed)
    Sam2VideoModel(_tiny_sam2_config()).save_pretrained(models.sam2)
    VitMatteForImageMatting(_tiny_vitmatte_config()).save_pretrained(models.vitmatte)
    VitMatteImageProcessorPil().save_pretrained(models.vitmatte)
    return models


def _tiny_sam2_config():
    from transformers import Sam2HieraDetConfig, Sam2VideoConfig, Sam2VisionConfig

    size = TINY_IMAGE_SIZE
    backbone = Sam2HieraDetConfig(
        hidden_size=8,
        image_size=[size, size],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[3],  # a global block must not be the first of a stage
        window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        fpn_hidden_size=HIDDEN,
    )
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config={"hidden_size": HIDDEN, "image_size": size, "patch_size": 16},
        mask_decoder_config={"hidden_size": HIDDEN, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
        image_size=size,
        num_maskmem=3,
        memory_attention_hidden_size=HIDDEN,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=HIDDEN,
        memory_encoder_output_channels=MEMORY_CHANNELS,
        mask_downsampler_embed_dim=HIDDEN,
        memory_fuser_embed_dim=HIDDEN,
        memory_fuser_intermediate_dim=64,
    )


def _tiny_vitmatte_config():
    from transformers import VitDetConfig, VitMatteConfig

    backbone = VitDetConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=64,
        pretrain_image_size=64,
        patch_size=16,
        num_channels=4,  # RGB + trimap
        out_features=["stage2"],
    )
    return VitMatteConfig(
        backbone_config=backbone,
        hidden_size=32,
        convstream_hidden_sizes=[8, 16, 32],
        fusion_hidden_sizes=[32, 16, 8, 8],
    )
