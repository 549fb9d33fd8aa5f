"""Tiny random-init instances of the conditioned pipelines the model configs name (tests only).

Same diffusers pipeline and component classes as the real checkpoints, component sizes after
diffusers' own pipeline tests, so each shipped YAML runs end to end through ``python -m vgen``.
"""

from __future__ import annotations

from output_kind_builders import tiny_t5
from vgen.models.tiny_wan import tiny_clip_image_encoder, tiny_tokenizer, tiny_wan_components, tiny_wan_transformer

CLIP_TOKENS = 17  # tiny CLIP: (32 / 8)^2 patches + the class token


def _seeded():
    import torch

    torch.manual_seed(0)


def _wan_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(shift=7.0)


def build_wan_i2v(flf2v: bool = False):
    """Wan 2.1 I2V (CLIP image tokens); ``flf2v``: two images' tokens with a learned position embedding."""
    from diffusers import WanImageToVideoPipeline

    _seeded()
    encoder, processor = tiny_clip_image_encoder()
    extra = {"pos_embed_seq_len": 2 * CLIP_TOKENS} if flf2v else {}
    return WanImageToVideoPipeline(**tiny_wan_components(), image_encoder=encoder, image_processor=processor,
                                   transformer=tiny_wan_transformer(in_channels=36, image_dim=4, **extra),
                                   scheduler=_wan_scheduler())


def build_wan_flf2v():
    return build_wan_i2v(flf2v=True)


def build_wan_v2v():
    from diffusers import WanVideoToVideoPipeline

    _seeded()
    return WanVideoToVideoPipeline(**tiny_wan_components(), transformer=tiny_wan_transformer(),
                                   scheduler=_wan_scheduler())


def build_wan_vace():
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    _seeded()
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96,
    )
    return WanVACEPipeline(**tiny_wan_components(), transformer=transformer, scheduler=_wan_scheduler())


def build_wan22_t2v():
    """Two experts: ``transformer`` (high noise) until ``boundary_ratio``, then ``transformer_2``."""
    from diffusers import WanPipeline

    _seeded()
    return WanPipeline(**tiny_wan_components(), transformer=tiny_wan_transformer(),
                       transformer_2=tiny_wan_transformer(), boundary_ratio=0.875, scheduler=_wan_scheduler())


def build_wan22_i2v():
    """Wan 2.2 I2V A14B: two experts, the image only through the latent channels (no CLIP encoder)."""
    from diffusers import WanImageToVideoPipeline

    _seeded()
    return WanImageToVideoPipeline(**tiny_wan_components(), transformer=tiny_wan_transformer(in_channels=36),
                                   transformer_2=tiny_wan_transformer(in_channels=36), boundary_ratio=0.9,
                                   scheduler=_wan_scheduler())


def build_wan22_ti2v():
    """Wan 2.2 TI2V 5B: the Wan 2.2 VAE (48 latent channels, 16x spatial) and per-token timesteps."""
    from diffusers import AutoencoderKLWan, WanPipeline

    _seeded()
    components = tiny_wan_components()
    components["vae"] = AutoencoderKLWan(
        base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
        latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
    )
    return WanPipeline(**components, transformer=tiny_wan_transformer(in_channels=48, out_channels=48), expand_timesteps=True, scheduler=_wan_scheduler())


def build_ltx(pipeline_class: str = "LTXPipeline"):
    """A tiny LTX-Video pipeline (``LTXPipeline`` or ``LTXImageToVideoPipeline``: same components)."""
    import diffusers
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel

    _seeded()
    tokenizer = tiny_tokenizer()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )
    return getattr(diffusers, pipeline_class)(transformer=transformer, vae=vae,
                                              scheduler=FlowMatchEulerDiscreteScheduler(),
                                              text_encoder=tiny_t5(tokenizer), tokenizer=tokenizer)


def build_ltx_i2v():
    return build_ltx("LTXImageToVideoPipeline")


def build_cogvideox_i2v():
    """CogVideoX I2V: the image latent is concatenated on channels (transformer in = 2 x latent)."""
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline,
                           CogVideoXTransformer3DModel)

    _seeded()
    tokenizer = tiny_tokenizer()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=226, use_rotary_positional_embeddings=True,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )
    return CogVideoXImageToVideoPipeline(tokenizer=tokenizer, text_encoder=tiny_t5(tokenizer), vae=vae,
                                         transformer=transformer, scheduler=CogVideoXDDIMScheduler())
