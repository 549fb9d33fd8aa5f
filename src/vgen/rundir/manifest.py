"""The run's JSONL manifest: one row per finished job, appended only after its artifacts are durable.

Schema: docs/MANIFEST.md, kept in sync with docs/manifest.schema.json (tests validate rows against it).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from vgen.hashing import CANONICAL_ENCODER, payload_hash

MANIFEST_RELATIVE_PATH = Path("manifests") / "run_history.jsonl"
SAVE_METHODS = ("save_video", "save_image", "save_audio", "save_mask_archive")
log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Versions of vgen and the model stack, read from package metadata (no heavy imports)."""
    versions: dict[str, str | None] = {}
    for name in ("vgen", "torch", "diffusers", "transformers"):
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def adapter_payload_hashes(adapter_payloads: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: payload_hash(payload) for name, payload in adapter_payloads.items()}


def row_json(value: Any) -> str:
    """How a manifest encodes a row (and each value in it): sorted keys, compact, UTF-8 kept."""
    return CANONICAL_ENCODER.encode(value)


class ManifestRecorder:
    """Wraps a media context so that every ``save_*`` call is captured as an artifact of this job.

    Only what the context wrote can reach the manifest: the rows are built from ``artifacts``.
    """

    def __init__(self, context: Any) -> None:
        self._context = context
        self.artifacts: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._context, name)
        if name not in SAVE_METHODS:
            return attribute

        def capture(*args: Any, **kwargs: Any) -> Any:
            artifact = attribute(*args, **kwargs)
            if artifact is not None:
                self.artifacts.append(artifact)
            return artifact

        return capture


class ManifestLog:
    """Append-only JSONL file: each row is one ``os.write`` of a whole line, fsynced, under an exclusive lock.

    A row always starts on a fresh line: when a killed process (or a full disk) left a torn last line
    without its newline, the next append ends that line first, so only the torn line is lost.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / MANIFEST_RELATIVE_PATH

    def append(self, row: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (row_json(row) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the close
            end = os.fstat(fd).st_size
            if end and os.pread(fd, 1, end - 1) != b"\n":
                line = b"\n" + line  # end a torn last line (a killed writer) in the same write
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(errno.ENOSPC, f"short write to {self.path} ({written} of {len(line)} bytes)")
                os.fsync(fd)
            except OSError:  # e.g. a full disk took part of the line: cut it off, never leave a torn row
                os.ftruncate(fd, end)
                raise
        finally:
            os.close(fd)

    def rows(self) -> list[dict[str, Any]]:
        return read_rows(self.path)


@dataclass
class ManifestContents:
    """The readable rows of a manifest and the numbers (1-based) of the lines that were not."""

    rows: list[dict[str, Any]]
    skipped_lines: list[int]


def read_manifest(path: str | os.PathLike) -> ManifestContents:
    """Every whole row of a manifest; a torn line (a process killed mid-write) is skipped and logged.

    Lines are decoded one by one, so a line cut inside a multi-byte character costs only that line.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    skipped: list[int] = []
    for number, _, row in manifest_lines(path):
        if row is None:
            skipped.append(number)
        else:
            rows.append(row)
    if skipped:
        log.warning("%s: skipped %d torn or unreadable line(s) (line %s)", path, len(skipped),
                    ", ".join(map(str, skipped)))
    return ManifestContents(rows, skipped)


def manifest_lines(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | None]]:
    """``(line number, line text, row)`` of every non-blank line; row is None for a torn or unreadable line."""
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                row = json.loads(text)
            except (UnicodeDecodeError, json.JSONDecodeError):
                text, row = "", None
            yield number, text, row if isinstance(row, dict) else None


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The readable rows of a manifest (see :func:`read_manifest` for the skipped-line count)."""
    return read_manifest(path).rows


def latest_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last row of every job (a resumed or requeued run appends newer ones), by job index."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["job_id"]] = row
    return sorted(latest.values(), key=lambda row: row["job_index"])


def build_row(
    *,
    run_id: str,
    job_id: str,
    job_index: int,
    status: str,
    metadata_mode: str,
    run_dir: Path,
    inputs: Mapping[str, Any],
    adapter_payloads: Mapping[str, Any],
    timings: Mapping[str, float],
    artifacts: Iterable[Any] = (),
    error: BaseException | None = None,
    output_key: str | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "job_id": job_id,
        "job_index": job_index,
        "timestamp": utc_timestamp(),
        "status": status,
        "metadata_mode": metadata_mode,
        "artifacts": [artifact.to_row(run_dir) for artifact in artifacts] if error is None else [],
        "inputs": dict(inputs),
        "adapter_payload_hashes": adapter_payload_hashes(adapter_payloads),
        "timings": {name: round(float(value), 4) for name, value in timings.items()},
        "versions": package_versions(),
    }
    if output_key is not None:
        row["output_key"] = output_key
    if error is not None:
        row["error"] = {"type": type(error).__name__, "message": str(error)}
    return row
