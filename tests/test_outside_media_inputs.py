"""Conditioning inputs made by other tools: 16-bit PNGs, phone videos with a display rotation, a
truncated mp4 (its header still claims every frame). Files are written by Pillow and the bundled
ffmpeg, never by vgen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_vgen
from media_fixtures import run_ffmpeg
from vgen.conditioning.fit import fit_mask
from vgen.conditioning.media import load_image, probe_input
from vgen.media.probe import decode_video


def test_a_16_bit_png_is_scaled_not_clipped_to_white(tmp_path: Path):
    ramp = np.repeat(np.linspace(0, 65535, 64, dtype=np.float64)[None], 32, axis=0).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "depth16.png")
    assert Image.open(tmp_path / "depth16.png").mode == "I;16"
    image = np.asarray(load_image(tmp_path / "depth16.png"))
    assert image.shape == (32, 64, 3)
    np.testing.assert_allclose(image[0, :, 0], np.round(np.linspace(0, 255, 64)), atol=1)
    mask = np.asarray(fit_mask(load_image(tmp_path / "depth16.png"), 64, 32, "crop"))[0, :, 0]
    assert mask[:31].max() == 0 and mask[33:].min() == 255  # black on the left half, white on the right


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_a_rotated_phone_video_is_decoded_upright_as_ffmpeg_shows_it(tmp_path: Path, degrees: int):
    import imageio_ffmpeg

    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=16", "-frames:v", "3", "-c:v", "libx264",
               "-pix_fmt", "yuv444p", str(tmp_path / "plain.mp4"))
    run_ffmpeg("-display_rotation", str(degrees), "-i", str(tmp_path / "plain.mp4"), "-c", "copy",
               str(tmp_path / "phone.mp4"))
    shown = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "phone.mp4"),
                            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], capture_output=True, check=True).stdout
    upright = (64, 96) if degrees == 180 else (96, 64)
    frames = decode_video(tmp_path / "phone.mp4")
    assert frames.shape == (3, *upright, 3)
    np.testing.assert_array_equal(frames, np.frombuffer(shown, np.uint8).reshape(3, *upright, 3))
    info = probe_input(tmp_path / "phone.mp4", "video")
    assert (info.height, info.width) == upright


def test_a_truncated_mp4_is_bad_input_before_the_model_loads(tmp_path: Path):
    """A faststart mp4 cut short keeps its header (40 frames, first frame decodable): only decoding the
    frames the job needs shows the damage. Exit 2 naming the job's key, before the (absent) checkpoint."""
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=16", "-frames:v", "40", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp_path / "whole.mp4"))
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 3 // 5])
    assert probe_input(tmp_path / "cut.mp4", "video").frames == 40  # what the header still claims
    result = run_vgen("model=wan21_v2v_1_3b", f"model.source={tmp_path / 'no-checkpoint'}",
                      "generation.num_frames=9", "queue.jobs=[{prompt: a boat, video: cut.mp4}]", "hydra.run.dir=run",
                      cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = [line for line in result.stderr.splitlines() if "job[0].video" in line]
    assert f"cannot decode video {tmp_path / 'cut.mp4'} after frame" in line
    assert not (tmp_path / "run" / "manifests").exists()


@pytest.mark.parametrize("suffix", ["gif", "png"])
def test_an_animated_mask_moves_with_the_video(tmp_path: Path, suffix: str):
    """An animated GIF/APNG mask (what many editors export) is a mask video, not its first frame held."""
    from omegaconf import OmegaConf

    from vgen.conditioning.prepare import prepare_inputs
    from vgen.conditioning.spec import conditioning_settings

    frames = [Image.fromarray(np.full((64, 64, 3), 255 * (index % 2), np.uint8)) for index in range(12)]
    frames[0].save(tmp_path / f"mask.{suffix}", save_all=True, append_images=frames[1:], duration=60, loop=0)
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=16", "-frames:v", "12", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(tmp_path / "source.mp4"))
    vace = OmegaConf.create({"name": "vace", "task": "vace", "inputs": {"video": {"arg": "video"}, "mask": {"arg": "mask"}}})
    settings = conditioning_settings({"prompt": "x", "height": 64, "width": 64, "num_frames": 9, "fit": "crop",
                                      "loop_video": False, "video": str(tmp_path / "source.mp4"),
                                      "mask": str(tmp_path / f"mask.{suffix}")}, "job")
    assert probe_input(settings["mask"], "image_or_video").frames == 12
    masks = prepare_inputs(settings, vace).pipeline_kwargs["mask"]
    assert [int(np.asarray(mask).mean()) for mask in masks] == [0, 255] * 4 + [0]


def decompression_bomb(path: Path, side: int = 20000) -> Path:
    """A 2 KB PNG that claims 20000x20000 pixels (Pillow refuses to decode it as a possible DoS)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_image_is_bad_input_in_one_line(tmp_path: Path):
    decompression_bomb(tmp_path / "huge.png")
    result = run_vgen("dry_run=true", "model=tiny_wan_i2v", "queue.jobs=[{prompt: a boat, image: huge.png}]",
                      cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"job[0].image: cannot decode image {tmp_path / 'huge.png'}: Image size (400000000 pixels)")
    matte = run_vgen("input.video=huge.png", "input.mask=huge.png", "dry_run=true", module="vgen.matte", cwd=tmp_path)
    assert matte.returncode == 2, matte.stderr[-2000:]
    [line] = matte.stderr.strip().splitlines()
    assert line.startswith(f"video: {tmp_path / 'huge.png'}: Image size (400000000 pixels)"), line
