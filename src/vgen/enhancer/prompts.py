"""System prompts per task and the chat messages sent to the rewrite LLM."""

from __future__ import annotations

from vgen.errors import VgenError

_RULES = (
    "Reply with the rewritten prompt only: one paragraph of plain English, present tense, "
    "no title, no quotes, no lists, no explanations, {min_words} to {max_words} words."
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

# One worked example per task, sent as a prior chat turn: small models (SmolLM2-135M) copy its
# shape -- visual, present tense, one paragraph -- far more reliably than they follow instructions.
_VIDEO_EXAMPLE = (
    "Prompt: a dog in the rain",
    "A golden retriever sits on a wet city sidewalk in heavy rain, water dripping from its fur as it "
    "shakes its head. Neon shop signs reflect in the puddles around it. Slow push-in from a low angle, "
    "cool blue and warm orange tones, moody cinematic lighting.",
)
EXAMPLES = {
    "t2v": _VIDEO_EXAMPLE,
    "i2v": _VIDEO_EXAMPLE,
    "t2i": (
        "Prompt: a dog in the rain",
        "A golden retriever sitting on a wet city sidewalk in heavy rain, droplets frozen mid-air, neon "
        "shop signs reflected in the puddles, low-angle shot, 35 mm lens, shallow depth of field, cool "
        "blue and warm orange tones.",
    ),
    "audio": (
        "Prompt: rain in the city",
        "Steady heavy rain on pavement and metal awnings, close and crisp, with distant traffic hissing "
        "over wet asphalt, an occasional car horn echoing between buildings, and a low rumble of thunder "
        "rolling in slowly.",
    ),
}


def system_prompt(task: str, word_limits: tuple[int, int]) -> str:
    check_task(task)
    return SYSTEM_PROMPTS[task] + _RULES.format(min_words=word_limits[0], max_words=word_limits[1])


def check_task(task: str) -> None:
    if task not in SYSTEM_PROMPTS:
        raise VgenError(f"prompt enhancer: unknown task {task!r}; expected one of {', '.join(TASKS)}")


def user_message(prompt: str, caption: str | None, source: str) -> str:
    """What the LLM is asked to work on.

    ``source=image`` drops the user's prompt and works from the caption alone (Wan2GP's image mode);
    ``text+image`` gives both (the caption only when there is one); ``text`` ignores any caption.
    """
    parts = []
    if caption and source != "text":
        parts.append(f"The start image shows: {caption}")
    if source != "image":
        parts.append(f"Prompt: {prompt}")
    return "\n".join(parts)


def build_messages(task: str, prompt: str, caption: str | None, source: str,
                   word_limits: tuple[int, int]) -> list[dict]:
    """Chat messages for one free rewrite (``enhancer.mode=rewrite``)."""
    example_prompt, example_answer = EXAMPLES[task]
    return [
        {"role": "system", "content": system_prompt(task, word_limits)},
        {"role": "user", "content": example_prompt},
        {"role": "assistant", "content": example_answer},
        {"role": "user", "content": user_message(prompt, caption, source)},
    ]
