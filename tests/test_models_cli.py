"""``python -m vgen.models``: every model config listed with its task, output kind and checkpoint presence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, run_vgen


def _hf_cache_entry(hub: Path, repo_id: str) -> Path:
    """The layout huggingface_hub writes for a cached repo: refs/main -> snapshots/<commit>/model_index.json."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    return snapshot


def test_lists_every_model_config_with_task_output_and_checkpoint(tmp_path: Path):
    hub = tmp_path / "hub"
    snapshot = _hf_cache_entry(hub, "THUDM/CogVideoX-2b")
    result = run_vgen(f"runtime.cache_dir={tmp_path / 'vgen'}", cwd=tmp_path, module="vgen.models",
                      env={"HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for yaml in (REPO_ROOT / "conf" / "model").glob("*.yaml"):
        assert f"\n{yaml.stem}  [" in out
    blocks = {block.split()[0]: block for block in out.split("\n\n")[1:]}
    assert "task t2v -> video; inputs: prompt\n" in blocks["wan21_t2v_1_3b"]
    assert "defaults: 832x480, 81 frames, 50 steps, guidance 5, 16 fps\n" in blocks["wan21_t2v_1_3b"]
    assert "defaults: 1280x720, 81 frames, 40 steps, guidance 4 / 3, 16 fps\n" in blocks["wan22_t2v_a14b"]
    assert "defaults: 200 steps, guidance 7, 10 s\n" in blocks["stable_audio_open"]
    assert "defaults:" not in blocks["tiny_wan"]  # no model defaults: conf/config.yaml's generation applies
    assert "inputs: prompt, image, image_end?, guidance_scale_2?" in blocks["wan22_i2v_a14b"]
    assert "task t2i -> image;" in blocks["flux1_dev"] and "task t2a -> audio;" in blocks["stable_audio_open"]
    assert "task i2v -> video + sound; inputs: prompt, image\n" in blocks["ltx2_i2v"]
    assert f"present at {snapshot}" in blocks["cogvideox_2b"]
    assert "MISSING: not in the HF cache" in blocks["ltx_video"] and "huggingface-cli download Lightricks/LTX-Video" in blocks["ltx_video"]
    assert f"{tmp_path / 'vgen'}/models/tiny_wan-v2 (built on first use)" in blocks["tiny_wan"]
    assert not (tmp_path / "vgen").exists()  # listing builds nothing


def test_one_model_with_a_local_checkpoint(tmp_path: Path):
    checkpoint = tmp_path / "ltx"
    checkpoint.mkdir()
    (checkpoint / "model_index.json").write_text("{}")
    result = run_vgen("model=ltx_video", f"model.source={checkpoint}", cwd=tmp_path, module="vgen.models")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Model configs (1)")
    assert f"present at {checkpoint}" in result.stdout


def test_help_bad_input_and_no_torch(tmp_path: Path):
    assert run_vgen("--help", cwd=tmp_path, module="vgen.models").returncode == 0
    bad = run_vgen("model=no_such_model", cwd=tmp_path, module="vgen.models")
    assert bad.returncode == 2 and "no_such_model" in bad.stderr
    assert run_vgen("runtime.no_such_key=1", cwd=tmp_path, module="vgen.models").returncode == 2
    probe = "import sys; from vgen.models.__main__ import main; main([]); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True).returncode == 0
