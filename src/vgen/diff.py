"""``python -m vgen.diff RUN_A RUN_B``: how two vgen runs differ.

Reports the resolved config values that differ (not just the overrides), the resolved jobs that
differ (each job's settings as the manifest recorded them, seed actually used; not how the queue
was written: inline jobs, a prompts file or repeats), model / LoRA / enhancer and package version
differences, and which outputs changed: jobs are matched by ``job_id``, the rest by job index;
artifacts by role. An artifact is unchanged when its file sha256 is equal or,
failing that, its decoded frames (pixels, samples) are. Exit code 0 when the runs do not differ,
1 when they do, 2 for a dir that is not a vgen run (like diff(1)).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgen.cli import RESOLVED_CONFIG_NAME
from vgen.errors import ConfigError, VgenError
from vgen.hashing import file_sha256
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, latest_rows, read_rows
from vgen.media.metadata_io import VIDEO_SUFFIXES

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
# How a run ran, not what it made: never reported as a config difference.
RUN_SPECIFIC_KEYS = ("run_dir", "queue.resume", "queue.resume_from")
# How the queue was written down; the resolved jobs are compared instead (RunSnapshot.jobs).
JOB_SOURCE_KEYS = ("queue.jobs", "queue.prompts_file", "queue.repeats")
# Job keys the manifest records that are not job settings (see ProductionManager.inputs): the
# seed a job asked for (-1 = random); ``seed`` is the one it used.
RECORD_ONLY_JOB_KEYS = ("requested_seed",)
ADAPTER_SECTIONS = ("model", "lora", "enhancer")
ABSENT = "<absent>"


@dataclass
class RunSnapshot:
    """What a finished run recorded: its resolved config and the latest manifest row of every job."""

    run_dir: Path
    config: dict[str, Any]
    overrides: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunSnapshot":
        from omegaconf import OmegaConf

        run_dir = Path(run_dir)
        manifest = run_dir / MANIFEST_RELATIVE_PATH
        config_file = run_dir / RESOLVED_CONFIG_NAME
        if not run_dir.is_dir():
            raise ConfigError(f"{run_dir}: no such directory")
        if not manifest.is_file() or not config_file.is_file():
            missing = MANIFEST_RELATIVE_PATH if not manifest.is_file() else RESOLVED_CONFIG_NAME
            raise ConfigError(f"{run_dir}: not a vgen run dir (no {missing})")
        config = OmegaConf.to_container(OmegaConf.load(config_file))
        overrides_file = run_dir / ".hydra" / "overrides.yaml"
        rows = latest_rows(read_rows(manifest))
        if overrides_file.is_file():
            overrides = list(OmegaConf.to_container(OmegaConf.load(overrides_file)))
        else:
            overrides = list(rows[0]["inputs"].get("overrides", [])) if rows else []
        return cls(run_dir=run_dir, config=config, overrides=overrides, rows=rows)

    def artifact_path(self, artifact: dict[str, Any]) -> Path:
        return self.run_dir / artifact["path"]  # absolute paths stay absolute

    def jobs(self) -> list[dict[str, Any]]:
        """Every job's resolved settings as the manifest recorded them (the seed actually used)."""
        return [{key: value for key, value in row["inputs"]["job"].items() if key not in RECORD_ONLY_JOB_KEYS}
                for row in self.rows]

    def versions(self) -> dict[str, Any]:
        """Package versions the run recorded (the latest row's)."""
        return dict(self.rows[-1].get("versions", {})) if self.rows else {}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b[0].c": leaf}`` for every leaf of nested dicts and lists."""
    if isinstance(value, dict):
        items = [(f"{prefix}.{key}" if prefix else str(key), child) for key, child in value.items()]
    elif isinstance(value, list) and value:
        items = [(f"{prefix}[{index}]", child) for index, child in enumerate(value)]
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, child in items:
        flat.update(flatten(child, key))
    return flat


def mapping_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, value_a, value_b)`` for every flattened key whose values differ (``ABSENT`` if missing)."""
    flat_a, flat_b = flatten(a), flatten(b)
    keys = sorted(set(flat_a) | set(flat_b))
    return [(key, flat_a.get(key, ABSENT), flat_b.get(key, ABSENT))
            for key in keys if flat_a.get(key, ABSENT) != flat_b.get(key, ABSENT)]


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved config without the keys that differ between any two runs by construction."""
    return {key: value for key, value in config.items() if key not in RUN_SPECIFIC_KEYS}


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Resolved config differences, except run-specific keys and how the queue was written."""
    def ignored(key: str) -> bool:
        return any(key == prefix or key.startswith((f"{prefix}.", f"{prefix}["))
                   for prefix in (*RUN_SPECIFIC_KEYS, *JOB_SOURCE_KEYS))

    return [entry for entry in mapping_differences(a, b) if not ignored(entry[0])]


# ------------------------------------------------------------------------------- artifact content


def decode(path: Path) -> Any | None:
    """The media content of ``path`` as an array (frames, pixels or samples); None for other files."""
    import numpy as np

    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        from vgen.media.probe import decode_video

        return decode_video(path)
    if suffix in IMAGE_SUFFIXES:
        from PIL import Image

        with Image.open(path) as image:
            return np.asarray(image)
    if suffix in AUDIO_SUFFIXES:
        import soundfile

        return soundfile.read(str(path), always_2d=True)[0]
    return None


def compare_files(a: Path, b: Path) -> tuple[bool, str]:
    """(same content?, how it was decided). Embedded metadata differs between runs, so a sha256
    mismatch falls back to comparing decoded content."""
    import numpy as np

    for path in (a, b):
        if not path.is_file():
            return False, f"missing file {path}"
    if file_sha256(a) == file_sha256(b):
        return True, "identical file (sha256)"
    content_a, content_b = decode(a), decode(b)
    if content_a is None or content_b is None:
        return False, "sha256 differs"
    if content_a.shape != content_b.shape:
        return False, f"decoded shapes differ: {content_a.shape} vs {content_b.shape}"
    if np.array_equal(content_a, content_b):
        return True, "decoded content equal"
    delta = np.abs(content_a.astype(np.float64) - content_b.astype(np.float64)).max()
    return False, f"decoded content differs (max abs difference {delta:g})"


def compare_rows(run_a: RunSnapshot, row_a: dict | None, run_b: RunSnapshot,
                 row_b: dict | None) -> list[dict[str, Any]]:
    """One entry per artifact role (in order) of two rows of the same job."""
    if row_a is None or row_b is None:
        only = "A" if row_b is None else "B"
        return [{"role": None, "same": False, "how": f"job only in run {only}", "a": None, "b": None}]
    if row_a["status"] != row_b["status"] or row_a["status"] != "success":
        same = row_a["status"] == row_b["status"]
        how = f"status {row_a['status']} vs {row_b['status']}"
        return [{"role": None, "same": same, "how": how, "a": None, "b": None}]
    entries = []
    artifacts_b = list(row_b["artifacts"])
    for artifact in row_a["artifacts"]:
        match = next((other for other in artifacts_b if other["role"] == artifact["role"]), None)
        if match is None:
            entries.append({"role": artifact["role"], "same": False, "how": "only in run A",
                            "a": artifact["path"], "b": None})
            continue
        artifacts_b.remove(match)
        same, how = compare_files(run_a.artifact_path(artifact), run_b.artifact_path(match))
        entries.append({"role": artifact["role"], "same": same, "how": how, "a": artifact["path"], "b": match["path"]})
    entries += [{"role": other["role"], "same": False, "how": "only in run B", "a": None, "b": other["path"]}
                for other in artifacts_b]
    return entries


def match_jobs(run_a: RunSnapshot, run_b: RunSnapshot) -> list[tuple[dict | None, dict | None, str]]:
    """Pairs of rows for the same job: by job_id first, then the unmatched ones by job index."""
    by_id_b = {row["job_id"]: row for row in run_b.rows}
    pairs: list[tuple[dict | None, dict | None, str]] = []
    unmatched_a = []
    for row in run_a.rows:
        if row["job_id"] in by_id_b:
            pairs.append((row, by_id_b.pop(row["job_id"]), "job_id"))
        else:
            unmatched_a.append(row)
    by_index_b = {row["job_index"]: row for row in by_id_b.values()}
    for row in unmatched_a:
        pairs.append((row, by_index_b.pop(row["job_index"], None), "index"))
    pairs += [(None, row, "index") for row in by_index_b.values()]
    return sorted(pairs, key=lambda pair: (pair[0] or pair[1])["job_index"])


def diff_runs(run_a: RunSnapshot, run_b: RunSnapshot) -> dict[str, Any]:
    """Everything that differs, as a JSON-ready dict (``differs`` tells whether anything does)."""
    config = config_differences(run_a.config, run_b.config)
    jobs = mapping_differences({"jobs": run_a.jobs()}, {"jobs": run_b.jobs()})
    outputs = []
    for row_a, row_b, matched_by in match_jobs(run_a, run_b):
        artifacts = compare_rows(run_a, row_a, run_b, row_b)
        adapters_a = (row_a or {}).get("adapter_payload_hashes", {})
        adapters_b = (row_b or {}).get("adapter_payload_hashes", {})
        outputs.append({
            "job_index": (row_a or row_b)["job_index"],
            "job_id_a": row_a and row_a["job_id"], "job_id_b": row_b and row_b["job_id"],
            "matched_by": matched_by,
            "changed": not all(entry["same"] for entry in artifacts),
            "adapter_payloads": mapping_differences(adapters_a, adapters_b),
            "artifacts": artifacts,
        })
    versions = mapping_differences(run_a.versions(), run_b.versions())
    report = {
        "run_a": str(run_a.run_dir), "run_b": str(run_b.run_dir),
        "overrides": {"a": run_a.overrides, "b": run_b.overrides,
                      "only_a": [o for o in run_a.overrides if o not in run_b.overrides],
                      "only_b": [o for o in run_b.overrides if o not in run_a.overrides]},
        "config": config,
        "jobs": jobs,
        "adapters": [entry for entry in config if entry[0].split(".")[0].split("[")[0] in ADAPTER_SECTIONS],
        "versions": versions,
        "outputs": outputs,
    }
    report["differs"] = bool(config or jobs or versions or any(o["changed"] or o["adapter_payloads"] for o in outputs))
    return report


def format_report(report: dict[str, Any]) -> str:
    def value(text: Any) -> str:
        return json.dumps(text, ensure_ascii=False) if not isinstance(text, str) or text == ABSENT else repr(text)

    def section(title: str, entries: list[tuple[str, Any, Any]]) -> list[str]:
        if not entries:
            return [f"{title}: no differences"]
        return [f"{title}:"] + [f"  {key}: {value(a)} -> {value(b)}" for key, a, b in entries]

    lines = [f"A: {report['run_a']}", f"B: {report['run_b']}", ""]
    overrides = report["overrides"]
    lines += [f"Overrides only in A: {' '.join(overrides['only_a']) or '-'}",
              f"Overrides only in B: {' '.join(overrides['only_b']) or '-'}", ""]
    lines += section("Resolved config", report["config"])
    lines += section("Resolved jobs", report["jobs"])
    lines += section("Model / LoRA / enhancer", report["adapters"])
    lines += section("Package versions", report["versions"])
    lines += ["", "Outputs (jobs matched by job_id, then by index):"]
    for output in report["outputs"]:
        id_a, id_b = output["job_id_a"], output["job_id_b"]
        ids = id_a if id_a == id_b else f"{id_a} / {id_b}"
        lines.append(f"  job {output['job_index']} [{ids}]: {'CHANGED' if output['changed'] else 'unchanged'}")
        for entry in output["artifacts"]:
            lines.append(f"    {entry['role'] or 'job'}: {entry['how']} ({entry['a']} vs {entry['b']})")
        for key, a, b in output["adapter_payloads"]:
            lines.append(f"    adapter payload {key}: {a} -> {b}")
    changed = sum(output["changed"] for output in report["outputs"])
    verdict = "differ" if report["differs"] else "match"
    lines += ["", f"{changed} of {len(report['outputs'])} job(s) changed; runs {verdict}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vgen.diff", description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path, help="a vgen run dir (holds manifests/run_history.jsonl)")
    parser.add_argument("run_b", type=Path, help="another vgen run dir")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = diff_runs(RunSnapshot.load(args.run_a), RunSnapshot.load(args.run_b))
    except VgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    return 1 if report["differs"] else 0


if __name__ == "__main__":
    sys.exit(main())
