"""The enhanced prompt through the real runner: queue status, artifact metadata, manifest, stable hash."""

from __future__ import annotations

import pytest

from conftest import read_manifest, run_vgen
from enhancer_fixtures import build_tiny_llm
from vgen.config.compose import compose_run_config
from vgen.hashing import payload_hash
from vgen.media.metadata_io import read_metadata

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("llm") / "tiny-llm")


def enhancer_overrides(llm_dir) -> list[str]:
    return ["enhancer=hf_llm", f"enhancer.model={llm_dir}", "enhancer.mode=expand", "enhancer.max_new_tokens=8",
            "runtime.progress=false",
            "generation.steps=2", "generation.num_frames=1"]


def test_enhanced_prompt_reaches_manifest_and_metadata(tiny_llm, tmp_path):
    jobs = "queue.jobs=[{prompt: a fox in the snow},{prompt: a fox in the snow, seed: 3}]"
    result = run_vgen(*enhancer_overrides(tiny_llm), jobs, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("prompt enhancer loaded") == 1  # the second job reuses the model
    first, second = read_manifest(tmp_path / "run")
    for row in (first, second):
        assert row["inputs"]["prompt"] == "a fox in the snow"
        enhanced = row["inputs"]["enhanced_prompt"]
        assert enhanced.startswith("a fox in the snow. ") and len(enhanced) > len("a fox in the snow. ")
        stored = read_metadata(tmp_path / "run" / row["artifacts"][0]["path"])
        assert stored["inputs"]["enhanced_prompt"] == row["inputs"]["enhanced_prompt"]
        payload = stored["adapter_payloads"]["prompt_enhancer"]
        assert payload["enhanced_prompts"] == [row["inputs"]["enhanced_prompt"]]
        fidelity = payload["fidelity"][0]  # expand mode: the prompt is in the result verbatim
        assert fidelity["recall"] == 1.0 and fidelity["fallback_reason"] is None
        assert fidelity["attempts"][0]["seed"] == 0 and fidelity["words"] == len(enhanced.split())
        assert payload_hash(payload) == row["adapter_payload_hashes"]["prompt_enhancer"]
    assert first["inputs"]["enhanced_prompt"] == second["inputs"]["enhanced_prompt"]  # greedy: same rewrite
    assert first["adapter_payload_hashes"] == second["adapter_payload_hashes"]


def test_enhanced_prompt_is_in_the_queue_status_while_generating(tiny_llm, tmp_path):
    from vgen.production import ProductionManager
    from vgen.queue.controller import QueueController

    cfg = compose_run_config(tmp_path, [*enhancer_overrides(tiny_llm), "queue.jobs=[{prompt: a boat at sea}]"])
    manager = ProductionManager(cfg, run_dir=tmp_path)
    controller = QueueController(manager, manager.jobs())
    seen = []
    original = controller._step_hook

    def capture(pipe, step, timestep, kwargs):
        seen.append(controller.status()["current"])
        return original(pipe, step, timestep, kwargs)

    controller._step_hook = capture
    assert controller.run().ok
    assert seen and all(s["prompt"] == "a boat at sea" for s in seen)
    enhanced = read_manifest(tmp_path)[0]["inputs"]["enhanced_prompt"]
    assert all(s["enhanced_prompt"] == enhanced for s in seen)
