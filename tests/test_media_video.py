"""Every output preset encodes real video with the bundled ffmpeg and reads back right (PyAV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from vgen.config.schema import OutputConfig
from vgen.errors import VgenError
from vgen.media.context import MediaPersistenceContext
from vgen.media.metadata_io import read_metadata, read_source_images
from vgen.media.metadata_state import MetadataState
from vgen.media.probe import decode_video, probe

CONF_OUTPUT = Path(__file__).resolve().parents[1] / "conf" / "output"
CPU_PRESETS = ["mp4_h264", "mp4_h265", "mkv_h265", "webm_vp9", "webm_av1", "mov_prores", "mkv_ffv1"]
EXPECTED = {  # preset -> (probed codec, suffix, probed pix_fmt)
    "mp4_h264": ("h264", ".mp4", "yuv420p"),
    "mp4_h265": ("hevc", ".mp4", "yuv420p"),
    "mkv_h265": ("hevc", ".mkv", "yuv420p10le"),
    "webm_vp9": ("vp9", ".webm", "yuv420p"),
    "webm_av1": ("av1", ".webm", "yuv420p"),
    "mov_prores": ("prores", ".mov", "yuv422p10le"),
    "mkv_ffv1": ("ffv1", ".mkv", "yuv444p"),
}


def preset(name: str) -> OutputConfig:
    """conf/output/NAME.yaml merged onto the schema, as Hydra does (a bad key or type fails here)."""
    data = yaml.safe_load((CONF_OUTPUT / f"{name}.yaml").read_text())
    assert data.pop("defaults") == ["base_output", "_self_"]
    return OmegaConf.merge(OmegaConf.structured(OutputConfig), data)


def context(name: str, mode: str = "embedded", **overrides) -> MediaPersistenceContext:
    cfg = preset(name)
    for key, value in overrides.items():
        cfg[key] = value
    return MediaPersistenceContext.from_config(cfg, MetadataState(mode))


def clip(frames: int = 9, height: int = 48, width: int = 64) -> np.ndarray:
    """A moving gradient as float [0, 1] (what diffusers returns with output_type='np')."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    video = np.empty((frames, height, width, 3), np.float32)
    for index in range(frames):
        video[index, ..., 0] = x / width
        video[index, ..., 1] = y / height
        video[index, ..., 2] = (index / frames + x / (2 * width)) % 1.0
    return video


def test_every_preset_file_exists_and_names_itself():
    names = sorted(p.stem for p in CONF_OUTPUT.glob("*.yaml"))
    assert names == sorted(CPU_PRESETS + ["mp4_h264_nvenc"])
    for name in names:
        assert preset(name).name == name


@pytest.mark.parametrize("name", CPU_PRESETS)
@pytest.mark.parametrize("size", [(48, 64), (45, 63)], ids=["64x48", "odd-63x45"])
def test_preset_writes_decodable_video(tmp_path, name, size):
    codec, suffix, pix_fmt = EXPECTED[name]
    height, width = size
    video = clip(9, height, width)
    artifact = context(name).save_video(video, tmp_path / "clip.ignored", fps=12, metadata={"preset": name})

    assert artifact.path == tmp_path / f"clip{suffix}"
    assert artifact.path.is_file() and not list(tmp_path.glob(".*tmp*"))
    info = probe(artifact.path)
    (stream,) = info["streams"]
    assert stream["codec_name"] == codec
    assert stream["pix_fmt"] == pix_fmt
    assert stream["frames"] == 9
    assert stream["fps"] == pytest.approx(12.0)
    decoded = decode_video(artifact.path)
    assert decoded.shape[0] == 9
    # Odd sizes are padded at the right/bottom to what the chroma subsampling needs.
    assert (stream["width"], stream["height"]) == (artifact.width, artifact.height) == decoded.shape[2:0:-1]
    assert artifact.width >= width and artifact.height >= height and artifact.width - width <= 1
    error = np.abs(decoded[:, :height, :width].astype(np.float32) - np.round(video * 255)).mean()
    assert error < 6, f"{name}: mean abs error {error:.2f} vs the source frames"
    assert artifact.frames == 9 and artifact.fps == 12.0 and artifact.duration_s == pytest.approx(0.75)
    assert artifact.codec == codec and artifact.container == suffix[1:]
    assert artifact.bytes == artifact.path.stat().st_size and len(artifact.sha256) == 64
    assert read_metadata(artifact.path) == {"preset": name}


@pytest.mark.parametrize("name", ["mp4_h264", "mkv_ffv1", "webm_vp9", "mov_prores"])
def test_embedded_metadata_round_trips_large_and_special_characters(tmp_path, name):
    metadata = {"prompt": 'a "cat" = ; # \\ \n é 猫', "seed": 7, "nested": {"loras": [1, 2.5, None]},
                "long": "x" * 300_000}
    artifact = context(name).save_video(clip(3), tmp_path / "clip", metadata=metadata, fps=8)
    assert read_metadata(artifact.path) == metadata


def test_source_images_embedded_in_video(tmp_path):
    from PIL import Image

    start = Image.new("RGB", (20, 10), (200, 10, 30))
    path_image = tmp_path / "ref.png"
    Image.new("RGB", (8, 8), (0, 255, 0)).save(path_image)
    ctx = MediaPersistenceContext.from_config(preset("mkv_ffv1"), MetadataState("embedded", embed_source_images=True))
    artifact = ctx.save_video(clip(2), tmp_path / "clip", fps=8,
                              metadata={"prompt": "p", "source_images": {"start": start, "ref": path_image}})

    assert read_metadata(artifact.path)["source_images"] == {"start": "<in-memory image (20, 10)>",
                                                             "ref": str(path_image)}
    images = read_source_images(artifact.path)
    import io

    assert Image.open(io.BytesIO(images["start"])).getpixel((3, 3)) == (200, 10, 30)
    assert Image.open(io.BytesIO(images["ref"])).size == (8, 8)


def test_output_fps_wins_and_overrides_apply(tmp_path):
    ctx = context("mp4_h264", fps=24.0)
    artifact = ctx.save_video(clip(4), tmp_path / "a", fps=12, overrides={"crf": 40, "preset": "ultrafast"})
    assert probe(artifact.path)["streams"][0]["fps"] == pytest.approx(24.0)
    assert artifact.fps == 24.0
    tagged = context("mp4_h265").save_video(clip(2), tmp_path / "b", fps=8)
    import av

    with av.open(str(tagged.path)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"


def test_uint8_arrays_batches_and_one_shot_iterators_stream(tmp_path):
    frames = (np.round(clip(5) * 255)).astype(np.uint8)
    ctx = context("mkv_ffv1", mode="none")
    from_array = ctx.save_video(frames, tmp_path / "array", fps=10)
    from_iterator = ctx.save_video(iter(list(frames)), tmp_path / "iter", fps=10)
    from_float = ctx.save_video(clip(5), tmp_path / "float", fps=10)
    from_batch = ctx.save_video(clip(5)[None], tmp_path / "batch", fps=10)  # diffusers (1, F, H, W, 3)
    assert from_array.frames == from_iterator.frames == from_batch.frames == 5
    np.testing.assert_array_equal(decode_video(from_array.path), decode_video(from_iterator.path))
    np.testing.assert_array_equal(decode_video(from_float.path), decode_video(from_batch.path))


def test_every_preset_composes_with_hydra():
    from hydra import compose, initialize_config_dir

    from vgen.config.schema import register_schemas
    from vgen.media.validation import validate_output_config

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_OUTPUT.parent), version_base="1.3"):
        for name in CPU_PRESETS + ["mp4_h264_nvenc"]:
            cfg = compose(config_name="config", overrides=[f"output={name}"])
            assert cfg.output.name == name
            validate_output_config(cfg.output)


def test_frames_of_different_sizes_are_rejected(tmp_path):
    frames = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)]
    with pytest.raises(VgenError, match="frame 1 is 10x8, expected 8x8"):
        context("mp4_h264").save_video(frames, tmp_path / "bad", fps=8)
    assert list(tmp_path.iterdir()) == []


def nvidia_device_present() -> bool:
    return Path("/dev/nvidia0").exists()


@pytest.mark.skipif(not nvidia_device_present(), reason="no NVIDIA device (/dev/nvidia0) on this machine")
def test_nvenc_preset_encodes_on_gpu(tmp_path):
    artifact = context("mp4_h264_nvenc").save_video(clip(9), tmp_path / "gpu", fps=12)
    assert probe(artifact.path)["streams"][0]["codec_name"] == "h264"


@pytest.mark.skipif(nvidia_device_present(), reason="an NVIDIA device is present: NVENC would succeed")
def test_nvenc_without_device_fails_clearly(tmp_path):
    ctx = context("mp4_h264_nvenc")  # the encoder exists in this ffmpeg build, so validation passes
    with pytest.raises(VgenError, match=r"h264_nvenc: NVENC encoding failed; no usable NVIDIA GPU"):
        ctx.save_video(clip(3), tmp_path / "gpu", fps=12)
    assert list(tmp_path.iterdir()) == []
