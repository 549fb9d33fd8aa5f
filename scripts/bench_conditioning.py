"""How much of a conditioned job goes to preparing its inputs (decode, orient, fit, hash) vs generating.

Runs the built-in ``tiny_wan_i2v`` pipeline in this process on ``examples/boat.png`` (default
33 frames of 256x256, 4 steps) and times ``vgen.conditioning.prepare.prepare_inputs`` against the
pipeline call, the two halves of ``ProductionManager.run_generation`` for a job with inputs. With
``--video`` it also times preparing a 33-frame source video (a v2v/VACE job's heavier input).

    python scripts/bench_conditioning.py [--frames 33 --size 256 --steps 4 --repeats 3 --video]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--video", action="store_true", help="also time a source video's preparation")
    args = parser.parse_args()

    import torch
    from diffusers import WanImageToVideoPipeline

    from vgen.conditioning.prepare import prepare_inputs
    from vgen.conditioning.spec import conditioning_settings
    from vgen.models.tiny_wan import ensure_tiny_wan

    model_cfg = OmegaConf.load(REPO / "conf" / "model" / "tiny_wan_i2v.yaml")
    settings = conditioning_settings({
        "prompt": "a boat sails off", "negative_prompt": "", "height": args.size, "width": args.size,
        "num_frames": args.frames, "steps": args.steps, "guidance_scale": 5.0, "fps": 16, "seed": 0,
        "image": str(REPO / "examples" / "boat.png"), "fit": "crop", "loop_video": False,
    }, "bench")
    pipe = WanImageToVideoPipeline.from_pretrained(ensure_tiny_wan(None, "tiny_wan_i2v"), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)

    prepare_s, prepared = timed(lambda: prepare_inputs(settings, model_cfg), args.repeats)

    def generate():
        with torch.inference_mode():
            return pipe(prompt=settings["prompt"], height=args.size, width=args.size, num_frames=args.frames,
                        num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0), output_type="np",
                        **prepared.pipeline_kwargs)

    generate_s, _ = timed(generate, args.repeats)
    print(f"tiny_wan_i2v {args.frames}x{args.size}x{args.size}, {args.steps} steps, median of {args.repeats}:")
    print(f"  prepare inputs (image): {prepare_s * 1000:8.1f} ms")
    print(f"  generate:               {generate_s * 1000:8.1f} ms")
    print(f"  share preparing:        {100 * prepare_s / (prepare_s + generate_s):8.2f} %")

    if args.video:
        import imageio_ffmpeg

        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "source.mp4"
            writer = imageio_ffmpeg.write_frames(str(source), (480, 320), fps=16, macro_block_size=1)
            writer.send(None)
            rng = np.random.default_rng(0)
            for _ in range(args.frames):
                writer.send(rng.integers(0, 255, (320, 480, 3), dtype=np.uint8).tobytes())
            writer.close()
            v2v = OmegaConf.load(REPO / "conf" / "model" / "wan21_v2v_1_3b.yaml")
            video_settings = {key: value for key, value in settings.items() if key != "image"}
            video_settings["video"] = str(source)
            video_s, _ = timed(lambda: prepare_inputs(video_settings, v2v), args.repeats)
        print(f"  prepare inputs (480x320 video, {args.frames} frames -> {args.size}x{args.size}): "
              f"{video_s * 1000:.1f} ms = {100 * video_s / (video_s + generate_s):.2f} % of such a job")


if __name__ == "__main__":
    main()
