"""The synthetic matting clip shared by the matte tests (built with the bundled ffmpeg).

A textured square moving over a textured background (H.264, 28 frames of 96x64 at 24 fps) plus
two audio tracks, 44.1 kHz stereo 'eng' (AAC) and 22.05 kHz mono 'fra' (FLAC), in Matroska; a
first-frame mask PNG and a rough (blurred + noisy) per-frame mask video.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT, FRAMES, FPS, SIDE = 96, 64, 28, 24, 24


def square_masks() -> np.ndarray:
    """Ground truth (F, H, W) bool: the square's top-left corner moves right and down."""
    masks = np.zeros((FRAMES, HEIGHT, WIDTH), dtype=bool)
    for index in range(FRAMES):
        left, top = 8 + 2 * index, 6 + index
        masks[index, top : top + SIDE, left : left + SIDE] = True
    return masks


def clip_frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    checker = (((yy // 8) + (xx // 8)) % 2).astype(np.float32)
    background = np.stack([60 + 80 * checker, 90 + 40 * np.sin(xx / 5.0), 140 - 60 * checker], axis=-1)
    background += rng.normal(0, 6, background.shape)
    stripes = 0.5 + 0.5 * np.sin(np.arange(SIDE) / 2.0)
    subject = np.zeros((SIDE, SIDE, 3), np.float32)
    subject[..., 0] = 220 + 30 * stripes[None, :]
    subject[..., 1] = 200 * stripes[:, None]
    subject[..., 2] = 40
    frames = np.repeat(background[None], FRAMES, axis=0)
    for index, mask in enumerate(square_masks()):
        top, left = np.argwhere(mask)[0]
        frames[index, top : top + SIDE, left : left + SIDE] = subject
    return np.clip(frames, 0, 255).astype(np.uint8)


def run_ffmpeg(*args: str, stdin: bytes | None = None) -> None:
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args]
    subprocess.run(command, input=stdin, check=True, capture_output=True)


def write_video(path: Path, frames: np.ndarray, extra_inputs=(), extra_maps=(), codec=("-c:v", "libx264", "-crf", "8")):
    height, width = frames.shape[1:3]
    run_ffmpeg(
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "pipe:0",
        *extra_inputs, "-map", "0:v", *extra_maps, *codec, "-pix_fmt", "yuv420p", str(path),
        stdin=frames.tobytes(),
    )  # fmt: skip


def make_media(root: Path) -> dict:
    """The clip, its ground truth, a first-frame mask PNG and a rough (blurred + noisy) mask video."""
    frames = clip_frames()
    truth = square_masks()
    clip = root / "clip.mkv"
    duration = FRAMES / FPS
    write_video(
        clip,
        frames,
        extra_inputs=(
            "-f", "lavfi", "-i", f"aevalsrc=sin(440*2*PI*t)|0.5*sin(660*2*PI*t):s=44100:d={duration}",
            "-f", "lavfi", "-i", f"sine=frequency=300:sample_rate=22050:duration={duration}",
        ),
        extra_maps=(
            "-map", "1:a", "-map", "2:a", "-c:a:0", "aac", "-c:a:1", "flac",
            "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
        ),
    )  # fmt: skip
    first_mask = root / "mask.png"
    Image.fromarray((truth[0] * 255).astype(np.uint8)).save(first_mask)
    rng = np.random.default_rng(1)
    from vgen.matte.guided import box_mean

    rough = box_mean(truth.astype(np.float64), 1) + rng.normal(0, 0.15, truth.shape)
    rough_frames = np.repeat((np.clip(rough, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    mask_video = root / "masks.mkv"
    write_video(mask_video, rough_frames, codec=("-c:v", "ffv1"))
    return {"root": root, "clip": clip, "frames": frames, "truth": truth, "mask": first_mask, "mask_video": mask_video}
