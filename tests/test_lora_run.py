"""LoRA through the real runner: per-job selection, payload in the manifest and metadata, early errors."""

from __future__ import annotations

import pytest

from conftest import read_manifest, run_vgen
from lora_fixtures import make_lora_file
from vgen.hashing import file_sha256, payload_hash
from vgen.media.metadata_io import read_metadata

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, vgen_cache_dir):
    from diffusers import WanTransformer3DModel

    from vgen.models.tiny_wan import ensure_tiny_wan

    transformer = WanTransformer3DModel.from_pretrained(ensure_tiny_wan(vgen_cache_dir) / "transformer")
    directory = tmp_path_factory.mktemp("loras")
    make_lora_file(transformer, directory / "styles" / "Neon_Style.safetensors", seed=1)
    return directory


def test_jobs_pick_their_loras_and_the_manifest_records_them(lora_dir, tmp_path):
    jobs = ("queue.jobs=[{prompt: with lora, loras: [{name: neon_style, weight: '1.0,0.5'}]},"
            "{prompt: without lora}]")
    result = run_vgen("runtime.progress=false", "generation.steps=2", f"lora.dirs=[{lora_dir}]", jobs,
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with_lora, without = read_manifest(tmp_path / "run")
    assert set(with_lora["adapter_payload_hashes"]) == {"lora"} and without["adapter_payload_hashes"] == {}
    stored = read_metadata(tmp_path / "run" / with_lora["artifacts"][0]["path"])
    lora_payload = stored["adapter_payloads"]["lora"]
    assert payload_hash(lora_payload) == with_lora["adapter_payload_hashes"]["lora"]
    (entry,) = lora_payload["loras"]
    assert entry["sha256"] == file_sha256(lora_dir / "styles" / "Neon_Style.safetensors")
    assert entry["weight"] == {"steps": [1.0, 0.5]}


def test_unknown_lora_fails_before_any_model_loads(lora_dir, tmp_path):
    result = run_vgen(f"lora.dirs=[{lora_dir}]", "queue.jobs=[{prompt: x, loras: [{name: neon_styel, weight: 1}]}]",
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "neon_styel" in result.stderr and "Neon_Style" in result.stderr
    assert "Loaded WanPipeline" not in result.stderr and not (tmp_path / "run" / "manifests").exists()


def test_a_lora_made_for_another_model_records_why_in_the_error_row(lora_dir, tmp_path):
    import torch
    from diffusers import WanTransformer3DModel
    from safetensors.torch import save_file

    wider = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                                  out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                                  cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    misfit_dir = tmp_path / "misfits"
    make_lora_file(wider, misfit_dir / "wan_14b_style.safetensors", seed=2)
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(8, 4)},
              str(misfit_dir / "sd15_kohya.safetensors"))  # a kohya LoRA for a Stable Diffusion UNet
    jobs = ("queue.jobs=[{prompt: misfit, loras: [wan_14b_style]},{prompt: fine, loras: [neon_style]},"
            "{prompt: other family, loras: [sd15_kohya]}]")
    result = run_vgen("runtime.progress=false", "generation.steps=2", f"lora.dirs=[{misfit_dir},{lora_dir}]", jobs,
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    failed, succeeded, foreign = read_manifest(tmp_path / "run")
    assert (failed["status"], succeeded["status"], foreign["status"]) == ("error", "success", "error")
    error = failed["error"]["message"]
    assert "wan_14b_style.safetensors: cannot load it into WanPipeline: 16 of its 16 layers have other shapes" in error
    assert "blocks.0.attn1.to_k 32->32 in the LoRA, 24->24 in the model" in error
    assert "made for another model size or family" in error
    assert "sd15_kohya.safetensors: cannot load it into WanPipeline: WanPipeline cannot convert its keys (e.g. " \
           "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight" in foreign["error"]["message"]
