"""Image and audio model configs run for real through ``python -m vgen``; keys a task cannot use are refused.

Each end-to-end test saves a tiny random-init pipeline of the config's diffusers class (see
output_kind_builders) and points ``model.source`` at it, so the shipped YAML (pipeline class, call
arguments, output kind) is exercised without the real multi-GB weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import manifest_validator, read_manifest, run_vgen
from output_kind_builders import build_tiny_flux, build_tiny_ltx2, build_tiny_ltx2_i2v, build_tiny_qwen_image, build_tiny_stable_audio

COMMON = ("runtime.progress=false", "generation.steps=2", "queue.jobs=[{prompt: a red fox}]")


def _row(run_dir: Path) -> dict:
    """The run's one manifest row, checked against docs/manifest.schema.json."""
    [row] = read_manifest(run_dir)
    manifest_validator().validate(row)
    assert row["status"] == "success", row.get("error")
    return row


def _run(tmp_path: Path, model: str, build, *extra: str, run_dir: Path | None = None):
    checkpoint = tmp_path / "checkpoint"
    if not checkpoint.exists():
        build().save_pretrained(checkpoint)
    return run_vgen(f"model={model}", f"model.source={checkpoint}", *COMMON, *extra,
                    f"hydra.run.dir={run_dir or tmp_path / 'run'}", cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "build", "pipeline_class"),
                         [("flux1_dev", build_tiny_flux, "FluxPipeline"),
                          ("qwen_image", build_tiny_qwen_image, "QwenImagePipeline")])
def test_image_model_writes_an_image(tmp_path: Path, model, build, pipeline_class):
    from PIL import Image

    result = _run(tmp_path, model, build, "generation.height=32", "generation.width=48", "output.image_format=webp")
    assert result.returncode == 0, result.stderr
    row = _row(tmp_path / "run")
    assert row["inputs"]["model"]["pipeline_class"] == pipeline_class
    [artifact] = row["artifacts"]
    assert artifact["role"] == "image" and artifact["path"].startswith("images/") and artifact["path"].endswith(".webp")
    assert "num_frames" not in row["inputs"]["job"] or row["inputs"]["job"]["num_frames"] == 1
    assert "fps" not in row["inputs"]["job"]
    with Image.open(tmp_path / "run" / artifact["path"]) as image:
        assert image.size == (48, 32)
    assert not (tmp_path / "run" / "videos").exists()


@pytest.mark.slow
def test_stable_audio_writes_audio_of_the_asked_duration(tmp_path: Path):
    import soundfile

    result = _run(tmp_path, "stable_audio_open", build_tiny_stable_audio, "output.audio_format=flac",
                  "queue.jobs=[{prompt: a red fox, duration_s: 0.1}]")
    assert result.returncode == 0, result.stderr
    row = _row(tmp_path / "run")
    [artifact] = row["artifacts"]
    assert artifact["role"] == "audio" and artifact["path"].startswith("audio/") and artifact["path"].endswith(".flac")
    assert (artifact["sample_rate"], artifact["channels"]) == (8000, 2)
    info = soundfile.info(str(tmp_path / "run" / artifact["path"]))
    assert (info.samplerate, info.channels, info.frames) == (8000, 2, 800)
    assert row["inputs"]["job"]["duration_s"] == 0.1
    assert not {"height", "width", "num_frames", "fps"} & set(row["inputs"]["job"])


@pytest.mark.parametrize(
    ("model", "override", "key"),
    [
        ("flux1_dev", "queue.jobs=[{prompt: a, num_frames: 81}]", "queue.jobs[0].num_frames=81"),
        ("flux1_dev", "generation.num_frames=81", "generation.num_frames=81"),
        ("flux1_dev", "queue.jobs=[{prompt: a, duration_s: 2.0}]", "queue.jobs[0].duration_s"),
        ("stable_audio_open", "queue.jobs=[{prompt: a, width: 512}]", "queue.jobs[0].width=512"),
        ("stable_audio_open", "generation.height=512", "generation.height=512"),
        ("stable_audio_open", "queue.jobs=[{prompt: a, duration_s: -1.0}]", "queue.jobs[0].duration_s=-1.0"),
        ("tiny_wan", "queue.jobs=[{prompt: a, duration_s: 2.0}]", "queue.jobs[0].duration_s=2.0"),
        ("tiny_wan", "output.save_audio_separately=true", "output.save_audio_separately"),
    ],
)
def test_keys_a_task_cannot_use_are_refused_before_loading(tmp_path: Path, model, override, key):
    """Exit 2 naming the key; the checkpoint is never looked at (the source does not exist)."""
    result = run_vgen(f"model={model}", f"model.source={tmp_path / 'absent'}", override,
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert key in result.stderr
    assert not (tmp_path / "run" / "manifests").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("container", "codec"), [("mp4_h264", "aac"), ("webm_vp9", "opus"), ("mkv_ffv1", "flac")])
def test_ltx2_muxes_its_soundtrack(tmp_path: Path, container, codec):
    from vgen.media.probe import probe

    result = _run(tmp_path, "ltx2", build_tiny_ltx2, f"output={container}", "generation.height=32",
                  "generation.width=32", "generation.num_frames=9", "generation.fps=24",
                  "output.save_audio_separately=true")
    assert result.returncode == 0, result.stderr
    row = _row(tmp_path / "run")
    video, audio = row["artifacts"]
    assert (video["role"], audio["role"]) == ("video", "audio") and audio["path"].startswith("audio/")
    [recorded] = video["extra"]["audio"]
    assert recorded["codec_name"] == codec and recorded["channels"] == 2
    assert recorded["sample_rate"] == (48000 if codec == "opus" else 16000)  # opus only runs at 48 kHz
    streams = {stream["type"]: stream for stream in probe(tmp_path / "run" / video["path"])["streams"]}
    assert streams["video"]["frames"] == 9
    video_s = 9 / 24
    assert abs(recorded["duration_s"] - video_s) <= 1 / 24, (recorded, video_s)
    assert audio["sample_rate"] == 16000 and abs(audio["duration_s"] - video_s) < 1e-3


@pytest.mark.slow
def test_ltx2_i2v_takes_a_first_frame_and_keeps_its_soundtrack(tmp_path: Path):
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "first.png")
    result = _run(tmp_path, "ltx2_i2v", build_tiny_ltx2_i2v, "generation.height=32", "generation.width=32",
                  "generation.num_frames=9", "generation.fps=24", "queue.jobs=[{prompt: a red fox, image: first.png}]")
    assert result.returncode == 0, result.stderr
    row = _row(tmp_path / "run")
    [video] = row["artifacts"]
    assert row["inputs"]["files"]["image"]["sha256"] and video["extra"]["audio"][0]["codec_name"] == "aac"


@pytest.mark.slow
@pytest.mark.parametrize(("model", "build", "extra"), [
    ("stable_audio_open", build_tiny_stable_audio, ("output.audio_format=ogg", "queue.jobs=[{prompt: a red fox, duration_s: 0.1}]")),
    ("flux1_dev", build_tiny_flux, ("generation.height=32", "generation.width=32", "output.image_format=png")),
])
def test_inspect_and_reproduce_work_from_an_image_or_audio_file(tmp_path: Path, model, build, extra):
    """The file alone (its embedded metadata) is enough: inspect shows the job, reproduce reruns it and
    compares decoded samples/pixels (the files differ in their embedded run ids)."""
    result = _run(tmp_path, model, build, *extra)
    assert result.returncode == 0, result.stderr
    row = _row(tmp_path / "run")
    artifact = tmp_path / "run" / row["artifacts"][0]["path"]
    shown = run_vgen(str(artifact), cwd=tmp_path, module="vgen.inspect")
    assert shown.returncode == 0, shown.stderr
    assert row["job_id"] in shown.stdout and "a red fox" in shown.stdout
    again = run_vgen(str(artifact), "--out", str(tmp_path / "again"), cwd=tmp_path, module="vgen.reproduce")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "decoded content equal" in again.stdout or "identical file" in again.stdout


def test_schema_job_shapes_by_kind():
    """Video jobs (old manifests) keep validating; image and audio jobs may omit the shape keys, but a job
    with half of a shape (a width without a height, fps without frames) is refused."""
    import jsonschema

    validator = manifest_validator()
    job_schema = {**validator.schema["$defs"]["generation_inputs"]["properties"]["job"], "$defs": validator.schema["$defs"]}
    check = jsonschema.Draft202012Validator(job_schema).is_valid
    base = {"prompt": "a", "seed": 1, "steps": 2, "guidance_scale": 5.0}
    assert check({**base, "height": 64, "width": 64, "num_frames": 9, "fps": 16})  # a video job, as before
    assert check({**base, "height": 64, "width": 64, "num_frames": 1})  # an image job
    assert check({**base, "duration_s": 2.5})  # an audio job
    assert not check({**base, "width": 64})
    assert not check({**base, "fps": 16})
    assert not check({**base, "duration_s": 0})


@pytest.mark.parametrize(("model", "job", "planned"), [
    ("stable_audio_open", "{prompt: rain, duration_s: 3.0}", "duration=3.0s steps=200 cfg=7.0 -> <run_dir>/audio/"),
    ("stable_audio_open", "{prompt: rain}", "duration=10.0s steps=200 cfg=7.0 -> <run_dir>/audio/"),
    ("flux1_dev", "{prompt: rain}", " 1024x1024 steps=28 cfg=3.5 -> <run_dir>/images/"),
])
def test_dry_run_plans_images_and_audio(tmp_path: Path, model, job, planned):
    result = run_vgen(f"model={model}", "dry_run=true", f"queue.jobs=[{job}]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert planned in result.stdout


@pytest.mark.slow
def test_hunyuan_video_15_runs_through_its_adapter(tmp_path: Path):
    """The job's guidance_scale reaches the pipeline's guider (the call takes none): it changes the video."""
    from output_kind_builders import build_tiny_hunyuan_video15
    from vgen.media.probe import decode_video

    videos = []
    for guidance in (1.0, 6.0):
        run_dir = tmp_path / f"run{guidance}"
        result = _run(tmp_path, "hunyuan_video_15", build_tiny_hunyuan_video15, "generation.height=16",
                      "generation.width=16", "generation.num_frames=9", f"generation.guidance_scale={guidance}",
                      run_dir=run_dir)
        assert result.returncode == 0, result.stderr
        row = _row(run_dir)
        assert row["inputs"]["model"]["pipeline_class"] == "HunyuanVideo15Pipeline"
        videos.append(decode_video(run_dir / row["artifacts"][0]["path"]))
    assert videos[0].shape == (9, 16, 16, 3)
    assert (videos[0] != videos[1]).any()


def test_hunyuan_adapter_runs_step_hooks_and_restores_the_pipeline():
    """On the real tiny pipeline: one hook call per denoising step, guider and scheduler restored after."""
    import torch

    from output_kind_builders import build_tiny_hunyuan_video15
    from vgen.models import hunyuan_video15

    pipe = build_tiny_hunyuan_video15()
    guider, steps = pipe.guider, []
    call = dict(prompt="a red fox", height=16, width=16, num_frames=5, num_inference_steps=3, guidance_scale=4.0,
                output_type="np", generator=torch.Generator().manual_seed(0), callback_on_step_end=print)
    with hunyuan_video15.calling(pipe, call, lambda p, i, t, kw: steps.append((i, kw["latents"].shape))) as kwargs:
        assert "guidance_scale" not in kwargs and "callback_on_step_end" not in kwargs
        assert pipe.guider.guidance_scale == 4.0
        pipe(**kwargs)
    assert [i for i, _ in steps] == [0, 1, 2]
    assert pipe.guider is guider and "step" not in vars(pipe.scheduler)


@pytest.mark.slow
def test_hunyuan_video_15_i2v_takes_a_first_frame(tmp_path: Path):
    from PIL import Image

    from output_kind_builders import build_tiny_hunyuan_video15_i2v
    from vgen.media.probe import probe

    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "first.png")
    result = _run(tmp_path, "hunyuan_video_15_i2v", build_tiny_hunyuan_video15_i2v, "generation.height=16",
                  "generation.width=16", "generation.num_frames=9", "queue.jobs=[{prompt: a red fox, image: first.png}]")
    assert result.returncode == 0, result.stderr
    row = _row(tmp_path / "run")
    assert row["inputs"]["files"]["image"]["sha256"]
    stream = probe(tmp_path / "run" / row["artifacts"][0]["path"])["streams"][0]
    assert (stream["frames"], stream["height"], stream["width"]) == (9, 16, 16)
