"""Prompt enhancer with real models: tiny random-init LLM + Florence-2 built here, and real SmolLM2."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from vgen.enhancer import PromptEnhancerBridge
from vgen.enhancer.fidelity import invented_subjects, score
from vgen.errors import CheckpointNotFoundError, VgenError
from vgen.hashing import payload_hash

from enhancer_fixtures import build_tiny_florence2, build_tiny_llm

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("enhancer-models")
    return {
        "llm": str(build_tiny_llm(root / "llm")),
        "mute_llm": str(build_tiny_llm(root / "mute_llm", mute=True)),
        "florence": str(build_tiny_florence2(root / "florence")),
        "mute_florence": str(build_tiny_florence2(root / "mute_florence", mute=True)),
    }


@pytest.fixture
def start_image(tmp_path):
    path = tmp_path / "start.png"
    Image.new("RGB", (80, 48), (200, 40, 30)).save(path)
    return path


def _cfg(tiny_models, **overrides):
    # A random-init LLM never writes a faithful rewrite: accept any, so these tests see the model's text.
    cfg = {"backend": "hf_llm", "model": tiny_models["llm"], "max_new_tokens": 12, "caption_max_new_tokens": 10,
           "device": "cpu", "mode": "rewrite", "min_recall": 0.0, "max_invented": 1000, "retries": 0}
    return {**cfg, **overrides}


# --- tiny models: fast ----------------------------------------------------------------------------


def test_hf_llm_rewrites_deterministically_and_loads_once(tiny_models):
    stats: dict = {}
    bridge = PromptEnhancerBridge(stats)
    cfg = _cfg(tiny_models)
    first = bridge.enhance(cfg, "a fox in snow")
    second = bridge.enhance(cfg, "a fox in snow")
    assert first.error is None and first.enhanced_prompt and first.enhanced_prompt != "a fox in snow"
    assert second.enhanced_prompt == first.enhanced_prompt
    assert bridge.load_count == 1
    assert stats["prompt_enhancer"][0]["kind"] == "llm" and stats["prompt_enhancer"][0]["origin"] == "pretrained"
    # Sampling settings do not reload the model; they get their own primed config hash.
    bridge.enhance({**cfg, "temperature": 0.9, "top_p": 0.9, "seed": 3}, "a fox in snow")
    state = bridge.snapshot_state()
    assert bridge.load_count == 1 and len(state["primed_configs"]) == 2 and sum(state["loads"].values()) == 1
    bridge.reset()  # drops models; load history stays
    assert bridge.snapshot_state() == {"primed_configs": [], "loads": state["loads"]}
    bridge.prime(cfg)
    assert bridge.load_count == 2 and max(bridge.snapshot_state()["loads"].values()) == 2


def test_sampling_is_seeded_and_word_cap_applies(tiny_models):
    bridge = PromptEnhancerBridge()
    cfg = _cfg(tiny_models, temperature=1.0, top_p=0.95, max_new_tokens=16, word_limits={"t2v": [1, 3]})
    runs = [bridge.enhance({**cfg, "seed": seed}, "a harbour at dusk").enhanced_prompt for seed in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert all(0 < len(r.split()) <= 3 for r in runs)


def test_florence2_caption_feeds_the_rewrite(tiny_models, start_image):
    bridge = PromptEnhancerBridge()
    cfg = _cfg(tiny_models, captioner="florence2", captioner_model=tiny_models["florence"], source="text+image")
    with_image = bridge.enhance(cfg, "the fox turns its head", task="i2v", image=start_image)
    assert with_image.error is None
    assert with_image.caption and with_image.enhanced_prompt
    assert bridge.load_count == 2  # LLM + captioner
    pil = bridge.enhance(cfg, "the fox turns its head", task="i2v", image=Image.open(start_image))
    assert pil.caption == with_image.caption
    text_only = bridge.enhance({**cfg, "source": "text"}, "the fox turns its head", task="i2v", image=start_image)
    assert text_only.caption is None and text_only.enhanced_prompt != with_image.enhanced_prompt
    no_image = bridge.enhance(cfg, "the fox turns its head", task="i2v")  # text+image without image: text only
    assert no_image.caption is None and no_image.enhanced_prompt == text_only.enhanced_prompt
    image_mode = bridge.enhance({**cfg, "source": "image"}, "ignored prompt", task="i2v", image=start_image)
    assert image_mode.caption == with_image.caption and image_mode.error is None
    assert bridge.load_count == 2
    payload = bridge.payload(cfg, [with_image, no_image])
    assert payload["captions"] == [with_image.caption, None] and payload["captioner"] == "florence2"


def test_text_source_never_loads_the_captioner_and_offload_is_harmless_on_cpu(tiny_models, start_image):
    cfg = _cfg(tiny_models, captioner="florence2", captioner_model=tiny_models["florence"], source="text")
    bridge = PromptEnhancerBridge()
    plain = bridge.enhance(cfg, "a fox", task="i2v", image=start_image)
    offloaded = bridge.enhance({**cfg, "offload_after_use": True}, "a fox", task="i2v", image=start_image)
    assert plain.caption is None and offloaded.enhanced_prompt == plain.enhanced_prompt
    assert bridge.load_count == 1


def test_image_source_without_an_image_falls_back(tiny_models):
    cfg = _cfg(tiny_models, captioner="florence2", captioner_model=tiny_models["florence"], source="image")
    result = PromptEnhancerBridge().enhance(cfg, "a fox", task="t2v")
    assert result.enhanced_prompt == "a fox" and "source=image" in result.error


def test_missing_model_falls_back_or_fails(tiny_models, tmp_path, caplog):
    bridge = PromptEnhancerBridge()
    missing = _cfg(tiny_models, model=str(tmp_path / "no-such-model"))
    result = bridge.enhance(missing, "a fox")
    assert result.enhanced_prompt == "a fox" and result.prompt == "a fox"
    assert result.error.startswith("CheckpointNotFoundError: enhancer.model=") and "does not exist" in result.error
    assert "keeping the original prompt" in caplog.text
    with pytest.raises(CheckpointNotFoundError, match="no-such-model"):
        bridge.enhance({**missing, "on_error": "fail"}, "a fox")
    assert bridge.load_count == 0
    captioner_missing = _cfg(
        tiny_models, captioner="florence2", captioner_model=str(tmp_path / "nope"), source="text+image"
    )
    result = bridge.enhance(captioner_missing, "a fox", task="i2v", image=Image.new("RGB", (8, 8)))
    assert result.enhanced_prompt == "a fox" and "enhancer.captioner_model=" in result.error


def test_hub_id_resolves_from_the_local_cache_only(tiny_models, tmp_path, monkeypatch):
    import shutil

    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--vgen-test--tiny-llm" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_models["llm"], snapshot)
    (cache / "models--vgen-test--tiny-llm" / "refs").mkdir()
    (cache / "models--vgen-test--tiny-llm" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    bridge = PromptEnhancerBridge()
    found = bridge.enhance(_cfg(tiny_models, model="vgen-test/tiny-llm"), "a fox")
    assert found.error is None and found.enhanced_prompt
    with pytest.raises(CheckpointNotFoundError) as missing:
        bridge.enhance(_cfg(tiny_models, model="vgen-test/absent", on_error="fail"), "a fox")
    message = str(missing.value)
    assert "'vgen-test/absent'" in message and str(cache) in message and "hf download vgen-test/absent" in message


def test_empty_llm_output_is_handled_per_on_error(tiny_models):
    bridge = PromptEnhancerBridge()
    cfg = _cfg(tiny_models, model=tiny_models["mute_llm"])
    result = bridge.enhance(cfg, "a fox")
    assert result.enhanced_prompt == "a fox" and result.error.startswith("EmptyEnhancementError:")
    with pytest.raises(VgenError, match="empty prompt"):
        bridge.enhance({**cfg, "on_error": "fail"}, "a fox")


def test_empty_caption_is_handled_per_on_error(tiny_models, start_image):
    cfg = _cfg(tiny_models, captioner="florence2", captioner_model=tiny_models["mute_florence"], source="text+image")
    bridge = PromptEnhancerBridge()
    result = bridge.enhance(cfg, "a fox", task="i2v", image=start_image)
    assert result.enhanced_prompt == "a fox" and "empty caption" in result.error
    with pytest.raises(VgenError, match="empty caption"):
        bridge.enhance({**cfg, "on_error": "fail"}, "a fox", task="i2v", image=start_image)


def test_payload_hash_equal_across_bridges_with_real_runs(tiny_models):
    cfg = _cfg(tiny_models)
    payloads = []
    for _ in range(2):
        bridge = PromptEnhancerBridge()
        results = [bridge.enhance(cfg, p) for p in ("a fox", "a harbour")]
        payloads.append(bridge.payload(cfg, results))
    assert payload_hash(payloads[0]) == payload_hash(payloads[1])
    assert payloads[0]["model"] == tiny_models["llm"] and payloads[0]["backend"] == "hf_llm"


# --- real SmolLM2 ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_rewrites_offline_and_caches_the_conversion(tmp_path):
    cfg = {"backend": "smollm2", "cache_dir": str(tmp_path / "cache"), "max_new_tokens": 40,
           "repetition_penalty": 1.2, "device": "cpu", "on_error": "fail"}
    stats: dict = {}
    bridge = PromptEnhancerBridge(stats)
    started = time.perf_counter()
    bridge.prime(cfg)
    first_load = time.perf_counter() - started
    prompt = "a cat on a skateboard"
    first = bridge.enhance(cfg, prompt)
    second = bridge.enhance(cfg, prompt)
    assert first.error is None
    words = first.enhanced_prompt.split()
    assert len(words) > len(prompt.split()) and first.enhanced_prompt.isascii()
    assert sum(w.lower().strip(".,") in {"the", "a", "and", "of", "with", "on", "in"} for w in words) >= 2  # English
    assert second.enhanced_prompt == first.enhanced_prompt
    assert bridge.load_count == 1 and stats["prompt_enhancer"][0]["origin"] == "gguf"

    fresh_stats: dict = {}
    fresh = PromptEnhancerBridge(fresh_stats)
    started = time.perf_counter()
    fresh.prime(cfg)
    cached_load = time.perf_counter() - started
    assert fresh_stats["prompt_enhancer"][0]["origin"] == "converted_cache"
    assert fresh.enhance(cfg, prompt).enhanced_prompt == first.enhanced_prompt
    assert cached_load < first_load
    print(f"\nSmolLM2 first load {first_load:.1f}s, cached load {cached_load:.1f}s")


def _prompt_set(count: int) -> list[str]:
    path = Path(__file__).parent / "data" / "enhancer_prompts.txt"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return lines[:count]


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """A bridge with SmolLM2 loaded (greedy), and its config; the GGUF is converted once per module."""
    cfg = {"backend": "smollm2", "cache_dir": str(tmp_path_factory.mktemp("smollm2-cache")), "device": "cpu",
           "repetition_penalty": 1.2, "max_new_tokens": 100, "on_error": "fail"}
    bridge = PromptEnhancerBridge()
    bridge.prime(cfg)
    return bridge, cfg


@pytest.mark.slow
def test_smollm2_expand_keeps_the_issues_prompts_and_invents_no_subject(smollm2):
    bridge, cfg = smollm2
    for prompt in _prompt_set(3):  # the issue's three: paper boat, rocky coast, red fox
        result = bridge.enhance(cfg, prompt)
        enhanced = result.enhanced_prompt
        assert enhanced.startswith(prompt + ". ") and len(enhanced.split()) > len(prompt.split()) + 5, enhanced
        fidelity = score(prompt, enhanced)
        assert fidelity.recall == 1.0 and fidelity.invented == (), (enhanced, fidelity)
        assert result.fidelity["recall"] == 1.0 and result.fidelity["invented"] == []
        assert len(enhanced.split()) <= 120 and result.fidelity["attempts"][0]["temperature"] == 0.0
        for dropped in result.fidelity["attempts"][-1]["dropped"]:
            assert dropped not in enhanced and invented_subjects(prompt, dropped)


@pytest.mark.slow
def test_smollm2_rewrite_is_faithful_or_falls_back_with_a_reason(smollm2):
    bridge, cfg = smollm2
    cfg = {**cfg, "mode": "rewrite", "retries": 1, "max_new_tokens": 80}
    prompt = _prompt_set(1)[0]
    result = bridge.enhance(cfg, prompt)
    attempts = result.fidelity["attempts"]
    assert [(a["seed"], a["temperature"]) for a in attempts][:2] == [(0, 0.0), (1, 0.7)][: len(attempts)]
    if result.enhanced_prompt == prompt:
        assert len(attempts) == 2 and "no faithful rewrite in 2 attempts" in result.fidelity["fallback_reason"]
        assert all(a["recall"] < 0.9 or a["invented"] for a in attempts)
    else:
        assert score(prompt, result.enhanced_prompt).passes(0.9, 0) and result.fidelity["fallback_reason"] is None
    assert bridge.enhance(cfg, prompt).enhanced_prompt == result.enhanced_prompt  # seeded: reproducible
