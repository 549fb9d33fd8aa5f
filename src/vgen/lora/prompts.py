"""How a LoRA preset changes the job prompt: replace it (``full``) or wrap it (prefix/suffix)."""

from __future__ import annotations

from dataclasses import dataclass


def strip_comment_lines(text: str | None) -> str:
    """Drop ``#`` comment lines (Wan2GP presets keep usage notes there) and join the rest with spaces."""
    if not text:
        return ""
    lines = (line.strip() for line in text.replace("\r", "").split("\n"))
    return " ".join(line for line in lines if line and not line.startswith("#"))


@dataclass(frozen=True)
class PromptTransform:
    full: str | None = None
    prefix: str = ""
    suffix: str = ""

    @classmethod
    def from_preset(
        cls, prompt: str | None, full_prompt: bool, prefix: str = "", suffix: str = ""
    ) -> "PromptTransform":
        """Wan2GP semantics: ``prompt`` replaces the job prompt when ``full_prompt``, else it is a prefix."""
        text = strip_comment_lines(prompt)
        if full_prompt and text:
            return cls(full=text)
        prefix = " ".join(part for part in (text, strip_comment_lines(prefix)) if part)
        return cls(prefix=prefix, suffix=strip_comment_lines(suffix))

    @property
    def is_identity(self) -> bool:
        return self.full is None and not self.prefix and not self.suffix

    def apply(self, prompt: str) -> str:
        """Prefix and prompt are joined by a space; a suffix starting with punctuation attaches directly."""
        if self.full is not None:
            return self.full
        text = " ".join(part for part in (self.prefix, prompt.strip()) if part)
        if not self.suffix:
            return text
        separator = "" if self.suffix[0] in ",.;:!?" or not text else " "
        return f"{text}{separator}{self.suffix}"

    def to_payload(self) -> dict | None:
        if self.is_identity:
            return None
        if self.full is not None:
            return {"full": self.full}
        return {"prefix": self.prefix, "suffix": self.suffix}
