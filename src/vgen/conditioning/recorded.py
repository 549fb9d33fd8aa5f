"""Recorded inputs, as ``vgen.reproduce`` meets them: check the files on disk, or restore embedded images.

A job's manifest row (and its artifact's metadata) records each input file's path and sha256
(``inputs.files``). A rerun is only a reproduction when it reads the same bytes, so a file that is
gone or changed is refused, naming it. With ``metadata.embed_source_images=true`` the start/end and
reference images travel inside the artifact; they are written out and used instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from vgen.errors import ConfigError
from vgen.hashing import file_sha256


def recorded_files(files: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``[(label, record)]`` with ``images_ref`` entries labelled ``images_ref[i]``."""
    flat = []
    for key, record in files.items():
        if isinstance(record, list):
            flat += [(f"{key}[{index}]", item) for index, item in enumerate(record)]
        else:
            flat.append((key, record))
    return flat


def check_recorded_files(files: Mapping[str, Any], where: str, *, skip: tuple[str, ...] = ()) -> None:
    """Raise a ConfigError naming the first input file that is missing or no longer has its sha256."""
    for label, record in recorded_files(files):
        if label in skip:
            continue
        path = Path(record["path"])
        if not path.is_file():
            raise ConfigError(f"{where}: input {label} {path} is gone; the job cannot be reproduced without it")
        current = file_sha256(path)
        if current != record["sha256"]:
            raise ConfigError(f"{where}: input {label} {path} changed since the run (sha256 {record['sha256'][:12]}... "
                              f"recorded, {current[:12]}... now); the rerun would not reproduce the job")


def restore_embedded_images(settings: dict[str, Any], images: Mapping[str, bytes], directory: Path) -> dict[str, Any]:
    """Write the embedded PNGs (``{label: bytes}``) into ``directory`` and point the job's keys at them."""
    directory.mkdir(parents=True, exist_ok=True)
    restored = dict(settings)
    for label, data in images.items():
        key, _, index = label.partition("[")
        path = directory / f"{label.replace('[', '_').rstrip(']')}.png"
        path.write_bytes(data)
        if index:
            restored[key] = list(restored[key])
            restored[key][int(index.rstrip("]"))] = str(path)
        else:
            restored[key] = str(path)
    return restored
