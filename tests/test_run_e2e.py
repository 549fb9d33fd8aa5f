"""End-to-end: ``python -m vgen`` as a subprocess on the built-in tiny model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import manifest_validator, read_manifest, run_vgen
from lora_fixtures import make_unfitting_lora_file
from vgen.hashing import file_sha256
from vgen.media.metadata_io import read_metadata
from vgen.media.probe import decode_video, probe

pytestmark = pytest.mark.slow
FAST = ["runtime.progress=false", "generation.steps=2"]


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory) -> tuple[Path, object]:
    """Three jobs, the middle one failing at run time (its LoRA does not fit the model)."""
    work = tmp_path_factory.mktemp("e2e")
    make_unfitting_lora_file(work / "loras" / "other_model.safetensors")
    jobs = ("queue.jobs=[{prompt: first job},{prompt: unfitting lora, loras: [other_model]},"
            "{prompt: third job, num_frames: 5, fps: 8}]")
    result = run_vgen(*FAST, jobs, f"lora.dirs=[{work / 'loras'}]", f"hydra.run.dir={work / 'run'}", cwd=work)
    return work / "run", result


def test_failed_job_gives_error_row_and_nonzero_exit(mixed_run):
    run_dir, result = mixed_run
    assert result.returncode == 1, result.stderr
    rows = read_manifest(run_dir)
    assert [r["status"] for r in rows] == ["success", "error", "success"]
    assert [r["job_index"] for r in rows] == [0, 1, 2]
    assert rows[1]["artifacts"] == []
    assert "other_model.safetensors" in rows[1]["error"]["message"]


def test_rows_validate_and_artifacts_match_files(mixed_run):
    run_dir, _ = mixed_run
    validator = manifest_validator()
    for row in read_manifest(run_dir):
        errors = sorted(validator.iter_errors(row), key=str)
        assert not errors, [e.message for e in errors]
        for artifact in row["artifacts"]:
            path = run_dir / artifact["path"]
            assert path.stat().st_size == artifact["bytes"]
            assert file_sha256(path) == artifact["sha256"]


def test_videos_decode_with_expected_shape(mixed_run):
    run_dir, _ = mixed_run
    rows = [r for r in read_manifest(run_dir) if r["status"] == "success"]
    expected = [(9, 64, 64, 16.0), (5, 64, 64, 8.0)]
    for row, (frames, height, width, fps) in zip(rows, expected):
        path = run_dir / row["artifacts"][0]["path"]
        stream = probe(path)["streams"][0]
        assert (stream["codec_name"], stream["frames"], stream["height"], stream["width"]) == ("h264", frames, height, width)
        assert stream["fps"] == pytest.approx(fps)
        assert decode_video(path).shape == (frames, height, width, 3)


def test_run_dir_layout(mixed_run):
    run_dir, _ = mixed_run
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / ".hydra" / "overrides.yaml").is_file()
    resolved = (run_dir / "resolved_config.yaml").read_text()
    assert "${" not in resolved and str(run_dir) in resolved
    assert "Queue finished" in (run_dir / "vgen.log").read_text()
    leftovers = [p for p in run_dir.rglob("*") if ".tmp" in p.name]
    assert not leftovers


def test_embedded_metadata_round_trips(mixed_run):
    run_dir, _ = mixed_run
    row = read_manifest(run_dir)[0]
    path = run_dir / row["artifacts"][0]["path"]
    stored = read_metadata(path)
    assert stored["job_id"] == row["job_id"]
    assert stored["inputs"] == row["inputs"]
    printed = run_vgen(str(path), module="vgen.inspect", cwd=run_dir)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["inputs"]["prompt"] == "first job"


def test_json_sidecar_mode_and_random_seed(tmp_path):
    result = run_vgen(*FAST, "metadata=json", "generation.seed=-1", "queue.jobs=[{prompt: sidecar job}]",
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = read_manifest(tmp_path / "run")[0]
    artifact = row["artifacts"][0]
    sidecar = tmp_path / "run" / artifact["metadata_sidecar"]
    assert sidecar.name == Path(artifact["path"]).name + ".json"
    stored = json.loads(sidecar.read_text())
    assert row["inputs"]["job"]["requested_seed"] == -1
    drawn = row["inputs"]["job"]["seed"]
    assert drawn >= 0 and stored["inputs"]["job"]["seed"] == drawn
    assert "vgen" not in json.dumps(probe(tmp_path / "run" / artifact["path"])["tags"])


def test_dry_run_imports_no_torch_and_writes_nothing(tmp_path):
    code = (
        "import sys, runpy\n"
        "sys.argv = ['vgen', 'dry_run=true']\n"
        "try:\n    runpy.run_module('vgen', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "vgen dry run" in result.stdout and "0000_" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    result = run_vgen("model=wan21_t2v_1_3b", "model.source=/nonexistent/wan", f"hydra.run.dir={tmp_path / 'run'}",
                      cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert "/nonexistent/wan" in result.stderr and "Traceback" not in result.stderr
    hub = run_vgen("model=wan21_t2v_1_3b", f"hydra.run.dir={tmp_path / 'run2'}", cwd=tmp_path,
                   env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert hub.returncode == 2
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in hub.stderr and "huggingface-cli download" in hub.stderr
    assert not (tmp_path / "run2" / "manifests").exists()


def test_multirun_loads_the_pipeline_once(tmp_path):
    result = run_vgen("-m", *FAST, "generation.guidance_scale=1.0,3.0", "queue.jobs=[{prompt: sweep}]",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = "".join(p.read_text() for p in (tmp_path / "sweep").glob("*/vgen.log"))
    assert log.count("Loaded WanPipeline") == 1
    for point in ("0", "1"):
        assert read_manifest(tmp_path / "sweep" / point)[0]["status"] == "success"


def test_single_frame_job_is_saved_as_an_image(tmp_path):
    result = run_vgen(*FAST, "output.image_format=webp", "queue.jobs=[{prompt: a still, num_frames: 1}]",
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (artifact,) = read_manifest(tmp_path / "run")[0]["artifacts"]
    assert (artifact["role"], artifact["container"], artifact["width"], artifact["height"]) == ("image", "webp", 64, 64)
    assert artifact["path"].startswith("images/") and artifact["path"].endswith(".webp")
    assert read_metadata(tmp_path / "run" / artifact["path"])["inputs"]["job"]["num_frames"] == 1


@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"]])
def test_help_and_cfg_import_no_torch(args, tmp_path):
    import subprocess

    code = (
        f"import sys, runpy\nsys.argv = ['vgen', *{args!r}]\n"
        "try:\n    runpy.run_module('vgen', run_name='__main__')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('HEAVY', [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout and ("model" in result.stdout)
    assert list(tmp_path.iterdir()) == []
