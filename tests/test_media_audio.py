"""Audio files (wav/flac/ogg) and audio muxed into videos, checked by decoding them back."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from vgen.media.context import MediaPersistenceContext
from vgen.media.metadata_io import read_metadata
from vgen.media.metadata_state import MetadataState
from vgen.media.probe import probe
from vgen.media.writers import mux_audio

METADATA = {"prompt": "rain on a tin roof", "seed": 5, "big": "z" * 20_000}  # > the 4 KB a WAV INFO comment holds


def context(mode="embedded", **fields):
    cfg = {"name": "t", "container": "mp4", "codec": "libx264", "crf": 23, "preset": "ultrafast", **fields}
    return MediaPersistenceContext.from_config(cfg, MetadataState(mode))


def tones(rate=22050, seconds=0.5, channels=3):
    t = np.arange(int(rate * seconds), dtype=np.float32) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * 220 * (c + 1) * t) for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize(("fmt", "subtype", "tolerance"), [("wav", "FLOAT", 0.0), ("wav", None, 1e-4),
                                                            ("flac", None, 1e-4), ("ogg", None, 0.05)])
def test_multichannel_float32_round_trips(tmp_path, fmt, subtype, tolerance):
    samples = tones()
    artifact = context(audio_format=fmt, audio_subtype=subtype).save_audio(
        samples, tmp_path / "sound", sample_rate=22050, metadata=METADATA, language="en")
    assert artifact.path == tmp_path / f"sound.{fmt}"
    read, rate = soundfile.read(artifact.path, dtype="float32")
    assert rate == artifact.sample_rate == 22050
    assert read.shape == samples.shape and artifact.channels == 3
    assert np.sqrt(np.mean((read - samples) ** 2)) <= tolerance
    assert artifact.duration_s == pytest.approx(0.5) and artifact.language == "en"
    assert read_metadata(artifact.path) == METADATA


def test_mono_and_resampling_to_output_rate(tmp_path):
    artifact = context(audio_format="flac", audio_sample_rate=16000).save_audio(
        tones(channels=1)[:, 0], tmp_path / "mono", sample_rate=22050)
    read, rate = soundfile.read(artifact.path, dtype="float32")
    assert rate == artifact.sample_rate == 16000 and read.ndim == 1
    assert abs(len(read) - 8000) <= 2


VIDEO_PRESETS = [  # (fields, expected audio codec, expected sample rate)
    ({"container": "mp4", "codec": "libx264"}, "aac", 22050),
    ({"container": "mov", "codec": "libx264"}, "aac", 22050),
    ({"container": "webm", "codec": "libvpx-vp9", "crf": 40, "preset": "realtime"}, "opus", 48000),
    ({"container": "mkv", "codec": "ffv1", "crf": None, "preset": None}, "flac", 22050),
]


@pytest.mark.parametrize(("fields", "codec", "rate"), VIDEO_PRESETS, ids=lambda v: v if isinstance(v, str) else None)
def test_save_video_muxes_audio_per_container(tmp_path, fields, codec, rate):
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    artifact = context(**fields).save_video(frames, tmp_path / "clip", fps=16, audio=(tones(channels=2), 22050),
                                            metadata={"p": 1}, audio_language="fra")
    streams = {s["type"]: s for s in probe(artifact.path)["streams"]}
    assert streams["audio"]["language"] == "fra"
    assert streams["audio"]["codec_name"] == codec
    assert streams["audio"]["sample_rate"] == rate and streams["audio"]["channels"] == 2
    assert streams["video"]["frames"] == 8
    assert read_metadata(artifact.path) == {"p": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [artifact.path.name]  # staged WAV removed


def test_mux_audio_into_existing_video_from_file(tmp_path):
    ctx = context()
    video = ctx.save_video(np.zeros((8, 32, 32, 3), np.uint8), tmp_path / "clip", fps=16, metadata={"p": 2})
    track = ctx.save_audio(tones(channels=1), tmp_path / "track", sample_rate=22050)
    before = probe(video.path)["streams"][0]
    mux_audio(video.path, track.path, language="eng")
    after = probe(video.path)
    assert after["streams"][1]["language"] == "eng"
    assert [s["type"] for s in after["streams"]] == ["video", "audio"]
    assert after["streams"][0]["frames"] == before["frames"]
    assert after["streams"][1]["codec_name"] == "aac"
    assert read_metadata(video.path) == {"p": 2}  # tags copied
