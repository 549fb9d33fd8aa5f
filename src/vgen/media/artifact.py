"""What one save_* call wrote; the manifest row is built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vgen.hashing import canonicalize

# Always present in a row (None when unknown), so manifest rows have a stable shape.
ROW_FIELDS = (
    "role", "path", "container", "codec", "width", "height", "frames", "fps", "duration_s", "bytes", "sha256",
    "metadata_sidecar",
)
OPTIONAL_FIELDS = ("kind", "sample_rate", "channels", "language")


@dataclass
class Artifact:
    role: str  # "video", "image", "audio", "mask_archive", "mask_foreground", ...
    path: Path  # absolute final path
    kind: str  # "video" | "image" | "audio" | "archive"
    container: str
    codec: str | None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    language: str | None = None
    bytes: int = 0
    sha256: str = ""
    metadata_sidecar: Path | None = None
    extra: dict = field(default_factory=dict)

    def to_row(self, run_dir: Path) -> dict:
        """JSON-ready dict; paths relative to ``run_dir`` when inside it (absolute otherwise)."""

        base = Path(run_dir).resolve()

        def rel(path: Path | None) -> str | None:
            if path is None:
                return None
            path = Path(path).resolve()
            return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)

        row = {name: getattr(self, name) for name in ROW_FIELDS}
        row["path"] = rel(self.path)
        row["metadata_sidecar"] = rel(self.metadata_sidecar)
        row.update({name: getattr(self, name) for name in OPTIONAL_FIELDS if getattr(self, name) is not None})
        if self.extra:
            row["extra"] = canonicalize(self.extra)
        return row
