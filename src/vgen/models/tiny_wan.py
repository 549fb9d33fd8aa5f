"""The built-in offline models: Wan-architecture pipelines with tiny configs and seeded weights.

``tiny_wan`` is a ``WanPipeline`` (text to video); ``tiny_wan_i2v`` a ``WanImageToVideoPipeline``
with a tiny CLIP vision image encoder and its image processor (image to video). Their output is noise. It exists so the whole runner (loading, denoising loop, callbacks, LoRA,
encoding, manifest) can run on a CPU with no network. It is built once into the cache dir and then
loaded with ``from_pretrained`` like any real checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

TINY_WAN_VERSION = "2"  # bump when a recipe below changes, so caches rebuild
_VOCAB_WORDS = (
    "a the of and in on at with through over under from to by for is are red blue green white black "
    "fox dog cat boat sea wave waves coast rocky street rain rainy snow fresh dawn night city forest "
    "running drifting crashing flying walking aerial shot close up cinematic light sun moon sky paper "
    "blurry low quality distorted smoke test one two three"
).split()


def default_cache_root() -> Path:
    """``$VGEN_CACHE_DIR`` or ``~/.cache/vgen`` (``$XDG_CACHE_HOME`` honoured)."""
    if env := os.environ.get("VGEN_CACHE_DIR"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "vgen"


def tiny_wan_dir(cache_dir: str | os.PathLike | None = None, name: str = "tiny_wan") -> Path:
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_root()
    return root / "models" / f"{name}-v{TINY_WAN_VERSION}"


def ensure_tiny_wan(cache_dir: str | os.PathLike | None = None, name: str = "tiny_wan") -> Path:
    """Return the built-in model ``name``'s directory, building it first if needed (atomic: temp dir + rename)."""
    target = tiny_wan_dir(cache_dir, name)
    build_once(target, "model_index.json", lambda staging: BUILTIN_MODELS[name]().save_pretrained(staging))
    return target


def build_once(target: Path, marker: str, build: Callable[[Path], None]) -> None:
    """Make ``target`` by ``build(staging_dir)`` and a rename unless ``target/marker`` exists, so a
    killed build leaves no half-written cache entry and concurrent builders agree on one."""
    if (target / marker).exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / marker).exists():  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def tiny_tokenizer():
    """A word-level tokenizer with a fixed vocabulary (trained tokenizers are not byte-reproducible)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(["<pad>", "</s>", "<unk>", *sorted(set(_VOCAB_WORDS))])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=64
    )


def tiny_wan_components() -> dict:
    """Tokenizer, text encoder and VAE shared by the tiny Wan pipelines (seeded; call after ``manual_seed``)."""
    from diffusers import AutoencoderKLWan
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = tiny_tokenizer()
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    )
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae}


def tiny_wan_transformer(in_channels: int = 16, out_channels: int = 16, **kwargs):
    """A tiny ``WanTransformer3DModel``; image-conditioned variants pass ``in_channels=36, image_dim=...``."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=in_channels, out_channels=out_channels,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, **kwargs,
    )


def tiny_clip_image_encoder(image_size: int = 32, patch_size: int = 8):
    """A tiny ``CLIPVisionModel`` and its image processor (the PIL one: no torchvision needed)."""
    import transformers
    from transformers import CLIPVisionConfig, CLIPVisionModel

    processor_cls = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
    encoder = CLIPVisionModel(
        CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2,
                         image_size=image_size, intermediate_size=16, patch_size=patch_size)
    )
    return encoder, processor_cls(crop_size=image_size, size=image_size)


def build_tiny_wan_pipeline():
    """Build the tiny ``WanPipeline`` in memory with weights drawn from a fixed seed."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    torch.manual_seed(0)
    components = tiny_wan_components()
    return WanPipeline(**components, transformer=tiny_wan_transformer(),
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))


def build_tiny_wan_i2v_pipeline():
    """Build the tiny ``WanImageToVideoPipeline``: 16 latent + 4 mask + 16 image channels in, CLIP image tokens."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    torch.manual_seed(0)
    components = tiny_wan_components()
    image_encoder, image_processor = tiny_clip_image_encoder()
    return WanImageToVideoPipeline(
        **components, image_encoder=image_encoder, image_processor=image_processor,
        transformer=tiny_wan_transformer(in_channels=36, image_dim=4),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )


BUILTIN_MODELS = {"tiny_wan": build_tiny_wan_pipeline, "tiny_wan_i2v": build_tiny_wan_i2v_pipeline}
