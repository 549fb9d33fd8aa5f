"""Fidelity of enhanced prompts: the scorer on hand-written rewrites, expand-mode slots, retries and fallback.

The scorer and slot parsing are pure functions. The retry/fallback orchestration runs once with the
tiny random-init LLM (real generation, unfaithful by nature) and once with ``ScriptedLLM``, a test
double that answers fixed texts, so the trimming of inventing sentences can be asserted word for
word; the real SmolLM2 runs in test_enhancer_models.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vgen.enhancer import PromptEnhancerBridge, validate_enhancer_config
from vgen.enhancer.attempts import enhance_faithfully
from vgen.enhancer.expansion import SLOTS, build_expand_messages, detail_sentences, slots_for
from vgen.enhancer.fidelity import content_words, invented_subjects, lemma, score, split_by_invention
from vgen.enhancer.llm import Generation
from vgen.enhancer.vocabulary import SCENERY_WORDS, STOPWORDS, SUBJECT_NOUNS

from enhancer_fixtures import build_tiny_llm

PROMPTS_FILE = Path(__file__).parent / "data" / "enhancer_prompts.txt"


# --- scorer ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word, expected",
    [("foxes", "fox"), ("puppies", "puppy"), ("wolves", "wolf"), ("children", "child"), ("women", "woman"),
     ("glasses", "glass"), ("fox's", "fox"), ("Boats", "boat"), ("boss", "boss"), ("bus", "bus"),
     ("species", "species"), ("cafés", "café"), ("waves", "wave"), ("benches", "bench"), ("shoes", "shoe"),
     ("gas", "gas"), ("city", "city"), ("cities", "city")],
)
def test_lemma_reduces_plurals_and_possessives(word, expected):
    assert lemma(word) == expected


def test_content_words_skip_stopwords_and_repeats_and_keep_numbers_and_foreign_words():
    assert content_words("The foxes and the fox run on 30 fresh snows in Kyoto, café crème") == [
        "fox", "run", "30", "fresh", "snow", "kyoto", "café", "crème"]


def test_vocabularies_are_disjoint_lemmas():
    assert not SUBJECT_NOUNS & SCENERY_WORDS and not SUBJECT_NOUNS & STOPWORDS
    assert [w for w in SUBJECT_NOUNS | SCENERY_WORDS if lemma(w) != w] == []  # listed as lemmas


def test_the_issues_rewrites_score_as_unfaithful():
    boat = score("a paper boat drifting down a rainy street",
                 "A sailboat glides along a river at sunrise, a lone sailor at the helm.")
    assert boat.recall == 0.0 and set(boat.invented) == {"sailboat", "sailor"}
    assert boat.missing == ("paper", "boat", "drifting", "rainy", "street")
    coast = score("waves crashing on a rocky coast, aerial shot",
                  "Waves crash against the rocks as a lone figure stands on a cliff and a sailboat sails the air.")
    assert set(coast.missing) == {"rocky", "coast", "aerial", "shot"} and set(coast.invented) == {"figure", "sailboat"}
    assert not coast.passes(0.9, 0)


def test_a_faithful_rewrite_passes_with_inflections_and_generic_words():
    original = "a woman walking her dogs past shop windows"
    rewrite = ("A woman walks her two dogs past glowing shop windows at dusk; the figure and the animals "
               "cast long shadows on the wet pavement.")
    fidelity = score(original, rewrite)
    assert fidelity.recall == 1.0 and fidelity.invented == () and fidelity.passes(0.9, 0)
    assert "glowing" in fidelity.unlisted and "pavement" not in fidelity.unlisted  # scenery is listed
    # a generic word for a subject the prompt does not have is an invention
    assert invented_subjects("waves on a rocky coast", "a lone figure watches the waves") == ["figure"]
    assert invented_subjects("a red fox in snow", "the animal leaps") == []


def test_context_words_are_not_inventions_but_do_not_count_for_recall():
    fidelity = score("make it move", "The lighthouse and the boat sway as the camera moves.",
                     context="a lighthouse beside a small boat")
    assert fidelity.invented == () and fidelity.missing == ("make",)


def test_empty_or_stopword_prompts_have_full_recall():
    assert score("", "anything").recall == 1.0 and score("the and of", "x").recall == 1.0


def test_split_by_invention_keeps_scenery_sentences_only():
    kept, dropped = split_by_invention(
        "a candle flame in a dark room",
        ["Warm light flickers on the walls.", "A woman watches from the doorway.", "Slow push-in."],
    )
    assert kept == ["Warm light flickers on the walls.", "Slow push-in."]
    assert dropped == ["A woman watches from the doorway."]


def test_prompt_set_is_varied():
    prompts = [line for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    assert len(prompts) >= 30
    words = [len(p.split()) for p in prompts]
    assert min(words) == 1 and max(words) > 50
    assert any('"' in p for p in prompts) and any(not p.isascii() or "Kyoto" in p for p in prompts)


# --- expand-mode slots ----------------------------------------------------------------------------


def test_detail_sentences_follow_slot_order_and_drop_unknown_lines():
    answer = ("Setting: a narrow alley, wet cobblestones.\nBogus: nothing\n  Camera: slow dolly in\n"
              "Lighting: **soft** neon glow\nMood: calm mood\nColors: \nMood: second mood ignored")
    assert detail_sentences(answer, SLOTS["t2v"]) == [
        "A narrow alley, wet cobblestones.", "Soft neon glow.", "Slow dolly in.", "Calm mood."]
    assert detail_sentences("Mood: serene", SLOTS["t2v"]) == ["Serene mood."]
    assert detail_sentences("no labels at all", SLOTS["t2v"]) == []


def test_camera_slot_is_left_out_when_the_prompt_sets_the_camera():
    assert "Camera" not in [s.label for s in slots_for("t2v", "waves on a rocky coast, aerial shot")]
    assert "Camera" in [s.label for s in slots_for("t2v", "waves on a rocky coast")]
    messages = build_expand_messages("t2v", "a fox, close-up", None, "text", slots_for("t2v", "a fox, close-up"))
    assert "Camera" not in messages[0]["content"]
    assert all("Camera:" not in m["content"] for m in messages)  # examples lose the slot too
    assert messages[-1]["content"] == "Prompt: a fox, close-up"


# --- orchestration --------------------------------------------------------------------------------


class ScriptedLLM:
    """Answers the scripted texts in turn and records each call's sampling and prefill (a stand-in for a model)."""

    def __init__(self, *answers: str):
        self.answers, self.calls = list(answers), []

    def generate(self, messages, settings, prefill="", stop=None):
        self.calls.append((settings, prefill, stop))
        return Generation(text=self.answers.pop(0), new_tokens=10, seconds=0.0)


def _cfg(**overrides):
    return validate_enhancer_config({"backend": "smollm2", **overrides})


def test_expand_keeps_the_prompt_verbatim_and_drops_inventing_sentences():
    llm = ScriptedLLM(" a rain-soaked street at night, puddles everywhere.\nLights: ignored", " streetlights glowing.\n",
                      " blue and amber.", " a sailor watches from a window.", " quiet")
    text, record = enhance_faithfully(_cfg(word_limits={"t2v": [10, 120]}), llm,
                                      "a paper boat drifting down a rainy street", None, "t2v")
    assert text == ("a paper boat drifting down a rainy street. A rain-soaked street at night, puddles everywhere. "
                    "Streetlights glowing. Blue and amber. Quiet mood.")
    assert record["recall"] == 1.0 and record["invented"] == [] and record["fallback_reason"] is None
    assert record["attempts"][0]["dropped"] == ["A sailor watches from a window."]
    # one generation per slot, each prefilled with the answer so far and stopped at the line's end
    assert [call[1] for call in llm.calls] == [
        "Setting:", "Setting: a rain-soaked street at night, puddles everywhere.\nLighting:",
        "Setting: a rain-soaked street at night, puddles everywhere.\nLighting: streetlights glowing.\nColors:",
        "Setting: a rain-soaked street at night, puddles everywhere.\nLighting: streetlights glowing.\n"
        "Colors: blue and amber.\nCamera:",
        "Setting: a rain-soaked street at night, puddles everywhere.\nLighting: streetlights glowing.\n"
        "Colors: blue and amber.\nCamera: a sailor watches from a window.\nMood:",
    ]
    assert {call[2] for call in llm.calls} == {"\n"}


def test_expand_retries_with_seeded_sampling_when_trimming_left_it_short():
    inventing = [" a man with his dog", " a woman holds a lamp", "", "", ""]
    llm = ScriptedLLM(*inventing, *inventing, " misty hills", " pale dawn light over the valley", "", "", "")
    text, record = enhance_faithfully(_cfg(seed=5), llm, "sunset", None, "t2v")
    assert text == "sunset. Misty hills. Pale dawn light over the valley."
    assert [(a["seed"], a["temperature"]) for a in record["attempts"]] == [(5, 0.0), (6, 0.7), (7, 0.7)]
    assert record["attempts"][0]["dropped"] == ["A man with his dog.", "A woman holds a lamp."]
    assert [c[0].temperature for c in llm.calls] == [0.0] * 5 + [0.7] * 10


def test_expand_respects_the_word_limits():
    long_prompt = " ".join(["snow"] * 30)
    untouched, record = enhance_faithfully(_cfg(word_limits={"t2v": [5, 30]}), ScriptedLLM(), long_prompt, None, "t2v")
    assert untouched == long_prompt and record["attempts"] == [] and "30 words" in record["skipped"]
    llm = ScriptedLLM(" a field of deep snow under a low grey sky.", " flat winter light.", "", "", "")
    text, _ = enhance_faithfully(_cfg(word_limits={"t2v": [5, 14]}), llm, "snow at dawn", None, "t2v")
    assert text == "snow at dawn. A field of deep snow under a low grey sky." and len(text.split()) <= 14
    assert llm.calls[0][0].max_new_tokens < 256  # the budget follows the room left


def test_rewrite_falls_back_to_the_prompt_with_the_reason_after_bounded_retries():
    llm = ScriptedLLM("A sailboat on a river, a lone sailor.", "A boat on a river at dawn.",
                      "A paper sailboat on a river with a fisherman.")
    text, record = enhance_faithfully(_cfg(mode="rewrite", retries=2), llm,
                                      "a paper boat drifting down a rainy street", None, "t2v")
    assert text == "a paper boat drifting down a rainy street"
    assert len(record["attempts"]) == 3 and record["attempts"][0]["invented"] == ["sailboat", "sailor"]
    assert "no faithful rewrite in 3 attempts" in record["fallback_reason"]
    assert "enhancer.min_recall 0.9" in record["fallback_reason"]


def test_rewrite_keeps_the_first_faithful_candidate():
    faithful = "A paper boat drifts down a rainy street, rain rippling the puddles, low angle."
    llm = ScriptedLLM("A sailboat on a river.", faithful, "never asked")
    text, record = enhance_faithfully(_cfg(mode="rewrite"), llm, "a paper boat drifting down a rainy street", None, "t2v")
    assert text == faithful and len(record["attempts"]) == 2 and record["fallback_reason"] is None


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return str(build_tiny_llm(tmp_path_factory.mktemp("fidelity") / "llm"))


def test_tiny_llm_rewrites_fall_back_and_the_payload_records_every_attempt(tiny_llm):
    cfg = {"backend": "hf_llm", "model": tiny_llm, "device": "cpu", "mode": "rewrite", "max_new_tokens": 12,
           "retries": 1}
    bridge = PromptEnhancerBridge()
    result = bridge.enhance(cfg, "a red fox running through fresh snow at dawn")
    assert result.enhanced_prompt == result.prompt and result.error is None
    assert [(a["seed"], a["temperature"]) for a in result.fidelity["attempts"]] == [(0, 0.0), (1, 0.7)]
    assert result.fidelity["fallback_reason"].startswith("no faithful rewrite in 2 attempts")
    payload = bridge.payload(cfg, [result])
    assert payload["fidelity"] == [result.fidelity] and payload["mode"] == "rewrite"
    assert bridge.enhance(cfg, "a red fox running through fresh snow at dawn").fidelity == result.fidelity  # seeded
