"""Bad input stops ``python -m vgen`` before any model loads: exit 2, one line naming the field, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_vgen


def assert_refused(result, run_dir: Path, *needles: str) -> str:
    """Exit 2 with one stderr line holding every needle, no traceback, and no manifest, media or resolved config."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert all(needle in lines[0] for needle in needles), lines[0]
    written = sorted(p.name for p in run_dir.rglob("*")) if run_dir.exists() else []
    assert not {"manifests", "videos", "images", "resolved_config.yaml"} & set(written), written
    return lines[0]


@pytest.mark.parametrize(
    "override,field",
    [("generation.steps=0", "generation.steps=0"), ("generation.num_frames=0", "generation.num_frames=0"),
     ("generation.height=-64", "generation.height=-64"), ("generation.width=65", "generation.width=65"),
     ("generation.fps=0", "generation.fps=0"), ("output.preset=bogus", "output.preset='bogus'"),
     ("generation.guidance_scale=nan", "generation.guidance_scale=nan"),
     ("queue.jobs=[{prompt: a},{prompt: b, seed: 4294967296}]", "queue.jobs[1].seed=4294967296"),
     ("queue.jobs=[{prompt: a, num_frames: 4097}]", "queue.jobs[0].num_frames=4097")],
)
def test_impossible_settings_are_refused_before_the_model_loads(tmp_path, override, field):
    run_dir = tmp_path / "run"
    result = run_vgen("runtime.progress=false", override, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert_refused(result, run_dir, field)


def test_a_prompts_file_replaces_the_demo_jobs(tmp_path):
    (tmp_path / "prompts.txt").write_text("# my shots\nmy first shot\nmy second shot\n")
    result = run_vgen("dry_run=true", "queue.prompts_file=prompts.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jobs: 2\n" in result.stdout
    prompts = [line.split("prompt: ", 1)[1] for line in result.stdout.splitlines() if "prompt: " in line]
    assert prompts == ["my first shot", "my second shot"]


@pytest.mark.parametrize("name,content,needle", [
    ("empty.txt", b"", "empty.txt holds no jobs"),
    ("comments.txt", b"# nothing here yet\n\n# still nothing\n", "comments.txt holds no jobs"),
    ("latin1.txt", "a fox\ncaf\xe9 scene\n".encode("latin-1"), "latin1.txt:2: not UTF-8 text"),
    ("binary.txt", bytes(range(256)), "binary.txt:1: NUL byte"),
])
def test_unusable_prompts_files_are_refused(tmp_path, name, content, needle):
    (tmp_path / name).write_bytes(content)
    run_dir = tmp_path / "run"
    result = run_vgen("runtime.progress=false", f"queue.prompts_file={name}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert_refused(result, run_dir, "queue.prompts_file", needle)
