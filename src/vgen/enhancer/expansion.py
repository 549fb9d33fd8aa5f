"""``enhancer.mode=expand``: the user's prompt verbatim, followed by detail the LLM fills into fixed slots.

A 135M model asked to "rewrite" a prompt writes a different shot. Asked instead to fill labelled
slots (setting, lighting, colours, camera, mood) after two worked examples, it stays on scenery.
The caller fills one slot per generation: the answer so far plus the next label is prefilled and
generation stops at the end of the line, so the labels never drift (a repetition penalty otherwise
turns "Lighting" into "Lights"). Each filled slot becomes one sentence; sentences that invent a
subject are dropped by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vgen.enhancer.cleaning import strip_markup
from vgen.enhancer.prompts import check_task, user_message
from vgen.enhancer.vocabulary import CAMERA_WORDS


@dataclass(frozen=True)
class Slot:
    label: str
    suffix: str = ""  # appended to the model's phrase unless it ends with it: "calm" -> "calm mood"
    camera: bool = False  # left out when the user's prompt already sets the camera

    def sentence(self, phrase: str) -> str:
        if self.suffix and not phrase.lower().endswith(self.suffix):
            phrase = f"{phrase} {self.suffix}"
        return phrase[0].upper() + phrase[1:] + "."


_VIDEO_SLOTS = (Slot("Setting"), Slot("Lighting"), Slot("Colors"), Slot("Camera", camera=True), Slot("Mood", "mood"))
SLOTS = {
    "t2v": _VIDEO_SLOTS,
    "i2v": _VIDEO_SLOTS,
    "t2i": (Slot("Setting"), Slot("Lighting"), Slot("Colors"), Slot("Lens", camera=True), Slot("Style", "style")),
    "audio": (Slot("Space"), Slot("Texture"), Slot("Rhythm"), Slot("Mood", "mood")),
}

_SYSTEM = (
    "You add detail to a {kind} prompt. Answer with exactly these lines: {labels}. Describe only the "
    "{topics} of the user's {thing}. Never add people, animals or objects."
)
_SYSTEM_PARTS = {
    "t2v": ("text-to-video", "place, light, colors, camera and mood", "shot"),
    "i2v": ("image-to-video", "place, light, colors, camera movement and mood", "shot"),
    "t2i": ("text-to-image", "place, light, colors, lens and style", "picture"),
    "audio": ("text-to-audio", "acoustic space, texture, rhythm and mood", "sound"),
}
_VIDEO_EXAMPLES = (
    ("a dog in the rain",
     "Setting: a wet city sidewalk at night, puddles spreading across the pavement below shop windows.\n"
     "Lighting: soft streetlight glowing through the falling rain, reflections shimmering on the ground.\n"
     "Colors: cool blue shadows, warm orange reflections and deep black asphalt.\n"
     "Camera: slow push-in from a low angle, shallow depth of field, steady framing.\n"
     "Mood: quiet, lonely and melancholic."),
    ("a sailboat at sea",
     "Setting: open water under a wide sky, gentle waves rolling toward a distant horizon.\n"
     "Lighting: bright afternoon sun, sparkling highlights dancing on the water surface.\n"
     "Colors: deep blue sea, white foam, pale sky and a soft golden haze.\n"
     "Camera: wide tracking shot moving alongside, steady and smooth.\n"
     "Mood: calm, open and free."),
)
EXAMPLES = {
    "t2v": _VIDEO_EXAMPLES,
    "i2v": _VIDEO_EXAMPLES,
    "t2i": (
        ("a dog in the rain",
         "Setting: a wet city sidewalk at night, puddles on the pavement.\n"
         "Lighting: soft streetlight, raindrops frozen in the air.\n"
         "Colors: cool blue shadows and warm orange reflections.\n"
         "Lens: 35 mm, low angle, shallow depth of field.\n"
         "Style: moody cinematic photograph."),
        ("a sailboat at sea",
         "Setting: open water under a wide sky, gentle waves.\n"
         "Lighting: bright afternoon sun, sparkling highlights on the water.\n"
         "Colors: deep blue sea, white foam and pale sky.\n"
         "Lens: wide angle, eye level, sharp focus.\n"
         "Style: crisp travel photograph."),
    ),
    "audio": (
        ("rain in the city",
         "Space: a narrow street between tall buildings, close echoes.\n"
         "Texture: steady drops on pavement and metal awnings, distant hissing traffic.\n"
         "Rhythm: constant patter with gusts that swell and fade.\n"
         "Mood: calm and melancholic."),
        ("waves on a beach",
         "Space: an open shore, wide and airy.\n"
         "Texture: deep rolling surf and fizzing foam on sand.\n"
         "Rhythm: slow swells every few seconds.\n"
         "Mood: peaceful."),
    ),
}
_LINE = re.compile(r"^\s*[-*\d.)\s]*([A-Za-z]+)\s*:\s*(.*)$")


def slots_for(task: str, subject_text: str) -> tuple[Slot, ...]:
    """The task's slots, without the camera slot when ``subject_text`` already sets the camera."""
    check_task(task)
    sets_camera = bool(CAMERA_WORDS & set(re.findall(r"[\w'-]+", subject_text.lower())))
    return tuple(s for s in SLOTS[task] if not (s.camera and sets_camera))


def build_expand_messages(task: str, prompt: str, caption: str | None, source: str,
                          slots: tuple[Slot, ...]) -> list[dict]:
    """Chat messages for one expansion (the answer is prefilled slot by slot)."""
    kind, topics, thing = _SYSTEM_PARTS[task]
    labels = ", ".join(s.label for s in slots)
    wanted = {s.label for s in slots}
    messages = [{"role": "system", "content": _SYSTEM.format(kind=kind, labels=labels, topics=topics, thing=thing)}]
    for example_prompt, example_answer in EXAMPLES[task]:
        kept = [line for line in example_answer.splitlines() if line.split(":", 1)[0] in wanted]
        messages += [{"role": "user", "content": f"Prompt: {example_prompt}"},
                     {"role": "assistant", "content": "\n".join(kept)}]
    messages.append({"role": "user", "content": user_message(prompt, caption, source)})
    return messages


def detail_sentences(answer: str, slots: tuple[Slot, ...]) -> list[str]:
    """One sentence per filled slot, in slot order; lines with other labels or no label are dropped."""
    by_label = {s.label.lower(): s for s in slots}
    phrases: dict[str, str] = {}
    for line in strip_markup(answer).splitlines():
        match = _LINE.match(line)
        if not match or match.group(1).lower() not in by_label:
            continue
        phrase = " ".join(match.group(2).split()).strip(" .;,:\"'")
        if phrase:
            phrases.setdefault(match.group(1).lower(), phrase)
    return [slot.sentence(phrases[slot.label.lower()]) for slot in slots if slot.label.lower() in phrases]
