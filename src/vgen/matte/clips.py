"""Which clips one ``python -m vgen.matte`` run mattes: ``input.video``, ``input.videos`` or ``input.csv``.

``input.videos`` lists paths, or mappings of per-clip input keys (``{video: a.mp4, mask: a.png}``);
``input.csv`` is a file with a header row and columns ``video`` and optionally ``mask`` (relative
paths are relative to the CSV file; an empty mask cell uses ``input.mask``/the prompts). Every other
``input`` key is shared by all clips unless a clip sets its own.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

from vgen.errors import ConfigError

CLIP_KEYS = ("video", "mask", "start_frame", "end_frame", "mask_channel", "points", "box", "objects", "prompt_frame")
SOURCES = ("video", "videos", "csv")
CSV_COLUMNS = ("video", "mask")


def clip_inputs(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict of :data:`CLIP_KEYS` per clip from the ``input`` node (``"???"`` = unset); paths absolute."""
    given = [name for name in SOURCES if inputs.get(name) not in (None, "???")]
    if len(given) != 1:
        found = f" (got {', '.join('input.' + name for name in given)})" if given else ""
        raise ConfigError(
            f"input.video: give one of input.video=CLIP, input.videos=[CLIP, ...] or input.csv=FILE{found}"
        )
    shared = {key: inputs.get(key) for key in CLIP_KEYS if key != "video"}
    if given == ["video"]:
        clips = [{"video": inputs["video"]}]
    elif given == ["videos"]:
        clips = _from_list(inputs["videos"])
    else:
        clips = _from_csv(Path(inputs["csv"]))
    result = []
    for clip in clips:
        merged = {**shared, **clip}  # a clip's own key wins, even null (e.g. mask: null with prompts)
        merged["video"] = str(Path(merged["video"]).absolute())
        if merged["mask"] is not None:
            merged["mask"] = str(Path(merged["mask"]).absolute())
        result.append(merged)
    return result


def clip_stems(videos: list[str], in_use: Callable[[str], bool] = lambda stem: False) -> list[str]:
    """The output name stem of each clip: the video's stem; a stem already taken (or ``in_use``: an
    earlier run's outputs in the same run dir) gets ``_2``, ``_3``... so clips of the same name (or
    the same video twice, or a rerun) never overwrite outputs that a manifest row records."""
    taken: set[str] = set()
    stems = []
    for video in videos:
        stem = base = Path(video).stem
        suffix = 1
        while stem in taken or in_use(stem):
            suffix += 1
            stem = f"{base}_{suffix}"
        taken.add(stem)
        stems.append(stem)
    return stems


def _from_list(videos: Any) -> list[dict[str, Any]]:
    if not isinstance(videos, list) or not videos:
        raise ConfigError(
            f"input.videos: expected a non-empty list of paths or {{video: ..., mask: ...}}, got {videos!r}"
        )
    clips = []
    for index, item in enumerate(videos):
        where = f"input.videos[{index}]"
        if isinstance(item, str):
            clips.append({"video": item})
            continue
        if not isinstance(item, dict) or not isinstance(item.get("video"), str):
            raise ConfigError(f"{where}: expected a path or a mapping with a video path, got {item!r}")
        unknown = sorted(set(item) - set(CLIP_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (accepted: {', '.join(CLIP_KEYS)})")
        clips.append(dict(item))
    return clips


def _from_csv(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # Excel's "CSV UTF-8" starts with a BOM
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"input.csv: cannot read {path}: {error}") from None
    numbered = [(line, row) for line, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if not numbered:
        raise ConfigError(f"input.csv: {path} is empty; expected a header row 'video,mask' and one row per clip")
    header = [cell.strip() for cell in numbered[0][1]]
    if "video" not in header or set(header) - set(CSV_COLUMNS) or len(set(header)) != len(header):
        raise ConfigError(
            f"input.csv: {path}: the header must name the columns video and optionally mask, got {header}"
        )
    if len(numbered) == 1:
        raise ConfigError(f"input.csv: {path} has a header but no clip")
    clips = []
    for line, row in numbered[1:]:
        if len(row) != len(header):
            raise ConfigError(f"input.csv: {path} line {line}: expected {len(header)} cells, got {len(row)}")
        cells = dict(zip(header, (cell.strip() for cell in row)))
        if not cells["video"]:
            raise ConfigError(f"input.csv: {path} line {line}: the video cell is empty")
        clips.append({name: str(path.parent / value) for name, value in cells.items() if value})  # empty: shared
    return clips
