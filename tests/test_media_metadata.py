"""Metadata modes (embedded / json sidecar / none) for images and videos, and ``python -m vgen.inspect``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vgen.errors import ConfigError
from vgen.media.context import MediaPersistenceContext
from vgen.media.metadata_io import read_metadata, read_source_images
from vgen.media.metadata_state import MetadataState

SRC = Path(__file__).resolve().parents[1] / "src"
METADATA = {"prompt": 'a "fox" é 猫\nnext line', "seed": 11, "steps": 4, "loras": [{"name": "x", "weight": 0.8}]}


def context(mode="embedded", embed_source_images=False, **fields):
    cfg = {"name": "t", "container": "mp4", "codec": "libx264", "crf": 23, "preset": "ultrafast", **fields}
    return MediaPersistenceContext.from_config(cfg, MetadataState(mode, embed_source_images))


def image(height=24, width=40, channels=3):
    y, x = np.mgrid[0:height, 0:width]
    planes = [x * 255 // width, y * 255 // height, (x + y) % 256, np.full_like(x, 128)][:channels]
    return np.stack(planes, axis=-1).astype(np.uint8)


@pytest.mark.parametrize(("fmt", "suffix"), [("png", ".png"), ("jpeg", ".jpg"), ("webp", ".webp")])
def test_image_formats_embed_metadata(tmp_path, fmt, suffix):
    artifact = context(image_format=fmt, image_quality=90).save_image(image(), tmp_path / "frame", metadata=METADATA)
    assert artifact.path == tmp_path / f"frame{suffix}"
    assert (artifact.width, artifact.height, artifact.kind) == (40, 24, "image")
    with Image.open(artifact.path) as reopened:
        assert reopened.size == (40, 24)
        pixels = np.asarray(reopened.convert("RGB"), dtype=np.float32)
    assert np.abs(pixels - image()).mean() < (0.5 if fmt == "png" else 6)
    assert read_metadata(artifact.path) == METADATA
    assert artifact.metadata_sidecar is None and not (tmp_path / f"frame{suffix}.json").exists()


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_image_source_images_and_large_metadata(tmp_path, fmt):
    """Beyond one JPEG COM segment (64 KB) and Pillow's PNG text limit (1 MB)."""
    metadata = {**METADATA, "long": "y" * 1_500_000,
                "source_images": {"first": Image.fromarray(image(10, 12)), "mask": image(6, 6, 4)}}
    ctx = context(embed_source_images=True, image_format=fmt)
    artifact = ctx.save_image(Image.fromarray(image(channels=4)), tmp_path / "img", metadata=metadata)
    stored = read_metadata(artifact.path)
    assert stored["long"] == metadata["long"]
    assert stored["source_images"] == {"first": "<in-memory image (12, 10)>", "mask": "<in-memory image (6, 6, 4)>"}
    images = read_source_images(artifact.path)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(images["first"]))), image(10, 12))
    assert Image.open(io.BytesIO(images["mask"])).mode == "RGBA"


def test_json_mode_writes_sidecar_and_embeds_nothing(tmp_path):
    ctx = context(mode="json")
    video = ctx.save_video(np.zeros((3, 16, 16, 3), np.uint8), tmp_path / "clip", fps=8, metadata=METADATA)
    picture = ctx.save_image(image(), tmp_path / "still", metadata=METADATA)
    for artifact, name in [(video, "clip.mp4.json"), (picture, "still.png.json")]:
        assert artifact.metadata_sidecar == tmp_path / name
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert json.loads(text) == METADATA and text.startswith('{\n  "')  # indent 2
        assert read_metadata(artifact.path) == METADATA  # found through the sidecar
    import av

    with av.open(str(video.path)) as container:
        assert "comment" not in {k.lower() for k in container.metadata}
    assert "vgen" not in Image.open(picture.path).info
    assert video.to_row(tmp_path)["metadata_sidecar"] == "clip.mp4.json"


def test_json_mode_keeps_source_images_in_sidecar(tmp_path):
    ctx = context(mode="json", embed_source_images=True)
    artifact = ctx.save_image(image(), tmp_path / "still", metadata={"source_images": {"a": image(4, 4)}})
    assert read_metadata(artifact.path) == {"source_images": {"a": "<in-memory image (4, 4, 3)>"}}
    assert Image.open(io.BytesIO(read_source_images(artifact.path)["a"])).size == (4, 4)


def test_none_mode_writes_no_metadata(tmp_path):
    ctx = context(mode="none")
    video = ctx.save_video(np.zeros((3, 16, 16, 3), np.uint8), tmp_path / "clip", fps=8, metadata=METADATA)
    assert video.metadata_sidecar is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    with pytest.raises(ConfigError, match=r"clip.mp4: no vgen metadata"):
        read_metadata(video.path)


def run_inspect(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "vgen.inspect", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=60)


def test_inspect_prints_metadata_and_extracts_images(tmp_path):
    metadata = {**METADATA, "source_images": {"start": Image.fromarray(image(8, 8))}}
    artifact = context(embed_source_images=True, container="mkv", codec="ffv1", crf=None, preset=None).save_video(
        np.zeros((2, 16, 16, 3), np.uint8), tmp_path / "clip", fps=8, metadata=metadata)
    result = run_inspect(artifact.path, "--images", tmp_path / "imgs")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["prompt"] == METADATA["prompt"]
    assert result.stdout.startswith('{\n  "')
    assert np.array_equal(np.asarray(Image.open(tmp_path / "imgs" / "start.png")), image(8, 8))


def test_inspect_reads_sidecar_given_media_or_json(tmp_path):
    artifact = context(mode="json").save_image(image(), tmp_path / "still", metadata=METADATA)
    for target in (artifact.path, artifact.metadata_sidecar):
        result = run_inspect(target)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == METADATA


def test_inspect_exit_2_for_missing_file_or_no_metadata(tmp_path):
    missing = run_inspect(tmp_path / "nope.mp4")
    assert missing.returncode == 2 and "nope.mp4: no such file" in missing.stderr
    plain = tmp_path / "plain.png"
    Image.fromarray(image()).save(plain)
    bare = run_inspect(plain)
    assert bare.returncode == 2 and "plain.png: no vgen metadata" in bare.stderr
    assert "Traceback" not in bare.stderr
