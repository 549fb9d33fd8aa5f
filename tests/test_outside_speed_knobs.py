"""Speed knobs given files from other tools: a safetensors checkpoint passed as the GGUF transformer."""

from __future__ import annotations

from pathlib import Path

from conftest import run_vgen


def test_a_file_that_is_not_gguf_is_exit_2_before_loading(tmp_path: Path):
    from safetensors.numpy import save_file
    import numpy as np

    save_file({"weight": np.zeros((4, 4), np.float32)}, str(tmp_path / "wan_q4.gguf"))  # renamed, not converted
    result = run_vgen("runtime.quantization.transformer=gguf", "runtime.quantization.gguf_file=wan_q4.gguf",
                      "queue.jobs=[{prompt: a fox}]", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "runtime.quantization.gguf_file" in line]
    assert line.endswith("runtime.quantization.gguf_file='wan_q4.gguf': not a GGUF file (it does not start with b'GGUF')")
    assert not (tmp_path / "run" / "manifests").exists()
