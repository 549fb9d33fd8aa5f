"""Benchmark the prompt enhancer's fidelity: recall, invented subjects, words and time per prompt, per mode.

Runs the real enhancer (default ``enhancer=smollm2``, the bundled SmolLM2-135M GGUF, on CPU) over
the prompt set in tests/data/enhancer_prompts.txt and prints one row per mode:
mean and worst content-word recall of the prompt in the result, the share of prompts whose result
names an invented subject, how many kept the user's prompt (fallback), words, and seconds per prompt
(model load excluded): wall-clock and this process's CPU time, with the load average sampled while
it runs, since the CPU may be shared. ``--json`` is rewritten after every prompt.

  python scripts/bench_enhancer.py --modes expand rewrite --json bench_enhancer.json
  python scripts/bench_enhancer.py --limit 5 enhancer.repetition_penalty=1.1   # overrides after options
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from vgen.enhancer import PromptEnhancerBridge
from vgen.enhancer.fidelity import score

PROMPTS_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "enhancer_prompts.txt"


def read_prompts(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def enhancer_config(mode: str, overrides: list[str]) -> dict:
    from omegaconf import OmegaConf

    from vgen.config.compose import compose_run_config

    cfg = compose_run_config(tempfile.gettempdir(), ["enhancer=smollm2", "enhancer.device=cpu", f"enhancer.mode={mode}",
                                                    *overrides])
    return OmegaConf.to_container(cfg.enhancer, resolve=True)


def run_mode(bridge: PromptEnhancerBridge, cfg: dict, prompts: list[str], task: str, report) -> dict:
    bridge.prime(cfg)
    rows: list[dict] = []
    for prompt in prompts:
        load_before = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), time.process_time()
        result = bridge.enhance(cfg, prompt, task=task)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        fidelity = score(prompt, result.enhanced_prompt)
        record = result.fidelity or {}
        rows.append({
            "prompt": prompt, "enhanced": result.enhanced_prompt, "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu_seconds, 2),
            "recall": fidelity.recall, "invented": list(fidelity.invented), "unlisted": list(fidelity.unlisted),
            "words": fidelity.words, "attempts": len(record.get("attempts", [])),
            "first_attempt": (record.get("attempts") or [None])[0],  # before any retry or fallback
            "fallback_reason": record.get("fallback_reason"), "error": result.error,
            "load_avg_1m": round((load_before + os.getloadavg()[0]) / 2, 2),
        })
        report(summary(cfg["mode"], rows))
        print(f"  {seconds:5.1f}s ({cpu_seconds:5.1f}s cpu) recall {fidelity.recall:.2f} invented {list(fidelity.invented)} "
              f"{fidelity.words}w  {result.enhanced_prompt}", flush=True)
    return summary(cfg["mode"], rows)


def summary(mode: str, rows: list[dict]) -> dict:
    changed = [r for r in rows if r["enhanced"] != r["prompt"]]
    return {
        "mode": mode,
        "prompts": len(rows),
        "mean_recall": round(statistics.fmean(r["recall"] for r in rows), 4),
        "worst_recall": min(r["recall"] for r in rows),
        "invented_rate": round(sum(bool(r["invented"]) for r in rows) / len(rows), 4),
        "kept_original": len(rows) - len(changed),
        "first_attempt_mean_recall": _mean([r["first_attempt"]["recall"] for r in rows if r["first_attempt"]]),
        "first_attempt_invented_rate": _mean([bool(r["first_attempt"]["invented"]) for r in rows if r["first_attempt"]]),
        "errors": sum(r["error"] is not None for r in rows),
        "mean_words": round(statistics.fmean(r["words"] for r in rows), 1),
        "mean_attempts": round(statistics.fmean(r["attempts"] for r in rows), 2),
        "mean_seconds": round(statistics.fmean(r["seconds"] for r in rows), 2),
        "max_seconds": max(r["seconds"] for r in rows),
        "mean_cpu_seconds": round(statistics.fmean(r["cpu_seconds"] for r in rows), 2),
        "mean_load_avg_1m": round(statistics.fmean(r["load_avg_1m"] for r in rows), 2),
        "rows": rows,
    }


def _mean(values: list) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=["expand", "rewrite"], choices=["expand", "rewrite"])
    parser.add_argument("--prompts", type=Path, default=PROMPTS_FILE)
    parser.add_argument("--limit", type=int, default=0, help="first N prompts only")
    parser.add_argument("--task", default="t2v")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the enhancer, e.g. enhancer.retries=0")
    args = parser.parse_args()
    prompts = read_prompts(args.prompts)[: args.limit or None]
    bridge = PromptEnhancerBridge()
    report = {"cpu_count": os.cpu_count(), "prompts_file": str(args.prompts), "overrides": args.overrides,
              "modes": []}

    def save(partial: dict | None = None) -> None:
        if args.json:
            modes = report["modes"] + ([partial] if partial else [])
            args.json.write_text(json.dumps({**report, "modes": modes}, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")

    for mode in args.modes:
        print(f"mode={mode}: {len(prompts)} prompts", flush=True)
        report["modes"].append(run_mode(bridge, enhancer_config(mode, args.overrides), prompts, args.task, save))
    save()
    header = ("mode", "prompts", "mean_recall", "worst_recall", "invented_rate", "kept_original",
              "first_attempt_mean_recall", "first_attempt_invented_rate", "errors",
              "mean_words", "mean_attempts", "mean_seconds", "max_seconds", "mean_cpu_seconds", "mean_load_avg_1m")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in report["modes"]:
        print("| " + " | ".join(str(row[k]) for k in header) + " |")


if __name__ == "__main__":
    main()
