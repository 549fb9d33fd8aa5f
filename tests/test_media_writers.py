"""Atomic writes with retries, mask archives, and manifest rows."""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from disk_helpers import fill_disk, mounted_tmpfs
from vgen.errors import DiskFullError, MediaWriteError
from vgen.media import writers
from vgen.media.artifact import Artifact
from vgen.media.context import MediaPersistenceContext
from vgen.media.metadata_io import read_metadata
from vgen.media.metadata_state import MetadataState
from vgen.media.probe import probe


def context(mode="embedded", **fields):
    cfg = {"name": "t", "container": "mp4", "codec": "libx264", "crf": 23, "preset": "ultrafast",
           "retries": 3, "retry_delay_s": 0.01, **fields}
    return MediaPersistenceContext.from_config(cfg, MetadataState(mode))


def flaky_replace(monkeypatch, failures: int):
    """Make the first ``failures`` publishing renames fail with OSError (the one allowed mock)."""
    calls = []
    real = writers._replace

    def replace(source, target):
        calls.append(source)
        if len(calls) <= failures:
            raise OSError(5, "Input/output error (injected)")
        real(source, target)

    monkeypatch.setattr(writers, "_replace", replace)
    return calls


def test_write_that_fails_twice_then_succeeds_logs_two_warnings(tmp_path, monkeypatch, caplog):
    calls = flaky_replace(monkeypatch, failures=2)
    with caplog.at_level(logging.WARNING, logger="vgen.media"):
        artifact = context().save_video(np.zeros((4, 16, 16, 3), np.uint8), tmp_path / "clip", fps=8,
                                        metadata={"a": 1})
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(str(tmp_path / "clip.mp4") in r.getMessage() for r in warnings)
    assert "attempt 1/4" in warnings[0].getMessage() and "attempt 2/4" in warnings[1].getMessage()
    assert len(calls) == 3 and len(set(calls)) == 3  # a fresh temp name per attempt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    assert probe(artifact.path)["streams"][0]["frames"] == 4
    assert read_metadata(artifact.path) == {"a": 1}


@pytest.mark.parametrize("kind", ["video", "image", "audio", "sidecar"])
def test_write_that_always_fails_raises_and_leaves_nothing(tmp_path, monkeypatch, caplog, kind):
    flaky_replace(monkeypatch, failures=10**6)
    ctx = context(mode="json" if kind == "sidecar" else "embedded", retries=2)
    saves = {
        "video": lambda: ctx.save_video(np.zeros((2, 16, 16, 3), np.uint8), tmp_path / "out", fps=8),
        "image": lambda: ctx.save_image(np.zeros((8, 8, 3), np.uint8), tmp_path / "out"),
        "audio": lambda: ctx.save_audio(np.zeros(100, np.float32), tmp_path / "out", sample_rate=8000),
        "sidecar": lambda: writers.write_metadata_bundle(tmp_path / "out.json", {"a": 1},
                                                         policy=writers.RetryPolicy(2, 0.0)),
    }
    with caplog.at_level(logging.WARNING, logger="vgen.media"):
        with pytest.raises(MediaWriteError, match=r"could not write .*out\.\w+ after 3 attempt\(s\)"):
            saves[kind]()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3
    assert list(tmp_path.iterdir()) == []  # no final file, no temp file, no staged metadata


def test_backoff_is_exponential(tmp_path, monkeypatch):
    sleeps = []
    monkeypatch.setattr(writers.time, "sleep", sleeps.append)

    def produce(temp):
        raise OSError("disk gone")

    with pytest.raises(MediaWriteError):
        writers.atomic_write(tmp_path / "x.bin", produce,
                             policy=writers.RetryPolicy(retries=3, delay_s=0.5))
    assert sleeps == [0.5, 1.0, 2.0]


def test_temp_name_is_hidden_sibling_with_suffix(tmp_path):
    temp = writers.temp_path_for(tmp_path / "clip.mp4")
    assert temp.parent == tmp_path and temp.name.startswith(".clip.tmp-") and temp.suffix == ".mp4"


def test_one_shot_iterator_cannot_be_re_encoded_after_failed_attempt(tmp_path, monkeypatch):
    flaky_replace(monkeypatch, failures=1)
    frames = iter([np.zeros((8, 8, 3), np.uint8)] * 3)
    with pytest.raises(MediaWriteError, match="one-shot iterator"):
        context().save_video(frames, tmp_path / "clip", fps=8)
    assert list(tmp_path.iterdir()) == []


def rgba_frames(count=3, size=12):
    frames = np.zeros((count, size, size, 4), np.uint8)
    for index in range(count):
        frames[index, index:, :, 0] = 255
        frames[index, ..., 3] = np.where(np.arange(size)[None, :] > index, 255, 0)
    return frames


def test_mask_archive_is_gated_by_save_masks_or_force(tmp_path):
    assert context(save_masks=False).save_mask_archive(rgba_frames(), tmp_path / "masks") is None
    assert list(tmp_path.iterdir()) == []
    forced = context(save_masks=False).save_mask_archive(rgba_frames(), tmp_path / "forced", force=True)
    assert forced is not None and forced.path.name == "forced.zip"
    enabled = context(save_masks=True).save_mask_archive(rgba_frames(), tmp_path / "masks", metadata={"m": 1})
    assert (enabled.kind, enabled.container, enabled.frames, enabled.width) == ("archive", "zip", 3, 12)
    with zipfile.ZipFile(enabled.path) as archive:
        assert archive.namelist() == ["frame_00000.png", "frame_00001.png", "frame_00002.png", "metadata.json"]
        for index, frame in enumerate(rgba_frames()):
            decoded = Image.open(io.BytesIO(archive.read(f"frame_{index:05d}.png")))
            assert decoded.mode == "RGBA"
            np.testing.assert_array_equal(np.asarray(decoded), frame)
    assert read_metadata(enabled.path) == {"m": 1}


def test_mask_archive_needs_rgba(tmp_path):
    with pytest.raises(MediaWriteError, match="HxWx4"):
        context(save_masks=True).save_mask_archive(np.zeros((2, 4, 4, 3), np.uint8), tmp_path / "m")


def test_artifact_row_is_json_ready_and_relative(tmp_path):
    artifact = context(mode="json").save_image(np.zeros((8, 10, 3), np.uint8), tmp_path / "sub" / "img",
                                               metadata={"a": 1})
    row = artifact.to_row(tmp_path)
    json.dumps(row)
    assert row["path"] == "sub/img.png" and row["metadata_sidecar"] == "sub/img.png.json"
    assert (row["role"], row["container"], row["width"], row["height"]) == ("image", "png", 10, 8)
    assert row["fps"] is None and row["duration_s"] is None  # always present
    assert row["sha256"] == artifact.sha256 and row["bytes"] == (tmp_path / "sub" / "img.png").stat().st_size
    outside = Artifact(role="video", path=tmp_path.parent / "x.mp4", kind="video", container="mp4", codec="h264")
    assert outside.to_row(tmp_path)["path"] == str(tmp_path.parent / "x.mp4")


# -- a real full disk (a small tmpfs) ---------------------------------------------------------------
@pytest.fixture
def full_disk(tmp_path):
    """A directory on a 256 KiB tmpfs with no byte left."""
    with mounted_tmpfs(tmp_path / "disk", "256k") as disk:
        (disk / "out").mkdir()
        fill_disk(disk)
        yield disk / "out"


def test_a_full_disk_is_not_retried_and_leaves_no_temp_file(full_disk, caplog):
    """Nothing fits, not even the ffmetadata file staged before the encoder starts (it used to be left
    behind, one per attempt)."""
    saves = {
        "video with metadata": lambda: context().save_video(np.zeros((2, 16, 16, 3), np.uint8), full_disk / "a",
                                                            fps=8, metadata={"prompt": "x" * 10000}),
        "video with staged audio": lambda: context(container="mkv", codec="ffv1", crf=None, preset=None).save_video(
            np.zeros((2, 16, 16, 3), np.uint8), full_disk / "b", fps=8, audio=(np.zeros(80000, np.float32), 8000)),
        "image": lambda: context().save_image(np.zeros((64, 64, 3), np.uint8), full_disk / "c", metadata={"a": 1}),
        "sidecar": lambda: writers.write_metadata_bundle(full_disk / "d.json", {"a": "x" * 10000}),
    }
    for name, save in saves.items():
        with caplog.at_level(logging.WARNING, logger="vgen.media"):
            with pytest.raises(MediaWriteError) as raised:
                save()
        assert isinstance(raised.value, DiskFullError) and "No space left on device" in str(raised.value), name
        assert caplog.records == [], name  # no retries, no warnings: the caller reports it once
        assert list(full_disk.iterdir()) == [], name
        caplog.clear()


def test_a_disk_that_fills_during_the_encode_is_a_disk_full_error(tmp_path):
    """The staged metadata fits, the video does not: ffmpeg's "No space left on device" is recognised."""
    with mounted_tmpfs(tmp_path / "disk", "256k") as disk:
        fill_disk(disk)
        filler = disk / "filler"
        os.truncate(filler, filler.stat().st_size - 8192)  # room for the metadata file, not for the video
        frames = np.random.default_rng(0).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
        with pytest.raises(DiskFullError, match=r"could not write .*clip\.mkv: No space left on device"):
            context(container="mkv", codec="ffv1", crf=None, preset=None).save_video(
                frames, disk / "clip", fps=8, metadata={"a": 1})
        assert sorted(path.name for path in disk.iterdir()) == ["filler"]
