"""Output configs are rejected before any model loads, with the field and the reason."""

from __future__ import annotations

import pytest

from conftest import REPO_ROOT
from vgen.errors import ConfigError
from vgen.media.context import MediaPersistenceContext, validate_output_config
from vgen.media.formats import VIDEO_CODECS
from vgen.media.metadata_state import MetadataState


def cfg(**fields):
    return {"name": "t", "container": "mp4", "codec": "libx264", "crf": 18, "pix_fmt": "yuv420p", **fields}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"container": "avi"}, r"output.container: unknown container 'avi'"),
        ({"codec": "libxvid"}, r"output.codec: unknown codec 'libxvid'"),
        ({"container": "webm", "codec": "prores_ks", "crf": None, "pix_fmt": "yuv422p10le"},
         r"prores_ks \(prores\) cannot go in a webm container \(webm holds: av1, vp9\)"),
        ({"container": "webm"}, r"libx264 \(h264\) cannot go in a webm container"),
        ({"container": "mp4", "codec": "ffv1", "crf": None}, r"ffv1 \(ffv1\) cannot go in a mp4 container"),
        ({"container": "webm", "codec": "libsvtav1", "pix_fmt": "yuv422p10le"},
         r"output.pix_fmt: yuv422p10le is not supported by libsvtav1 \(supported: yuv420p yuv420p10le\)"),
        ({"container": "mov", "codec": "prores_ks", "crf": None, "pix_fmt": "yuv420p"},
         r"output.pix_fmt: yuv420p is not supported by prores_ks"),
        ({"pix_fmt": "yuv420p16le"}, r"output.pix_fmt: yuv420p16le is not supported by libx264"),
        ({"crf": 52}, r"output.crf=52 is out of range for libx264: expected an integer in \[0, 51\]"),
        ({"container": "webm", "codec": "libvpx-vp9", "crf": 64}, r"out of range for libvpx-vp9"),
        ({"container": "mkv", "codec": "ffv1", "crf": 10}, r"output.crf: codec ffv1 does not take crf"),
        ({"quality": 5}, r"output.quality: codec libx264 does not take quality"),
        ({"container": "mkv", "codec": "ffv1", "crf": None, "preset": "slow"}, r"output.preset: codec ffv1 takes no preset"),
        ({"preset": "bogus"}, r"output.preset='bogus' is not a libx264 preset \(one of: ultrafast, "),
        ({"container": "webm", "codec": "libvpx-vp9", "crf": 30, "preset": "fast"}, r"not a libvpx-vp9 preset"),
        ({"container": "webm", "codec": "libaom-av1", "crf": 30, "preset": "9"}, r"not a libaom-av1 preset"),
        ({"fps": 0}, r"output.fps must be positive"),
        ({"image_format": "gif"}, r"output.image_format: unknown 'gif'"),
        ({"image_quality": 0}, r"output.image_quality must be in \[1, 100\]"),
        ({"audio_format": "mp3"}, r"output.audio_format: unknown 'mp3'"),
        ({"audio_format": "flac", "audio_subtype": "FLOAT"}, r"output.audio_subtype: 'FLOAT' is not valid for flac"),
        ({"retries": -1}, r"output.retries"),
        ({"colour": "red"}, r"output: unknown field\(s\) \['colour'\]"),
    ],
)
def test_invalid_output_configs_are_rejected_with_reason(fields, reason):
    with pytest.raises(ConfigError, match=reason):
        validate_output_config(cfg(**fields))
    with pytest.raises(ConfigError, match=reason):
        MediaPersistenceContext.from_config(cfg(**fields), MetadataState("none"))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"container": "mov", "codec": "prores_ks", "crf": None, "quality": 11, "profile": "3", "pix_fmt": "yuv422p10le"},
        {"container": "mkv", "codec": "libx264", "pix_fmt": "yuv420p10le"},  # this x264 build does 10-bit
        {"container": "webm", "codec": "libaom-av1", "crf": 30, "preset": "8"},
        {"image_format": "webp", "audio_format": "flac", "audio_subtype": "PCM_24"},
    ],
)
def test_valid_output_configs_pass(fields):
    validate_output_config(cfg(**fields))


def test_overrides_are_validated_and_limited(tmp_path):
    import numpy as np

    ctx = MediaPersistenceContext.from_config(cfg(), MetadataState("none"))
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ConfigError, match=r"output.crf=99 is out of range"):
        ctx.save_video(frames, tmp_path / "a", fps=8, overrides={"crf": 99})
    with pytest.raises(ConfigError, match=r"output.container cannot be overridden per artifact"):
        ctx.save_video(frames, tmp_path / "a", fps=8, overrides={"container": "mkv"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["embedded", "json", "none"])
def test_metadata_state_accepts_modes(mode):
    from omegaconf import OmegaConf

    from vgen.config.schema import MetadataConfig

    state = MetadataState.from_config(OmegaConf.structured(MetadataConfig(mode=mode, embed_source_images=True)))
    assert state == MetadataState(mode, embed_source_images=True)


def test_metadata_state_rejects_unknown_mode():
    with pytest.raises(ConfigError, match=r"metadata.mode: expected one of \['embedded', 'json', 'none'\], got 'xmp'"):
        MetadataState.from_config({"mode": "xmp"})


@pytest.mark.parametrize("option", sorted(p.stem for p in (REPO_ROOT / "conf" / "output").glob("*.yaml")))
def test_every_shipped_output_option_validates(option):
    from omegaconf import OmegaConf

    validate_output_config({k: v for k, v in OmegaConf.load(REPO_ROOT / "conf" / "output" / f"{option}.yaml").items()
                            if k != "defaults"})


@pytest.mark.parametrize("codec", [c for c in VIDEO_CODECS.values() if c.presets and not c.hardware],
                         ids=lambda c: c.encoder)
def test_every_listed_preset_is_accepted_by_the_encoder(codec):
    """The preset tables match this ffmpeg build: each value encodes a frame, an unlisted one is refused."""
    import subprocess

    from vgen.media import ffmpeg

    def encode(preset: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ffmpeg.ffmpeg_exe(), *ffmpeg.BASE_ARGS, "-f", "lavfi", "-i", "color=size=64x64:rate=1", "-frames:v", "1",
             "-c:v", codec.encoder, codec.preset_flag, preset, "-f", "null", "-"],
            capture_output=True, text=True, env=ffmpeg.ffmpeg_env(), check=False)

    for preset in codec.presets:
        assert encode(preset).returncode == 0, (preset, encode(preset).stderr[-500:])
    assert encode("bogus").returncode != 0


@pytest.mark.parametrize("codec", [c for c in VIDEO_CODECS.values() if c.hardware], ids=lambda c: c.encoder)
def test_hardware_presets_match_what_ffmpeg_lists(codec):
    """NVENC cannot encode here (no GPU): compare with the preset names this ffmpeg build documents."""
    import re
    import subprocess

    from vgen.media import ffmpeg

    help_text = subprocess.run([ffmpeg.ffmpeg_exe(), "-hide_banner", "-h", f"encoder={codec.encoder}"],
                               capture_output=True, text=True, check=True).stdout
    block = re.search(r"^  -preset .*\n((?:     \S.*\n)+)", help_text, re.MULTILINE).group(1)
    assert sorted(codec.presets) == sorted(line.split()[0] for line in block.splitlines())
