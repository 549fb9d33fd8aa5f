"""One enhancement: candidates from the mode, each scored for fidelity, retried, best kept or fallback.

The first attempt uses the configured sampling (greedy by default); an unfaithful candidate, or an
expansion cut below the task's minimum words by dropping inventing sentences, is retried up to
``enhancer.retries`` times with seeded sampling (``seed + attempt``, ``retry_temperature``), so the
same config always gives the same result. The best candidate is kept
when it passes the fidelity rule (``min_recall``, ``max_invented``); otherwise the user's prompt is
used and the reason recorded. :func:`enhance_faithfully` returns the text and the record that goes
into the manifest's enhancer payload.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from vgen.enhancer.cleaning import EmptyEnhancementError, clean_output
from vgen.enhancer.expansion import build_expand_messages, detail_sentences, slots_for
from vgen.enhancer.fidelity import Fidelity, score, split_by_invention
from vgen.enhancer.prompts import build_messages
from vgen.enhancer.settings import word_limits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    seed: int
    temperature: float
    text: str
    fidelity: Fidelity
    dropped: tuple[str, ...] = ()  # expand: sentences dropped for inventing a subject

    def record(self) -> dict[str, Any]:
        f = self.fidelity
        return {"seed": self.seed, "temperature": self.temperature, "recall": f.recall, "missing": list(f.missing),
                "invented": list(f.invented), "words": f.words, "dropped": list(self.dropped)}


def enhance_faithfully(cfg: dict, llm: Any, prompt: str, caption: str | None, task: str) -> tuple[str, dict]:
    """The enhanced prompt for ``prompt`` and its fidelity record (see the module docstring)."""
    from vgen.enhancer.llm import SamplingSettings

    limits = word_limits(cfg, task)
    # source=image works from the caption alone: the caption is then what must be kept
    original = caption if cfg["source"] == "image" and caption else prompt
    context = caption if cfg["source"] == "text+image" and caption else ""
    if cfg["mode"] == "expand" and len(original.split()) >= limits[1]:
        fidelity = score(original, original, context)
        return original, _record(fidelity, [], None, skipped=f"the prompt has {fidelity.words} words already "
                                                              f"(enhancer.word_limits.{task} max {limits[1]})")
    base = SamplingSettings(
        max_new_tokens=cfg["max_new_tokens"], temperature=float(cfg["temperature"]), top_p=float(cfg["top_p"]),
        repetition_penalty=float(cfg["repetition_penalty"]), seed=cfg["seed"],
    )
    attempts: list[Attempt] = []
    for index in range(cfg["retries"] + 1):
        sampling = base if index == 0 else replace(
            base, temperature=float(cfg["retry_temperature"]), seed=cfg["seed"] + index
        )
        if cfg["mode"] == "expand":
            attempt = _expand(llm, cfg, original, prompt, caption, task, limits, sampling, context)
        else:
            attempt = _rewrite(llm, cfg, original, prompt, caption, task, limits, sampling, context)
        attempts.append(attempt)
        log.info("prompt enhancer attempt %d (seed %d, temperature %.2f): recall %.2f, invented %s, %d words",
                 index + 1, sampling.seed, sampling.temperature, attempt.fidelity.recall,
                 list(attempt.fidelity.invented) or "none", attempt.fidelity.words)
        if _faithful(cfg, attempt) and not (attempt.dropped and attempt.fidelity.words < limits[0]):
            break
    best = max(attempts, key=lambda a: (_faithful(cfg, a), min(a.fidelity.words, limits[0]),
                                        a.fidelity.recall, -len(a.fidelity.invented)))
    if _faithful(cfg, best):
        return best.text, _record(best.fidelity, attempts, None)
    reason = (f"no faithful rewrite in {len(attempts)} attempts: best has recall {best.fidelity.recall:.2f} "
              f"(enhancer.min_recall {cfg['min_recall']}), missing {list(best.fidelity.missing)}, "
              f"invented {list(best.fidelity.invented)} (enhancer.max_invented {cfg['max_invented']})")
    log.warning("prompt enhancer kept the original prompt: %s", reason)
    return prompt, _record(score(prompt, prompt), attempts, reason)


def _faithful(cfg: dict, attempt: Attempt) -> bool:
    return attempt.fidelity.passes(float(cfg["min_recall"]), cfg["max_invented"])


def _record(fidelity: Fidelity, attempts: list[Attempt], fallback_reason: str | None,
            skipped: str | None = None) -> dict[str, Any]:
    record = {**fidelity.as_dict(), "attempts": [a.record() for a in attempts], "fallback_reason": fallback_reason}
    if skipped:
        record["skipped"] = skipped
    return record


def _expand(llm, cfg, original, prompt, caption, task, limits, sampling, context) -> Attempt:
    slots = slots_for(task, original)
    messages = build_expand_messages(task, prompt, caption, cfg["source"], slots)
    room = limits[1] - len(original.split())
    # ~1.5 tokens per English word, shared by the slots; never more than enhancer.max_new_tokens
    sampling = replace(sampling, max_new_tokens=min(sampling.max_new_tokens, int(1.5 * room / len(slots)) + 4))
    answer = ""
    for slot in slots:
        prefill = f"{answer}{slot.label}:"
        line = llm.generate(messages, sampling, prefill, stop="\n").text.split("\n", 1)[0]
        answer = f"{prefill}{line}\n"
    sentences = detail_sentences(answer, slots)
    if not sentences:
        raise EmptyEnhancementError(f"prompt enhancer filled none of {[s.label for s in slots]}")
    kept, dropped = split_by_invention(f"{original}\n{context}", sentences)
    text = original if original.rstrip().endswith((".", "!", "?")) else original.rstrip() + "."
    for sentence in kept:
        if len(text.split()) + len(sentence.split()) > limits[1]:
            break
        text = f"{text} {sentence}"
    return Attempt(sampling.seed, sampling.temperature, text, score(original, text, context), tuple(dropped))


def _rewrite(llm, cfg, original, prompt, caption, task, limits, sampling, context) -> Attempt:
    messages = build_messages(task, prompt, caption, cfg["source"], limits)
    generation = llm.generate(messages, sampling)
    text = clean_output(generation.text, limits[1])
    return Attempt(sampling.seed, sampling.temperature, text, score(original, text, context))
