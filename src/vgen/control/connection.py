"""``<run dir>/control.json``: where the control server listens and its token (owner-only, mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CONTROL_FILE_NAME = "control.json"


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    token: str


def control_file(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CONTROL_FILE_NAME


def write_connection(run_dir: str | os.PathLike, connection: Connection) -> Path:
    """Create the file 0600 from the start (never readable by others) and publish it by rename."""
    final = control_file(run_dir)
    temp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(fd, 0o600)  # a pre-existing temp file keeps its old mode through O_CREAT
            json.dump({**asdict(connection), "pid": os.getpid()}, handle)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    os.replace(temp, final)
    return final


def read_connection(run_dir: str | os.PathLike) -> Connection:
    """FileNotFoundError when no server runs there (the file is removed when the run ends)."""
    data = json.loads(control_file(run_dir).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return Connection(host=data["host"], port=int(data["port"]), token=data["token"])


def remove_connection(run_dir: str | os.PathLike) -> None:
    control_file(run_dir).unlink(missing_ok=True)
