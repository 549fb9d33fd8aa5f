"""Benchmark vgen's speed and memory knobs: a matrix of knobs -> s/step, total s, peak memory,
transformer block work skipped and PSNR against the plain run, printed as a table and written as JSON.

Models (--model):
  auto        wan21_t2v_1_3b when its checkpoint is in the Hugging Face cache, else wan_1_3b_random
  wan21_t2v_1_3b
              the real checkpoint (never downloaded)
  wan_1_3b_random
              the tiny pipeline with a random-init transformer shaped like Wan 2.1 1.3B (30 blocks,
              12 heads x 128, ffn 8960) and a text encoder widened to its 4096 text dim: real compute,
              meaningless pixels
  tiny        the built-in tiny model (the reduced CPU form; the default on a machine without CUDA)

Rows: the plain run, attention=native, each step cache at its conf/cache default, each cache over its
own knob's range (the curve of work skipped vs PSNR), int8 weight-only quantization; on CUDA also
regional compile (+ the default cache). Random or tiny weights may react to caches unlike trained
ones: their curves say the code paths work, not what a trained model would lose.

  python scripts/bench_speed.py --out bench_speed.json              # reduced CPU form, tiny model
  python scripts/bench_speed.py --model wan_1_3b_random --size 832x480 --frames 33 --steps 30
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import ast
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from vgen.config.compose import compose_run_config

# Each cache's own knob and the range it is swept over (the conf/cache default is inside each range).
SWEEPS = {
    "first_block": ("threshold", [0.02, 0.05, 0.1, 0.2, 0.4]),
    "taylorseer": ("cache_interval", [2, 3, 5, 8]),
    "magcache": ("threshold", [0.02, 0.06, 0.12, 0.24, 0.5]),
    "fastercache": ("spatial_attention_block_skip_range", [2, 3, 4]),
}
PROMPT = "a red fox running through fresh snow at dawn, cinematic light"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="auto", choices=["auto", "wan21_t2v_1_3b", "wan_1_3b_random", "tiny"])
    parser.add_argument("--size", default=None, help="WxH (default: 832x480 on CUDA, 32x32 on CPU)")
    parser.add_argument("--frames", type=int, default=None, help="default: 33 on CUDA, 5 on CPU")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--only", default="all", choices=["all", "targets"],
                        help="targets: just the issue's GPU targets (plain, regional compile with and without "
                             "the first_block cache, memory=gpu_8gb), for a short GPU lease")
    parser.add_argument("--out", default="bench_speed.json", help="where the JSON table goes")
    return parser.parse_args(argv)


def base_config(workdir: Path, model: str, device: str, *extra: str):
    overrides = [f"runtime.device={device}", "runtime.progress=false", *extra]
    if model == "wan21_t2v_1_3b":
        overrides.append("model=wan21_t2v_1_3b")
    return compose_run_config(workdir, overrides)


def real_checkpoint_available(workdir: Path) -> bool:
    from vgen.errors import CheckpointNotFoundError
    from vgen.models.loader import resolve_source

    try:
        resolve_source(base_config(workdir, "wan21_t2v_1_3b", "cpu").model, None)
        return True
    except CheckpointNotFoundError:
        return False


def wan_1_3b_random(dtype):
    """The tiny pipeline around a random-init transformer with Wan 2.1 1.3B's shape (no download)."""
    import torch
    from diffusers import WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from vgen.models.tiny_wan import build_tiny_wan_pipeline

    pipe = build_tiny_wan_pipeline()
    torch.manual_seed(0)
    pipe.transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
        text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    )
    pipe.text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(pipe.tokenizer), d_model=4096, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=pipe.tokenizer.pad_token_id,
        eos_token_id=pipe.tokenizer.eos_token_id,
    ))
    return pipe.to(dtype=dtype)


def load(cfg, model: str):
    import torch

    from vgen.speed.attention import apply_attention_backend
    from vgen.speed.compilation import compile_pipeline
    from vgen.devices import resolve_placement
    from vgen.models.loader import load_pipeline, place_pipeline

    placement = resolve_placement(cfg.runtime)
    if model == "wan_1_3b_random":
        pipe = wan_1_3b_random(getattr(torch, placement.dtype))
        place_pipeline(pipe, placement)
    else:
        pipe = load_pipeline(cfg.model, placement, None, cfg.runtime)
    compile_pipeline(pipe, cfg.runtime, cfg.cache)
    pipe.set_progress_bar_config(disable=True)
    apply_attention_backend(pipe, cfg.runtime)
    return pipe


def peak_memory_mib(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (never goes down)


def generate(pipe, cache: dict, args, device: str, count: bool = True) -> tuple[object, dict]:
    import torch

    from vgen.speed.probe import BlockWorkCounter
    from vgen.speed.step_cache import apply_step_cache

    apply_step_cache(pipe, cache, steps=args.steps)
    # the counter's Python hooks inside compiled blocks would recompile on every count: not counted there
    counter = BlockWorkCounter(pipe) if count else None
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with torch.inference_mode():
        frames = pipe(prompt=PROMPT, height=args.height, width=args.width, num_frames=args.frames,
                      num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0),
                      output_type="np").frames[0]
    if device == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - started
    if counter is not None:
        counter.close()
    return frames, {"total_s": total, "s_per_step": total / args.steps, "peak_mib": peak_memory_mib(device),
                    "block_calls": counter.calls if counter is not None else None}


def calibrate_mag_ratios(pipe, cache: dict, args, device: str) -> list[float]:
    """MagCache's calibration run on this model (diffusers prints the measured ratios)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        generate(pipe, {**cache, "calibrate": True, "mag_ratios": None}, args, device)
    return ast.literal_eval(printed.getvalue().strip().splitlines()[-1])


def cache_settings(workdir: Path, name: str) -> dict:
    return OmegaConf.to_container(compose_run_config(workdir, [f"cache={name}"]).cache)


def main(argv=None) -> int:
    import torch

    from vgen.speed.probe import psnr

    args = parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.width, args.height = map(int, (args.size or ("832x480" if device == "cuda" else "32x32")).split("x"))
    args.frames = args.frames or (33 if device == "cuda" else 5)
    workdir = Path(tempfile.mkdtemp(prefix="vgen-bench-speed-"))
    model = args.model
    if model == "auto":
        model = "wan21_t2v_1_3b" if real_checkpoint_available(workdir) else (
            "wan_1_3b_random" if device == "cuda" else "tiny")
    cfg = base_config(workdir, model, device)
    rows = []
    baseline = None
    if device == "cuda":  # the memory preset first, so its peak counts no other pipeline's weights
        preset = load(base_config(workdir, model, device, "memory=gpu_8gb"), model)
        preset_frames, preset_row = generate(preset, {"name": "none"}, args, device, count=False)
        del preset
        gc.collect()
        torch.cuda.empty_cache()
    pipe = load(cfg, model)

    def measure(label: str, knobs: dict, cache: dict, target=None, count=True):
        nonlocal baseline
        frames, row = generate(target or pipe, cache, args, device, count)
        if baseline is None:
            baseline = (frames, row["block_calls"])
        calls = row.pop("block_calls")
        row.update(label=label, knobs=knobs, skipped=None if calls is None else 1 - calls / baseline[1],
                   psnr_db=psnr(baseline[0], frames))
        rows.append(row)
        print(f"{label:<44} {row['s_per_step']:8.3f} {row['total_s']:8.2f} {row['peak_mib']:9.0f} "
              f"{'n/a' if row['skipped'] is None else format(row['skipped'], '.0%'):>8} {row['psnr_db']:8.1f}", flush=True)

    print(f"model={model} device={device} {args.width}x{args.height}x{args.frames} steps={args.steps}")
    print(f"{'knobs':<44} {'s/step':>8} {'total s':>8} {'peak MiB':>9} {'skipped':>8} {'PSNR dB':>8}")
    measure("plain (warm-up, not a row)", {}, {"name": "none"})
    rows.clear()
    baseline = None
    measure("plain", {}, {"name": "none"})
    if args.only == "all":
        measure("attention=native", {"runtime.attention": "native"}, {"name": "none"})

    for name, (knob, values) in SWEEPS.items() if args.only == "all" else ():
        cache = cache_settings(workdir, name)
        if name == "magcache":
            cache["mag_ratios"] = calibrate_mag_ratios(pipe, cache, args, device)  # per-model ratios
        measure(f"cache={name} (default)", {"cache": name}, cache)
        for value in values:
            measure(f"cache={name} {knob}={value}", {"cache": name, f"cache.{knob}": value}, {**cache, knob: value})

    if model != "wan_1_3b_random" and args.only == "all":
        quantized = load(base_config(workdir, model, device, "runtime.quantization.transformer=int8"), model)
        measure("quantization.transformer=int8", {"runtime.quantization.transformer": "int8"}, {"name": "none"},
                target=quantized)
    if device == "cuda":
        preset_row.update(label="memory=gpu_8gb", knobs={"memory": "gpu_8gb"}, skipped=None,
                          psnr_db=psnr(baseline[0], preset_frames))
        preset_row.pop("block_calls")
        rows.append(preset_row)
        print(f"{'memory=gpu_8gb (measured first)':<44} {preset_row['s_per_step']:8.3f} {preset_row['total_s']:8.2f} "
              f"{preset_row['peak_mib']:9.0f} {'n/a':>8} {preset_row['psnr_db']:8.1f}", flush=True)
        # Compiled as vgen compiles for a run with a step cache (graph breaks at its hooks): the same
        # compiled blocks serve the cache-free row, where nothing breaks the graphs.
        compiled = load(base_config(workdir, model, device, "runtime.compile=regional", "cache=first_block"), model)
        generate(compiled, {"name": "none"}, args, device, count=False)  # compile warm-up
        measure("compile=regional", {"runtime.compile": "regional"}, {"name": "none"}, target=compiled, count=False)
        first_block = cache_settings(workdir, "first_block")
        generate(compiled, first_block, args, device, count=False)  # the blocks recompile around the cache hooks
        measure("compile=regional + cache=first_block", {"runtime.compile": "regional", "cache": "first_block"},
                first_block, target=compiled, count=False)
        total_s = {row["label"]: row["total_s"] for row in rows}
        for label in ("compile=regional", "compile=regional + cache=first_block"):
            if label in total_s:
                print(f"plain / ({label}): {total_s['plain'] / total_s[label]:.2f}x")

    report = {"model": model, "device": device, "size": f"{args.width}x{args.height}", "frames": args.frames,
              "steps": args.steps, "torch": torch.__version__, "rows": rows,
              "note": "random or tiny weights may react to step caches unlike trained weights"}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
