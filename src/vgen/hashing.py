"""Canonical JSON and the hashes built on it (job ids, adapter payload hashes, config hashes)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

PLAIN_TYPES = {str, int, float, bool, type(None)}  # exact types canonicalize returns unchanged


def canonicalize(value: Any) -> Any:
    """Turn ``value`` into plain JSON types: mappings with str keys, lists, str/int/float/bool/None.

    Paths become strings, tuples/sets become lists (sets sorted), anything else becomes ``str()``.
    """
    # Exact types first and plain values inline: every job id hashes its settings (100k in a merge).
    if type(value) in PLAIN_TYPES:
        return value
    if type(value) is dict or isinstance(value, Mapping):
        return {str(k): v if type(v) in PLAIN_TYPES else canonicalize(v) for k, v in value.items()}
    if isinstance(value, (bool, int, float, str)):  # their subclasses
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted((canonicalize(v) for v in value), key=canonical_json)
    if isinstance(value, (list, tuple)):
        return [canonicalize(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars/arrays
        return canonicalize(value.tolist())
    return str(value)


# Built once: json.dumps with arguments builds an encoder per call (a job id is one call per job).
CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Sorted keys, compact separators, UTF-8 kept as is: the byte-stable serialisation we hash."""
    return CANONICAL_ENCODER.encode(canonicalize(value))


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def payload_hash(payload: Any) -> dict[str, Any]:
    """``{sha256, source_bytes}`` of the canonical JSON of ``payload`` (Wan2GP-compatible)."""
    encoded = canonical_json(payload).encode("utf-8")
    return {"sha256": sha256_hex(encoded), "source_bytes": len(encoded)}


def file_sha256(path: str | PurePath, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
