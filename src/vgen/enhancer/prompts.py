"""System prompts per task and the chat messages sent to the rewrite LLM."""

from __future__ import annotations

from vgen.errors import VgenError

_RULES = (
    "Reply with the rewritten prompt only: one paragraph of plain English, present tense, "
    "no title, no quotes, no lists, no explanations, at most {max_words} words."
)

SYSTEM_PROMPTS = {
    "t2v": (
        "You are a film director writing prompts for a text-to-video model. Rewrite the user's short "
        "idea into a detailed cinematic video description: the subject and its appearance, the action "
        "and how it moves over time, the setting, lighting, colors, mood, camera angle and camera "
        "movement. Keep every element the user asked for and do not invent a story. "
    ),
    "i2v": (
        "You are a film director writing prompts for an image-to-video model that animates a start "
        "image. Describe what is in the image as it is, then describe how it moves: the motion of the "
        "subject, secondary motion in the scene, and the camera movement. Keep the user's intent. "
    ),
    "t2i": (
        "You are a photographer writing prompts for a text-to-image model. Rewrite the user's short "
        "idea into a detailed description of a single still image: subject, composition, setting, "
        "lighting, colors, lens and style. Describe no motion. "
    ),
    "audio": (
        "You are a sound designer writing prompts for a text-to-audio model. Rewrite the user's short "
        "idea into a detailed description of the sound: sources, timbre, rhythm, tempo, space and "
        "acoustics, how it evolves over time. Describe no visuals. "
    ),
}
TASKS = tuple(SYSTEM_PROMPTS)


def system_prompt(task: str, max_words: int) -> str:
    if task not in SYSTEM_PROMPTS:
        raise VgenError(f"prompt enhancer: unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return SYSTEM_PROMPTS[task] + _RULES.format(max_words=max_words)


def build_messages(task: str, prompt: str, caption: str | None, mode: str, max_words: int) -> list[dict]:
    """Chat messages for one rewrite.

    ``mode=image`` drops the user's prompt and rewrites from the caption alone (Wan2GP's image mode);
    ``text+image`` gives both (the caption only when there is one); ``text`` ignores any caption.
    """
    parts = []
    if caption and mode != "text":
        parts.append(f"The start image shows: {caption}")
    if mode != "image":
        parts.append(f"Prompt: {prompt}")
    return [
        {"role": "system", "content": system_prompt(task, max_words)},
        {"role": "user", "content": "\n".join(parts)},
    ]
