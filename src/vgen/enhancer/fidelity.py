"""Did a rewrite keep the user's shot? Content-word recall of the original, plus invented subjects.

Words are compared as lemmas: lower case, possessives dropped, plurals (and third-person ``-s``)
reduced by a small rule-based lemmatiser -- enough for prompts, no NLP dependency; recall also
matches ``-ing``/``-ed`` forms of the same word (``running`` is kept by ``runs``). A rewrite
*invents* a subject when it names a person, animal, vehicle or object (``vocabulary.SUBJECT_NOUNS``)
that the original does not, unless it is a generic word for a subject the original has ("figure"
for the user's woman).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from vgen.enhancer.vocabulary import GENERIC_SUBJECTS, SCENERY_WORDS, STOPWORDS, SUBJECT_NOUNS

_TOKEN = re.compile(r"[^\W_]+(?:[-'\u2019][^\W_]+)*")

_IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "oxen": "ox", "wolves": "wolf", "leaves": "leaf",
    "knives": "knife", "wives": "wife", "lives": "life", "shelves": "shelf", "calves": "calf",
    "halves": "half", "loaves": "loaf", "thieves": "thief", "elves": "elf", "dwarves": "dwarf",
    "scarves": "scarf", "hooves": "hoof", "cacti": "cactus", "fungi": "fungus", "dice": "die",
    "movies": "movie", "cookies": "cookie", "pies": "pie", "ties": "tie", "lies": "lie", "dies": "die",
    "shoes": "shoe", "canoes": "canoe", "toes": "toe", "hoes": "hoe", "goes": "go", "does": "do",
    "species": "species", "series": "series", "news": "news", "glasses": "glass", "sunglasses": "sunglasses", "lens": "lens",
    "canvas": "canvas", "gas": "gas", "atlas": "atlas",
}
_KEEP_S = ("ss", "us", "is", "ous", "ics", "ness", "ys")


def lemma(word: str) -> str:
    """``word`` in lower case with possessive and plural endings removed (``foxes`` -> ``fox``)."""
    word = word.lower().replace("\u2019", "'")
    if word.endswith("'s") or word.endswith("s'"):
        word = word[:-2] if word.endswith("'s") else word[:-1]
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_KEEP_S) or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return word[:-2]
    return word[:-1]


def match_key(word: str) -> str:
    """A lemma with ``-ing``/``-ed``/final ``-e`` cut, so "running", "runs" and "run" find each other."""
    word = lemma(word)
    if not word.isalpha() or len(word) <= 4:
        return word
    if word.endswith("ied"):
        return word[:-3] + "y"
    for ending in ("ing", "ed"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            word = word[: -len(ending)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]  # running -> run, but not falling -> fal
            return word
    return word[:-1] if word.endswith("e") else word


def lemmas(text: str) -> list[str]:
    return [lemma(token) for token in _TOKEN.findall(text)]


def content_words(text: str) -> list[str]:
    """Lemmas of ``text`` minus stopwords, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in lemmas(text):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def invented_subjects(original: str, text: str) -> list[str]:
    """Subject nouns of ``text`` that ``original`` does not mention (generic words for its subjects allowed).

    ``original`` is everything the user gave: the prompt, and the start image's caption when there is one.
    """
    known = set(lemmas(original))
    invented: dict[str, None] = {}
    for word in lemmas(text):
        if word not in SUBJECT_NOUNS or word in known:
            continue
        if word in GENERIC_SUBJECTS and known & GENERIC_SUBJECTS[word]:
            continue
        invented.setdefault(word, None)
    return list(invented)


@dataclass(frozen=True)
class Fidelity:
    recall: float  # share of the original's content words found in the rewrite
    missing: tuple[str, ...]  # the original's content words the rewrite lost
    invented: tuple[str, ...]  # subject nouns the rewrite added
    unlisted: tuple[str, ...]  # other new words in neither vocabulary list (reported, not judged)
    words: int

    def passes(self, min_recall: float, max_invented: int) -> bool:
        return self.recall >= min_recall and len(self.invented) <= max_invented

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def score(original: str, rewrite: str, context: str = "") -> Fidelity:
    """How faithfully ``rewrite`` keeps ``original``; an original with no content words has recall 1.

    ``context`` (a start-image caption) may be drawn on without counting as invention.
    """
    wanted = content_words(original)
    found = {match_key(w) for w in lemmas(rewrite)}
    missing = tuple(w for w in wanted if match_key(w) not in found)
    recall = 1.0 - len(missing) / len(wanted) if wanted else 1.0
    invented = tuple(invented_subjects(f"{original}\n{context}", rewrite))
    known = set(wanted) | set(content_words(context))
    unlisted = tuple(
        w for w in content_words(rewrite)
        if w not in known and w not in SCENERY_WORDS and w not in SUBJECT_NOUNS and not w.isdigit()
    )
    return Fidelity(round(recall, 4), missing, invented, unlisted, len(rewrite.split()))


def split_by_invention(original: str, sentences: list[str]) -> tuple[list[str], list[str]]:
    """``sentences`` split into those that invent no subject and those that do."""
    kept, dropped = [], []
    for sentence in sentences:
        (dropped if invented_subjects(original, sentence) else kept).append(sentence)
    return kept, dropped
