"""Click and box prompts for SAM2: ``input.points``, ``input.box`` and ``input.objects``.

A prompt marks one object on the prompt frame: points ``[x, y, label]`` (label 1 = subject,
0 = background) and/or a box ``[x0, y0, x1, y1]``, in pixels of the source frame (x to the right,
y down). Several objects (``input.objects``) are tracked separately and merged into one alpha.
Everything here is pure Python/numpy and runs before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, Optional, Sequence

import numpy as np

from vgen.errors import ConfigError

POINT_LABELS = (0, 1)  # background, subject
# SAM2's prompt encoder reads a box as two corner points with these labels, before the clicks.
BOX_CORNER_LABELS = (2, 3)
OBJECT_KEYS = ("points", "box")


@dataclass(frozen=True)
class ObjectPrompt:
    """One object's clicks and box; ``field`` is where it came from, for error messages."""

    field: str
    points: tuple[tuple[float, float, int], ...] = ()
    box: Optional[tuple[float, float, float, float]] = None

    def scaled(self, source_hw: tuple[int, int], working_hw: tuple[int, int]) -> "ObjectPrompt":
        """The same prompt in pixels of a frame resized from ``source_hw`` to ``working_hw``."""
        sy, sx = working_hw[0] / source_hw[0], working_hw[1] / source_hw[1]
        points = tuple((x * sx, y * sy, label) for x, y, label in self.points)
        box = None if self.box is None else (self.box[0] * sx, self.box[1] * sy, self.box[2] * sx, self.box[3] * sy)
        return ObjectPrompt(self.field, points, box)


def has_prompts(points: Any, box: Any, objects: Any) -> bool:
    return points is not None or box is not None or objects is not None


def parse_prompts(points: Any, box: Any, objects: Any) -> list[ObjectPrompt]:
    """The objects the request prompts for ([] when none): ``points``/``box`` are one object,
    ``objects`` a list of ``{points: ..., box: ...}``; mixing both forms is refused."""
    if objects is not None:
        if points is not None or box is not None:
            raise ConfigError(
                "input.objects: give either input.points/input.box (one object) or input.objects (several), not both"
            )
        if not isinstance(objects, Sequence) or isinstance(objects, str) or not objects:
            raise ConfigError(f"input.objects: expected a non-empty list of {{points: ..., box: ...}}, got {objects!r}")
        parsed = []
        for index, item in enumerate(objects):
            where = f"input.objects[{index}]"
            if not isinstance(item, dict) or not item or set(item) - set(OBJECT_KEYS):
                raise ConfigError(f"{where}: expected a mapping with points and/or box, got {item!r}")
            parsed.append(_parse_object(where, item.get("points"), item.get("box")))
        return parsed
    if points is None and box is None:
        return []
    return [_parse_object("input", points, box)]


def check_in_frame(prompts: list[ObjectPrompt], frame_hw: tuple[int, int]) -> None:
    """Every point and box corner must lie inside the ``frame_hw`` (H, W) source frame."""
    height, width = frame_hw
    for prompt in prompts:
        for index, (x, y, _) in enumerate(prompt.points):
            if not (0 <= x < width and 0 <= y < height):
                raise ConfigError(
                    f"{prompt.field}.points[{index}]: ({x:g}, {y:g}) is outside the {width}x{height} frame "
                    f"(x in [0, {width}), y in [0, {height}))"
                )
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box
            if not (0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height):
                raise ConfigError(
                    f"{prompt.field}.box: [{x0:g}, {y0:g}, {x1:g}, {y1:g}] reaches outside the {width}x{height} frame"
                )


def sam2_point_inputs(
    prompt: ObjectPrompt, frame_hw: tuple[int, int], model_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """SAM2's ``point_coords`` (1, 1, N, 2) float32 and ``point_labels`` (1, 1, N) int32 for one
    object, in the model's square input: the box first as two corners labelled 2 and 3, then the
    clicks (what ``Sam2VideoProcessor.add_inputs_to_inference_session`` builds)."""
    height, width = frame_hw
    coords, labels = [], []
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        coords += [(x0, y0), (x1, y1)]
        labels += list(BOX_CORNER_LABELS)
    for x, y, label in prompt.points:
        coords.append((x, y))
        labels.append(label)
    scale = np.array([model_size / width, model_size / height], dtype=np.float32)
    points = np.asarray(coords, dtype=np.float32).reshape(-1, 2) * scale
    return points[None, None], np.asarray(labels, dtype=np.int32)[None, None]


def _parse_object(where: str, points: Any, box: Any) -> ObjectPrompt:
    parsed_points = _parse_points(f"{where}.points", points) if points is not None else ()
    parsed_box = _parse_box(f"{where}.box", box) if box is not None else None
    if parsed_box is None and not any(label == 1 for _, _, label in parsed_points):
        raise ConfigError(
            f"{where}: an object needs a box or at least one subject point [x, y, 1] "
            "(points labelled 0 only say where it is not)"
        )
    return ObjectPrompt(where, parsed_points, parsed_box)


def _parse_points(where: str, points: Any) -> tuple[tuple[float, float, int], ...]:
    if not isinstance(points, Sequence) or isinstance(points, str) or not points:
        raise ConfigError(f"{where}: expected a non-empty list of [x, y, label] points, got {points!r}")
    parsed = []
    for index, point in enumerate(points):
        if (
            not isinstance(point, Sequence) or isinstance(point, str) or len(point) != 3
            or not all(_is_number(value) for value in point[:2]) or point[2] not in POINT_LABELS
            or isinstance(point[2], bool)
        ):  # fmt: skip
            raise ConfigError(
                f"{where}[{index}]: expected [x, y, label] with label 1 (subject) or 0 (background), got {point!r}"
            )
        parsed.append((float(point[0]), float(point[1]), int(point[2])))
    return tuple(parsed)


def _parse_box(where: str, box: Any) -> tuple[float, float, float, float]:
    if (
        not isinstance(box, Sequence) or isinstance(box, str) or len(box) != 4
        or not all(_is_number(value) for value in box)
    ):  # fmt: skip
        raise ConfigError(f"{where}: expected [x0, y0, x1, y1] in pixels, got {box!r}")
    x0, y0, x1, y1 = (float(value) for value in box)
    if not (x0 < x1 and y0 < y1):
        raise ConfigError(f"{where}: expected x0 < x1 and y0 < y1 (top-left, bottom-right corners), got {list(box)!r}")
    return x0, y0, x1, y1


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)
