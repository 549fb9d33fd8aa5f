"""Speed knobs are recorded: the manifest row (output recipe), the artifact's config, vgen.diff, and
vgen.reproduce reapplies them from the artifact alone."""

from __future__ import annotations

import json

import pytest

from conftest import read_manifest, run_vgen

SMALL = ["runtime.progress=false", "runtime.device=cpu", "generation.steps=6", "generation.num_frames=5",
         "generation.height=32", "generation.width=32", "queue.jobs=[{prompt: a red fox}]"]
KNOBS = ["cache=first_block", "cache.threshold=0.3", "runtime.attention=native",
         "runtime.quantization.text_encoder=int8"]


@pytest.mark.slow
def test_knobs_are_recorded_diffed_and_reapplied(tmp_path):
    plain, knobbed = tmp_path / "plain", tmp_path / "knobbed"
    for run_dir, extra in ((plain, []), (knobbed, KNOBS)):
        result = run_vgen(*SMALL, *extra, f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    (row,) = read_manifest(knobbed)
    recipe = row["inputs"]["output_recipe"]
    assert recipe["cache"] == {"name": "first_block", "threshold": 0.3}
    assert recipe["quantization"] == "transformer=none,text_encoder=int8"
    assert read_manifest(plain)[0]["output_key"] != row["output_key"]

    diff = run_vgen(str(plain), str(knobbed), module="vgen.diff", cwd=tmp_path)
    assert diff.returncode == 1
    for key in ("cache.name", "cache.threshold", "runtime.attention", "runtime.quantization.text_encoder"):
        assert key in diff.stdout, diff.stdout

    video = knobbed / row["artifacts"][0]["path"]
    again = tmp_path / "again"
    result = run_vgen(str(video), "--out", str(again), "--json", module="vgen.reproduce", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert json.loads(result.stdout)["identical"] is True
    assert read_manifest(again)[0]["output_key"] == row["output_key"]
