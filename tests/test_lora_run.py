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
