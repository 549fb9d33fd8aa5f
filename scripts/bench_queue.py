"""Benchmark vgen's queue against a plain diffusers loop, and its encoder against the ffmpeg CLI.

Sections (default: --queue):
  --queue               plain diffusers loop (no encode / + imageio-ffmpeg encode) vs vgen's
                        QueueController with output.background_writer=false and =true, same jobs.
  --encoder-throughput  frames/s of vgen's write_video (through the media context) vs the bundled
                        ffmpeg fed the same raw rgb24 frames from a file, same codec args.
  --rss                 peak RSS of the Python process and of the ffmpeg child while writing a
                        long video, vs the size of its raw frames (each case in a fresh process).

Everything runs offline on the built-in tiny Wan model; example:
  python scripts/bench_queue.py --jobs 4 --frames 17 --size 160x96 --output mkv_h265
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vgen.config.compose import compose_run_config

DEFAULT_PROMPTS = (
    "a red fox running through fresh snow at dawn",
    "waves crashing on a rocky coast, aerial shot",
    "a paper boat drifting down a rainy street",
)


# ---------------------------------------------------------------- config


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def bench_config(run_dir: Path, overrides: list[str]):
    """vgen's config as ``python -m vgen`` composes it, writing into ``run_dir``, without a progress bar."""
    return compose_run_config(run_dir, ["runtime.progress=false", *overrides])


def job_overrides(args) -> list[str]:
    width, height = parse_size(args.size)
    jobs = ",".join(
        f"{{prompt: '{DEFAULT_PROMPTS[n % len(DEFAULT_PROMPTS)]}', seed: {n}}}" for n in range(args.jobs)
    )
    return [
        f"output={args.output}", f"queue.jobs=[{jobs}]", f"generation.steps={args.steps}",
        f"generation.num_frames={args.frames}", f"generation.width={width}", f"generation.height={height}",
        f"runtime.cache_dir={args.cache}", *args.override,
    ]


# ---------------------------------------------------------------- queue section


def cpu_seconds() -> float:
    """User+system CPU of this process (all threads) and its finished children (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(run) -> dict:
    """Wall and CPU seconds of ``run()``, and what it returned."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    returned = run()
    return {"returned": returned, "wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu}


class PlainLoop:
    """What a user would write without vgen: call the pipeline per job, save with imageio-ffmpeg."""

    def __init__(self, cache: str, output_cfg) -> None:
        import diffusers
        import transformers
        from diffusers import WanPipeline

        from vgen.media.formats import CONTAINERS
        from vgen.media.validation import output_settings
        from vgen.models.tiny_wan import ensure_tiny_wan

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        self.pipe = WanPipeline.from_pretrained(ensure_tiny_wan(cache), local_files_only=True)
        self.pipe.set_progress_bar_config(disable=True)
        self.settings = output_settings(output_cfg)
        self.suffix = CONTAINERS[self.settings.container].suffix

    def generate(self, job):
        import torch

        s = job.settings
        with torch.inference_mode():
            return self.pipe(
                prompt=s["prompt"], negative_prompt=s["negative_prompt"] or None, height=s["height"],
                width=s["width"], num_frames=s["num_frames"], num_inference_steps=s["steps"],
                guidance_scale=s["guidance_scale"], generator=torch.Generator(device="cpu").manual_seed(s["seed"]),
                output_type="np",
            ).frames[0]

    def encode(self, frames, path: Path, fps: float) -> None:
        import imageio_ffmpeg
        import numpy as np

        from vgen.media.writers import video_codec_args

        height, width = frames.shape[1:3]
        writer = imageio_ffmpeg.write_frames(
            str(path), (width, height), fps=fps, codec=self.settings.codec, pix_fmt_out=self.settings.pix_fmt,
            quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=video_codec_args(self.settings)[4:],  # the preset's args after -c:v X -pix_fmt Y
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray((frame * 255).round().astype(np.uint8)))
        writer.close()

    def run(self, jobs, out_dir: Path, *, encode: bool) -> None:
        for job in jobs:
            frames = self.generate(job)
            if encode:
                self.encode(frames, out_dir / f"{job.index:04d}{self.suffix}", job.settings["fps"])


def run_vgen_queue(args, scratch: Path, *, background: bool, jobs_limit: int | None = None) -> dict:
    """One vgen queue run; wall/CPU cover ``QueueController.run()`` only (config setup is ``setup_s``)."""
    from vgen.production import ProductionManager
    from vgen.queue.controller import QueueController

    setup = time.perf_counter()
    run_dir = Path(tempfile.mkdtemp(prefix="vgen-", dir=scratch))
    cfg = bench_config(run_dir, [*job_overrides(args), f"output.background_writer={str(background).lower()}"])
    manager = ProductionManager(cfg, run_dir=run_dir)
    manager.load_pipeline()  # a cache hit after the warm-up
    controller = QueueController(manager, manager.jobs()[:jobs_limit])
    setup_s = time.perf_counter() - setup
    result = timed(controller.run)
    summary = result.pop("returned")
    if not summary.ok:
        raise SystemExit(f"vgen queue failed: {summary}; see {manager.manifest.path}")
    rows = manager.manifest.rows()
    return {
        **result, "setup_s": setup_s, "blocked_s": controller.writer.blocked_s, "busy_s": controller.writer.busy_s,
        "generate_s": sum(row["timings"]["generate_s"] for row in rows),
        "persist_s": sum(row["timings"]["persist_s"] for row in rows),
    }


def bench_queue(args, scratch: Path) -> None:
    from vgen.production import ProductionManager

    cfg = bench_config(scratch / "plan", job_overrides(args))
    jobs = ProductionManager(cfg, run_dir=scratch / "plan").jobs()
    plain = PlainLoop(args.cache, cfg.output)
    out_dir = scratch / "plain"
    out_dir.mkdir()

    print(f"# queue: {args.jobs} jobs x {args.frames} frames {args.size}, {args.steps} steps, output={args.output}, "
          f"torch threads={_torch_threads()}, repeats={args.repeats}", flush=True)
    plain.run(jobs[:1], out_dir, encode=True)  # warm-up (untimed): first call, encoder start
    run_vgen_queue(args, scratch, background=False, jobs_limit=1)

    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for repeat in range(args.repeats):  # interleaved, so load drift hits every variant alike
        results["plain, no encode"].append(timed(lambda: plain.run(jobs, out_dir, encode=False)))
        results["plain + imageio-ffmpeg"].append(timed(lambda: plain.run(jobs, out_dir, encode=True)))
        results["vgen inline"].append(run_vgen_queue(args, scratch, background=False))
        results["vgen background"].append(run_vgen_queue(args, scratch, background=True))
        print(f"  repeat {repeat + 1}/{args.repeats}: "
              + ", ".join(f"{name} {runs[-1]['wall_s']:.2f}s" for name, runs in results.items()), flush=True)
    print_queue_table(results)


VARIANTS = ("plain, no encode", "plain + imageio-ffmpeg", "vgen inline", "vgen background")


def print_queue_table(results: dict[str, list[dict]]) -> None:
    def best(name: str, key: str = "wall_s") -> float:
        return min(run[key] for run in results[name])

    reference = best("plain + imageio-ffmpeg")
    print()
    cpu_reference = best("plain + imageio-ffmpeg", "cpu_s")
    print(f"| {'variant':<26} | min wall s | median wall s | wall vs plain+encode | min CPU s | CPU vs plain+encode |")
    print(f"|{'-' * 28}|-----------:|--------------:|---------------------:|----------:|--------------------:|")
    for name in VARIANTS:
        walls = [run["wall_s"] for run in results[name]]
        cpu = best(name, "cpu_s")
        print(f"| {name:<26} | {min(walls):10.2f} | {statistics.median(walls):13.2f} | {min(walls) / reference:20.2f} "
              f"| {cpu:9.2f} | {cpu / cpu_reference:19.2f} |")
    print()
    print(f"background / inline (min wall): {best('vgen background') / best('vgen inline'):.2f}")
    print(f"encode share of plain+encode: {1 - best('plain, no encode') / reference:.0%} of wall, "
          f"{1 - best('plain, no encode', 'cpu_s') / cpu_reference:.0%} of CPU")
    print()
    print("| vgen writer     | setup_s | generate_s | persist_s | busy_s | blocked_s | blocked/busy |")
    print("|-----------------|--------:|-----------:|----------:|-------:|----------:|-------------:|")
    for name in ("vgen inline", "vgen background"):
        for run in results[name]:
            share = run["blocked_s"] / run["busy_s"] if run["busy_s"] else 0.0
            print(f"| {name:<15} | {run['setup_s']:7.2f} | {run['generate_s']:10.2f} | {run['persist_s']:9.2f} | {run['busy_s']:6.2f} | "
                  f"{run['blocked_s']:9.2f} | {share:12.2f} |")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# ---------------------------------------------------------------- encoder section


def synthetic_frames(count: int, width: int, height: int):
    """Moving gradients plus fixed grain: compressible like video, not like white noise. uint8 (F,H,W,3)."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    grain = np.random.default_rng(0).integers(0, 8, size=(height, width, 3), dtype=np.uint8)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        phase = index / 8.0
        frames[index, ..., 0] = (127 + 115 * np.sin(x / 23.0 + phase)).astype(np.uint8)
        frames[index, ..., 1] = (127 + 115 * np.sin(y / 17.0 - phase)).astype(np.uint8)
        frames[index, ..., 2] = ((x + y + 4 * index) % 248).astype(np.uint8)
    frames += grain  # stays below 256: at most 247 + 7
    return frames


def media_context(output_cfg, metadata_mode: str = "none"):
    from vgen.media.context import MediaPersistenceContext
    from vgen.media.metadata_state import MetadataState

    return MediaPersistenceContext.from_config(output_cfg, MetadataState(mode=metadata_mode))


def ffmpeg_cli_encode(raw: Path, out: Path, settings, width: int, height: int, fps: float) -> None:
    from vgen.media import ffmpeg
    from vgen.media.formats import CONTAINERS
    from vgen.media.writers import video_codec_args

    container = CONTAINERS[settings.container]
    ffmpeg.run_ffmpeg(
        ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", str(raw),
         *video_codec_args(settings), *container.muxer_args, "-f", container.muxer, str(out)],
        what=out,
    )


def bench_encoder(args, scratch: Path) -> None:
    from vgen.media.formats import CONTAINERS
    from vgen.media.validation import output_settings

    width, height = parse_size(args.encoder_size)
    frames = synthetic_frames(args.encoder_frames, width, height)
    raw = scratch / "frames.raw"
    raw.write_bytes(frames.tobytes())
    print(f"\n# encoder throughput: {len(frames)} frames {width}x{height} rgb24, fps {args.fps}, repeats={args.repeats}")
    print("| output        | vgen write_video f/s | ffmpeg CLI f/s | vgen / CLI |")
    print("|---------------|---------------------:|---------------:|-----------:|")
    for preset in args.encoder_outputs.split(","):
        cfg = bench_config(scratch / "enc", [f"output={preset}"])
        context = media_context(cfg.output)
        settings = output_settings(cfg.output)
        suffix = CONTAINERS[settings.container].suffix
        vgen_s, cli_s = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            context.save_video(frames, scratch / f"vgen-{preset}", fps=args.fps)
            vgen_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            ffmpeg_cli_encode(raw, scratch / f"cli-{preset}{suffix}", settings, width, height, args.fps)
            cli_s.append(time.perf_counter() - started)
        vgen_fps, cli_fps = len(frames) / min(vgen_s), len(frames) / min(cli_s)
        print(f"| {preset:<13} | {vgen_fps:20.1f} | {cli_fps:14.1f} | {vgen_fps / cli_fps:10.2f} |", flush=True)


# ---------------------------------------------------------------- RSS section


def rss_child(mode: str, output: str, count: int, size: str, fps: float, out_dir: Path) -> dict:
    """Runs in a fresh process; the peak is reset right before the write, so it is the write's own."""
    import numpy as np

    width, height = parse_size(size)
    cfg = bench_config(out_dir / "rss", [f"output={output}"])
    context = media_context(cfg.output)
    before_kb = _proc_status_kb("VmRSS")
    if mode == "stream":  # one frame at a time (e.g. decoded latents streamed out)
        source = (frame for chunk in range(0, count, 16) for frame in synthetic_frames(min(16, count - chunk), width, height))
    elif mode == "uint8-array":
        source = synthetic_frames(count, width, height)
    else:  # "float32-array": what pipelines return with output_type="np"
        source = synthetic_frames(count, width, height).astype(np.float32)
        source /= 255.0
    held_kb = _proc_status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (the peak) to the current RSS
    watcher = ChildPeakWatcher()
    watcher.start()
    context.save_video(source, out_dir / f"rss-{mode}", fps=fps)
    watcher.stop()
    return {
        "mode": mode, "before_mb": before_kb / 1024, "frames_held_mb": (held_kb - before_kb) / 1024,
        "peak_mb": _proc_status_kb("VmHWM") / 1024, "ffmpeg_peak_mb": watcher.peak_kb / 1024,
        "ffmpeg_rusage_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


class ChildPeakWatcher:
    """Polls the VmHWM of this process's ffmpeg children. RUSAGE_CHILDREN is no use here: it counts
    the forked child before exec, i.e. the Python parent's own RSS."""

    def __init__(self, interval_s: float = 0.01) -> None:
        import threading

        self.peak_kb = 0
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self._interval_s):
            for children in Path("/proc/self/task").glob("*/children"):
                for pid in children.read_text().split():
                    try:
                        if Path(f"/proc/{pid}/comm").read_text().strip().startswith("ffmpeg"):
                            self.peak_kb = max(self.peak_kb, _proc_status_kb("VmHWM", pid))
                    except (OSError, ValueError):
                        continue  # it exited between the listing and the read


def _proc_status_kb(field: str, pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise ValueError(f"{field} not in /proc/{pid}/status")


def bench_rss(args, scratch: Path) -> None:
    width, height = parse_size(args.rss_size)
    raw_mb = args.rss_frames * width * height * 3 / 2**20
    print(f"\n# peak RSS writing {args.rss_frames} frames {width}x{height} ({args.rss_output}); "
          f"raw rgb24 frames = {raw_mb:.0f} MiB, as float32 = {raw_mb * 4:.0f} MiB")
    print("| frames given as | RSS before MiB | frames held MiB | python peak during write MiB | ffmpeg peak MiB "
          "| RUSAGE_CHILDREN MiB |")
    print("|-----------------|---------------:|----------------:|-----------------------------:|----------------:"
          "|--------------------:|")
    for mode in ("stream", "uint8-array", "float32-array"):
        proc = subprocess.run(
            [sys.executable, __file__, "--rss-child", mode, "--rss-output", args.rss_output, "--rss-frames",
             str(args.rss_frames), "--rss-size", args.rss_size, "--fps", str(args.fps), "--scratch", str(scratch)],
            capture_output=True, text=True, check=True,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"| {mode:<15} | {row['before_mb']:14.0f} | {row['frames_held_mb']:15.0f} | {row['peak_mb']:28.0f} | "
              f"{row['ffmpeg_peak_mb']:15.0f} | {row['ffmpeg_rusage_mb']:19.0f} |", flush=True)


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queue", action="store_true", help="run the queue section (default when no section is named)")
    parser.add_argument("--encoder-throughput", action="store_true", help="run the encoder throughput section")
    parser.add_argument("--rss", action="store_true", help="run the peak-RSS section")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--frames", type=int, default=17, help="per job; 4k+1 for Wan")
    parser.add_argument("--size", default="256x144", help="WxH per job (multiples of 16)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default="mkv_h265", help="vgen output preset (conf/output/) for every variant")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra vgen config override for every variant, e.g. output.preset=slow (repeatable)")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--fps", type=float, default=16.0)
    parser.add_argument("--encoder-outputs", default="mp4_h264,mkv_h265,mkv_ffv1",
                        help="comma-separated presets for --encoder-throughput")
    parser.add_argument("--encoder-frames", type=int, default=120)
    parser.add_argument("--encoder-size", default="480x272")
    parser.add_argument("--rss-output", default="mp4_h264")
    parser.add_argument("--rss-frames", type=int, default=600)
    parser.add_argument("--rss-size", default="480x272")
    parser.add_argument("--cache", default=None, help="tiny-model cache dir (default: vgen's, $VGEN_CACHE_DIR)")
    parser.add_argument("--scratch", default=None, help="where videos are written (default: a temp dir, removed)")
    parser.add_argument("--rss-child", choices=("stream", "uint8-array", "float32-array"), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child, args.rss_output, args.rss_frames, args.rss_size, args.fps,
                                   Path(args.scratch))))
        return
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.cache is None:
        from vgen.models.tiny_wan import default_cache_root

        args.cache = str(default_cache_root())
    with tempfile.TemporaryDirectory(prefix="vgen-bench-", dir=args.scratch) as scratch:
        scratch = Path(scratch)
        if args.queue or not (args.encoder_throughput or args.rss):
            bench_queue(args, scratch)
        if args.encoder_throughput:
            bench_encoder(args, scratch)
        if args.rss:
            bench_rss(args, scratch)


if __name__ == "__main__":
    main()
