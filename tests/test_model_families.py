"""The LTX-Video and CogVideoX model configs, run for real through ``python -m vgen``.

Each test builds a tiny random-init pipeline of the family (component sizes after diffusers' own
pipeline tests), saves it with ``save_pretrained`` and points ``model.source`` at it, so the shipped
YAML (pipeline class, frame and size rules) is exercised end to end without the real weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conditioned_model_builders import build_ltx
from conftest import REPO_ROOT, read_manifest, run_vgen
from output_kind_builders import tiny_t5
from vgen.media.probe import probe
from vgen.models.tiny_wan import tiny_tokenizer


def build_tiny_cogvideox():
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=226,  # the pipeline's default prompt length
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4,
    )
    return CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=tiny_t5(tokenizer), vae=vae, transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "build", "height", "width", "frames"),
    [
        ("ltx_video", build_ltx, 32, 64, 9),
        ("cogvideox_2b", build_tiny_cogvideox, 32, 48, 9),
    ],
)
def test_family_config_generates_a_video(tmp_path: Path, model, build, height, width, frames):
    checkpoint = tmp_path / "checkpoint"
    build().save_pretrained(checkpoint)
    result = run_vgen(
        f"model={model}", f"model.source={checkpoint}", "runtime.progress=false", f"generation.height={height}",
        f"generation.width={width}", f"generation.num_frames={frames}", "generation.steps=2",
        "queue.jobs=[{prompt: a test}]", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    [row] = read_manifest(tmp_path / "run")
    assert row["status"] == "success", row.get("error")
    assert row["inputs"]["model"]["pipeline_class"] == {"ltx_video": "LTXPipeline", "cogvideox_2b": "CogVideoXPipeline"}[model]
    stream = probe(tmp_path / "run" / row["artifacts"][0]["path"])["streams"][0]
    assert (stream["frames"], stream["height"], stream["width"]) == (frames, height, width)


@pytest.mark.parametrize(
    ("model", "field", "bad"), [("ltx_video", "num_frames", 13), ("ltx_video", "width", 48), ("cogvideox_2b", "width", 40)]
)
def test_family_rules_reject_impossible_shapes(model, field, bad):
    """The YAML's frame/size rules stop a job the pipeline would reject or silently reshape."""
    from omegaconf import OmegaConf

    from vgen.errors import ConfigError
    from vgen.jobs.validation import validate_job_values

    model_cfg = OmegaConf.load(REPO_ROOT / "conf" / "model" / f"{model}.yaml")
    settings = {"height": 64, "width": 64, "num_frames": 9, "steps": 2, "fps": 16, "guidance_scale": 5.0, "seed": 0,
                field: bad}
    with pytest.raises(ConfigError, match=field):
        validate_job_values(settings, model_cfg, "queue.jobs[0]", own_keys={field})
    validate_job_values({**settings, field: 64 if field == "width" else 17}, model_cfg, "queue.jobs[0]", own_keys={field})
