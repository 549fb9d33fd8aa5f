"""Shared fixtures: one built-in model cache per test session, and helpers to run vgen for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "docs" / "manifest.schema.json"


@pytest.fixture(scope="session", autouse=True)
def vgen_cache_dir(tmp_path_factory) -> Path:
    """All tests (and the vgen subprocesses they start) share one tiny-model cache."""
    cache = Path(os.environ.get("VGEN_TEST_CACHE_DIR") or tmp_path_factory.mktemp("vgen-cache"))
    os.environ["VGEN_CACHE_DIR"] = str(cache)
    return cache


def run_vgen(*args: str, cwd: Path, module: str = "vgen", timeout: float = 300, env: dict | None = None):
    """``python -m <module> args...`` as a subprocess (the real entry point), output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def read_manifest(run_dir: Path) -> list[dict]:
    path = run_dir / "manifests" / "run_history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def manifest_validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

