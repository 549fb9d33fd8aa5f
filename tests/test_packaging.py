"""Packaging: the wheel carries the config dir; CI runs the README's own commands."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO_ROOT


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    return [line for line in text.splitlines() if line.startswith("python -m venv")]


def test_ci_runs_the_readme_test_command():
    commands = readme_commands()
    assert len(commands) == 2 and commands[0].endswith("python -m vgen") and commands[1].endswith("python -m pytest")
    assert commands[1] in (REPO_ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_non_editable_wheel_finds_its_config(tmp_path):
    """Build the wheel, unpack it outside the repo, and run vgen from it (a dry run)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO_ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(tmp_path.glob("vgen-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "vgen/conf/config.yaml" in names and "vgen/conf/model/tiny_wan.yaml" in names
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", "import vgen.config.locate as l; print(l.config_dir()); import runpy, sys; "
         "sys.argv=['vgen','dry_run=true']; runpy.run_module('vgen', run_name='__main__')"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert result.returncode == 0, result.stderr
    assert str(site / "vgen" / "conf") in result.stdout and "jobs: 3" in result.stdout
