"""Tiny random-init instances of the image and audio pipelines the model configs name (tests only).

Same diffusers pipeline and component classes as the real checkpoints (Flux, Qwen-Image, Stable
Audio Open), component sizes after diffusers' own pipeline tests, tokenizers built locally (no hub).
"""

from __future__ import annotations

from vgen.models.tiny_wan import tiny_tokenizer


def _tiny_t5(tokenizer, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    )


def build_tiny_flux():
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )
    tokenizer = tiny_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, pad_token_id=0, vocab_size=len(tokenizer), projection_dim=32, max_position_embeddings=64,
    ))
    vae = AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1, latent_channels=1,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035,
    )
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=_tiny_t5(tokenizer), tokenizer_2=tiny_tokenizer(), transformer=transformer, vae=vae,
        image_encoder=None, feature_extractor=None,
    )


def build_tiny_stable_audio():
    import torch
    from diffusers import (AutoencoderOobleck, CosineDPMSolverMultistepScheduler, StableAudioDiTModel,
                           StableAudioPipeline, StableAudioProjectionModel)

    torch.manual_seed(0)
    transformer = StableAudioDiTModel(
        sample_size=128, in_channels=3, num_layers=2, attention_head_dim=4, num_key_value_attention_heads=2,
        out_channels=3, cross_attention_dim=4, time_proj_dim=8, global_states_input_dim=8, cross_attention_input_dim=4,
    )
    scheduler = CosineDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential",
    )
    vae = AutoencoderOobleck(
        encoder_hidden_size=6, downsampling_ratios=[2, 4], decoder_channels=3, decoder_input_channels=3,
        audio_channels=2, channel_multiples=[2, 4], sampling_rate=8000,
    )
    tokenizer = tiny_tokenizer()
    text_encoder = _tiny_t5(tokenizer)
    projection_model = StableAudioProjectionModel(text_encoder_dim=32, conditioning_dim=4, min_value=0, max_value=32)
    return StableAudioPipeline(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                               tokenizer=tokenizer, projection_model=projection_model)


def build_tiny_qwen_image():
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    )
    tokenizer = tiny_tokenizer()
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
                     "bos_token_id": None, "eos_token_id": tokenizer.eos_token_id,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        # the image token ids lie outside the tiny vocabulary: text prompts never contain them
        vision_end_token_id=len(tokenizer) + 1, vision_start_token_id=len(tokenizer) + 2, vision_token_id=len(tokenizer) + 3,
        image_token_id=len(tokenizer) + 4, video_token_id=len(tokenizer) + 5,
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    return QwenImagePipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                             text_encoder=text_encoder, tokenizer=tokenizer)
