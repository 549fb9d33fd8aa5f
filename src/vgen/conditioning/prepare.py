"""Turn a validated job's inputs into the pipeline's keyword arguments, and record what was used.

Images and frames are fitted to the job's size (:mod:`vgen.conditioning.fit`); a source video's
frames are matched to ``num_frames``; an image mask is held for every frame. Reference images
(``images_ref``) are passed oriented and RGB but unfitted: the VACE pipeline letterboxes them itself.
Each input file is hashed as it is read, for the manifest and for ``vgen.reproduce``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vgen.conditioning.fit import fit_image, fit_mask
from vgen.conditioning.media import load_image, load_video_frames, probe_input
from vgen.conditioning.spec import IMAGE_KEYS, LIST_KEYS, SCALAR_KEYS, job_input_files
from vgen.conditioning.validate import declared_inputs, input_kind
from vgen.hashing import file_sha256


@dataclass
class PreparedInputs:
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)  # manifest records, by input key
    source_images: dict[str, Any] = field(default_factory=dict)  # label -> oriented RGB image (embedding)
    pipeline_class: str | None = None  # run on this pipeline class (from_pipe of the loaded one)


def file_record(path: str | Path, kind: str) -> dict[str, Any]:
    """Path, sha256 and size of an input file, plus frames and fps for a video."""
    path = Path(path)
    record: dict[str, Any] = {"path": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size}
    info = probe_input(path, kind)
    record["kind"] = info.kind
    if info.kind == "video":
        record.update(frames=info.frames, fps=info.fps)
    return record


def input_file_records(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{key: record}`` (a list of records for ``images_ref``) for every input file of a job."""
    records: dict[str, Any] = {}
    for label, path in job_input_files(settings):
        key = label.split("[", 1)[0]
        record = file_record(path, input_kind(label))
        if key in LIST_KEYS:
            records.setdefault(key, []).append(record)
        else:
            records[key] = record
    return records


def _frames(path: str, settings: Mapping[str, Any], *, mask: bool) -> list:
    width, height, count, policy = settings["width"], settings["height"], settings["num_frames"], settings["fit"]
    fit = fit_mask if mask else fit_image
    if probe_input(path, "image_or_video" if mask else "video").kind == "image":
        return [fit(load_image(path), width, height, policy)] * count
    return [fit(frame, width, height, policy) for frame in load_video_frames(path, count, loop=settings["loop_video"])]


def prepare_inputs(settings: Mapping[str, Any], model_cfg: Any) -> PreparedInputs:
    """Load, fit and map a job's inputs to the pipeline arguments its model declares."""
    prepared = PreparedInputs()
    declared = declared_inputs(model_cfg)
    for key, declaration in declared.items():
        if key not in settings:
            continue
        value = settings[key]
        if key in SCALAR_KEYS:
            converted: Any = value
        elif key in IMAGE_KEYS:
            image = load_image(value)
            prepared.source_images[key] = image
            converted = fit_image(image, settings["width"], settings["height"], settings["fit"])
        elif key in LIST_KEYS:
            converted = [load_image(path) for path in value]
            prepared.source_images.update({f"{key}[{index}]": image for index, image in enumerate(converted)})
        else:
            converted = _frames(value, settings, mask=key == "mask")
        prepared.pipeline_kwargs[declaration["arg"]] = converted
        prepared.pipeline_class = declaration.get("pipeline_class") or prepared.pipeline_class
    prepared.files = input_file_records(settings)
    return prepared


def pipeline_for(pipe: Any, pipeline_class: str | None) -> Any:
    """``pipe``, or the same components as a ``pipeline_class`` pipeline (diffusers ``from_pipe``: no copy)."""
    if pipeline_class is None or type(pipe).__name__ == pipeline_class:
        return pipe
    import diffusers

    return getattr(diffusers, pipeline_class).from_pipe(pipe)
