"""Turn raw LLM output into a bare prompt: no markup, no preamble, no quotes, one line, word-capped."""

from __future__ import annotations

import re

from vgen.errors import VgenError


class EmptyEnhancementError(VgenError):
    """The model's answer was empty once cleaned."""


_SPECIAL_TOKENS = re.compile(
    r"<\|[^|<>]{1,40}\|>"  # <|im_start|>, <|eot_id|>, <|assistant|> ...
    r"|</?s>|<unk>|<pad>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>"
    r"|\*\*"  # markdown bold
)
_ROLE_LABEL = re.compile(r"^\s*(?:assistant|model)\s*(?::|\n)\s*", re.IGNORECASE)
_INTERJECTION = re.compile(r"^\s*(?:sure|certainly|okay|ok|of course|absolutely)\b[!,.:]*\s*", re.IGNORECASE)
_PREAMBLE = re.compile(
    r"^\s*(?:here(?:'s| is| are)\b[^:\n]{0,80}:"  # "Here is the enhanced prompt:"
    r"|(?:(?:the|your|my)\s+)?(?:(?:enhanced|rewritten|improved|detailed|refined|final|cinematic|new|video|image|audio)"
    r"\s+)*(?:prompt|description|version)\s*:)\s*",
    re.IGNORECASE,
)
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb"}
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)]?(?=\s|$)")


def clean_output(text: str, max_words: int) -> str:
    """Clean ``text`` and cap it at ``max_words`` words; raise :class:`EmptyEnhancementError` if nothing is left."""
    text = _ROLE_LABEL.sub("", strip_markup(text), count=1)
    previous = None
    while previous != text:
        previous = text
        text = _INTERJECTION.sub("", text, count=1)
        text = _PREAMBLE.sub("", text, count=1)
        text = _strip_quotes(text.strip())
    text = " ".join(text.split())
    text = cap_words(text, max_words)
    if not text:
        raise EmptyEnhancementError("prompt enhancer produced an empty prompt after cleaning")
    return text


def strip_markup(text: str) -> str:
    """``text`` without chat special tokens and markdown bold; line breaks kept."""
    return _SPECIAL_TOKENS.sub(" ", text)


def cap_words(text: str, max_words: int) -> str:
    """Keep the first ``max_words`` words; when cut, end at the last full sentence if there is one."""
    words = text.split()
    if len(words) <= max_words:
        return text
    capped = " ".join(words[:max_words])
    ends = list(_SENTENCE_END.finditer(capped))
    return capped[: ends[-1].end()] if ends else capped


def _strip_quotes(text: str) -> str:
    """Remove quotes wrapping the whole text (repeatedly: ``"'x'"`` -> ``x``)."""
    while len(text) >= 2 and _QUOTE_PAIRS.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    if text[:1] in _QUOTE_PAIRS and text.count(text[0]) == 1:
        text = text[1:].strip()  # an opening quote whose closing one was cut by max_new_tokens
    return text
