"""Benchmark ``vgen.merge`` on a large synthetic sharded sweep (no model runs).

Builds SHARDS run dirs under a temp dir, as a sharded sweep leaves them: each a resolved config of
the same queue (a prompts file of ROWS prompts, ``queue.num_shards=SHARDS``, its ``queue.shard``) and
a manifest with one success row as vgen writes it (full-size ``inputs`` and one video artifact) per job of its shard.
Then times ``merge_sweep`` (wall and CPU time) (expected jobs expanded from the configs, rows merged and re-based,
coverage written) and prints the numbers. Example: python scripts/bench_merge.py --rows 100000 --shards 64
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from vgen.cli import RESOLVED_CONFIG_NAME
from vgen.jobs.expand import expand_jobs
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, row_json
from vgen.merge import merge_sweep
from vgen.jobs.shards import partition

GENERATION = dict(prompt="", negative_prompt="blurry, low quality, distorted", height=64, width=64, num_frames=9,
                  steps=4, guidance_scale=5.0, fps=16, seed=42)
MODEL = dict(name="tiny_wan", size_multiple=16, frame_multiple=4)  # what vgen.jobs.validation reads of a model


def synthetic_row(job, run_id: str) -> dict:
    stem = f"{job.index:04d}_{job.job_id[:8]}_shot"
    return {
        "run_id": run_id, "job_id": job.job_id, "job_index": job.index, "timestamp": "2026-11-25T22:00:00.000+00:00",
        "status": "success", "metadata_mode": "embedded", "output_key": job.job_id[::-1],
        "artifacts": [{"role": "video", "path": f"videos/{stem}.mp4", "container": "mp4", "codec": "libx264",
                       "width": 64, "height": 64, "frames": 9, "fps": 16, "duration_s": 0.5625, "bytes": 12345,
                       "sha256": "0" * 64, "metadata_sidecar": None, "kind": "video"}],
        "inputs": {"job": job.settings, "prompt": job.prompt, "enhanced_prompt": None, "repeat_index": 0,
                   "model": {"name": "tiny_wan", "source": "builtin:tiny_wan", "revision": None,
                             "pipeline_class": "WanPipeline", "snapshot": "tiny_wan-v1"},
                   "overrides": ["queue.prompts_file=shots.txt"]},
        "adapter_payload_hashes": {}, "timings": {"load_s": 0.0, "generate_s": 1.0, "persist_s": 0.1},
        "versions": {"vgen": "0.1.0", "torch": "2.5.0", "diffusers": "0.32.0", "transformers": None},
    }


def build_sweep(root: Path, rows: int, shards: int) -> Path:
    prompts = root / "shots.txt"
    prompts.write_text("".join(f"shot number {i}: a slow pan over a city at night\n" for i in range(rows)))
    queue = dict(jobs=[], prompts_file=str(prompts), repeats=1, grid=None, num_shards=shards, only_jobs=None,
                 default_jobs=[])
    jobs = expand_jobs(SimpleNamespace(**queue), GENERATION, SimpleNamespace(**MODEL))
    sweep = root / "sweep"
    for shard, shard_jobs in enumerate(partition(jobs, shards)):
        run_dir = sweep / str(shard)
        (run_dir / MANIFEST_RELATIVE_PATH).parent.mkdir(parents=True)
        (run_dir / RESOLVED_CONFIG_NAME).write_text(json.dumps({"queue": {**queue, "shard": shard},
                                                                "generation": GENERATION, "model": MODEL}))
        with open(run_dir / MANIFEST_RELATIVE_PATH, "w") as handle:
            handle.writelines(row_json(synthetic_row(job, f"run{shard}")) + "\n" for job in shard_jobs)
    return sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vgen-bench-merge-") as temp:
        started = time.perf_counter()
        sweep = build_sweep(Path(temp), args.rows, args.shards)
        built = time.perf_counter() - started
        started, cpu_started = time.perf_counter(), time.process_time()
        report = merge_sweep(sweep, sweep)
        merged, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        size = (sweep / "run_history.jsonl").stat().st_size
    assert report["complete"] and report["expected"] == args.rows, report
    print(f"synthetic sweep: {args.rows} rows over {args.shards} shards, built in {built:.1f}s")
    print(f"merge: {merged:.2f}s wall, {cpu:.2f}s CPU ({args.rows / merged:,.0f} rows/s), "
          f"merged manifest {size / 1e6:.1f} MB")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall > CPU: the machine is shared)")


if __name__ == "__main__":
    main()
