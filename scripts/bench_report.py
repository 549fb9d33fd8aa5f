"""Benchmark vgen.report: the time to write a sweep's report for N artifacts, and the page load in
headless Chromium.

Builds a synthetic sweep dir per size (not timed): N points on a seed x guidance_scale grid, each a
run dir with a real 9-frame h264 video (cut from one ffmpeg testsrc2 encode, so every file differs),
a real resolved config composed like ``python -m vgen`` does, a manifest row and the sweep summary.
Then times ``write_report`` with an empty poster cache (a fresh report) and again with a warm one
(a rewrite). ``--browser`` loads the largest report in Debian's chromium (selenium + chromedriver)
and reports load timings and how many posters/videos the page fetched up front.

  python scripts/bench_report.py --points 10 500 --browser
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from vgen.config.compose import compose_run_config
from vgen.hashing import file_sha256
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH
from vgen.media.ffmpeg import run_ffmpeg
from vgen.report import write_report
from vgen.sweep.summary import SUMMARY_JSONL_NAME

FRAMES, FPS, SIZE = 9, 16, (160, 96)


def make_videos(directory: Path, count: int) -> list[Path]:
    """``count`` distinct 9-frame h264 clips from one encode, split at keyframes by ffmpeg's segment muxer."""
    directory.mkdir(parents=True)
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate={FPS}", "-frames:v", str(count * FRAMES),
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(FRAMES), "-sc_threshold", "0",
                "-force_key_frames", f"expr:eq(mod(n,{FRAMES}),0)", "-f", "segment",
                "-segment_time", str(FRAMES / FPS), "-reset_timestamps", "1", str(directory / "clip%04d.mp4")],
               what=directory)
    clips = sorted(directory.glob("clip*.mp4"))
    if len(clips) != count:
        raise RuntimeError(f"expected {count} clips, ffmpeg cut {len(clips)}")
    return clips


def make_sweep(root: Path, count: int) -> Path:
    sweep = root / f"sweep_{count}"
    clips = make_videos(root / f"clips_{count}", count)
    base = OmegaConf.to_container(compose_run_config(sweep / "0"), resolve=True)
    columns = max(1, round(math.sqrt(count)))
    with open(sweep.parent / f"{sweep.name}.summary.tmp", "w") as summary:
        for num, clip in enumerate(clips):
            seed, guidance = num // columns + 1, float(num % columns + 1)
            run_dir = sweep / str(num)
            video = run_dir / "videos" / f"0000_{num:08x}_bench.mp4"
            video.parent.mkdir(parents=True)
            shutil.move(clip, video)
            config = {**base, "run_dir": str(run_dir),
                      "generation": {**base["generation"], "seed": seed, "guidance_scale": guidance}}
            (run_dir / "resolved_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            job = {**config["generation"], "prompt": f"benchmark clip {num}"}
            row = {"job_id": f"{num:016x}", "job_index": 0, "status": "success", "run_id": "bench",
                   "inputs": {"job": job, "prompt": job["prompt"], "enhanced_prompt": None,
                              "model": {"name": "tiny_wan", "snapshot": "bench"}},
                   "timings": {"load_s": 0.0, "generate_s": 1.0, "persist_s": 0.1},
                   "artifacts": [{"role": "video", "kind": "video", "path": str(video.relative_to(run_dir)),
                                  "container": "mp4", "codec": "h264", "width": SIZE[0], "height": SIZE[1],
                                  "frames": FRAMES, "fps": FPS, "duration_s": FRAMES / FPS,
                                  "sha256": file_sha256(video), "extra": {"pix_fmt": "yuv420p"}}]}
            manifest = run_dir / MANIFEST_RELATIVE_PATH
            manifest.parent.mkdir(parents=True)
            manifest.write_text(json.dumps(row) + "\n")
            overrides = [f"generation.seed={seed}", f"generation.guidance_scale={guidance}"]
            summary.write(json.dumps({"num": num, "overrides": overrides, "status": "success", "error": None,
                                      "run_dir": str(run_dir), "jobs": {"success": 1},
                                      "artifacts": [row["artifacts"][0]["path"]]}) + "\n")
    (sweep.parent / f"{sweep.name}.summary.tmp").rename(sweep / SUMMARY_JSONL_NAME)
    return sweep


def time_report(sweep: Path) -> dict[str, float]:
    started = time.perf_counter()
    write_report(sweep)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    write_report(sweep)
    return {"fresh_s": round(cold, 2), "rewrite_s": round(time.perf_counter() - started, 2),
            "html_kb": round((sweep / "report.html").stat().st_size / 1024),
            "png_kb": round((sweep / "report.png").stat().st_size / 1024)}


PAGE_FACTS = """
const nav = performance.getEntriesByType("navigation")[0];
const videos = Array.from(document.querySelectorAll("main video"));
const images = Array.from(document.querySelectorAll("main img"));
return {dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd), load_ms: Math.round(nav.loadEventEnd),
        cells: document.querySelectorAll(".cell").length,
        video_elements_made: videos.length, placeholders_left: document.querySelectorAll("main .player").length,
        posters_fetched: images.filter((i) => i.complete && i.naturalWidth > 0).length + videos.filter((v) => v.poster).length,
        videos_loading: videos.filter((v) => v.readyState > 0 || v.networkState === 2).length};
"""


def browser_load(page: Path) -> dict[str, object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        driver.get(page.as_uri())
        time.sleep(1.0)  # let the observer assign the first posters
        facts = driver.execute_script(PAGE_FACTS)
        started = time.perf_counter()
        driver.execute_script("document.getElementById('search').value = 'clip 49';"
                              "document.getElementById('search').dispatchEvent(new Event('input'));")
        facts["search_ms"] = round((time.perf_counter() - started) * 1000)
        return facts
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--browser", action="store_true", help="also load the largest report in headless chromium")
    parser.add_argument("--keep", type=Path, help="build the sweeps here and keep them (default: a temp dir)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="vgen-bench-report-"))
    try:
        sweeps = {}
        for count in args.points:
            sweeps[count] = make_sweep(root, count)
            print(json.dumps({"artifacts": count, **time_report(sweeps[count])}), flush=True)
        if args.browser:
            largest = max(sweeps)
            print(json.dumps({"browser_cells": largest, **browser_load(sweeps[largest] / "report.html")}), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
