"""``python -m vgen.reproduce SOURCE``: re-run exactly what SOURCE recorded and check the results match.

SOURCE is a run dir, one manifest row (``RUN_DIR/manifests/run_history.jsonl:LINE``, 1-based), a
job id (``--job ID`` with a run dir, or alone: searched in the manifests under ``--search-root``),
or a video/image/audio file with vgen metadata (embedded or a ``.json`` sidecar).

The new run is ``python -m vgen`` in a subprocess, composed from the recorded resolved config
alone: it is written as a global overlay (with every config group removed from the defaults, so
today's group files cannot leak in), and the queue becomes the recorded jobs with the seeds actually
used. Each original artifact is then compared with its rerun (file sha256, else decoded content).
Exit code 0 when every artifact is identical, 1 when some differ or are missing, 2 for bad input.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgen.cli import RESOLVED_CONFIG_NAME
from vgen.conditioning.recorded import check_recorded_files, restore_embedded_images
from vgen.config.schema import GROUP_SCHEMAS
from vgen.diff import RECORD_ONLY_JOB_KEYS, RunSnapshot, compare_files, config_differences, mapping_differences
from vgen.errors import ConfigError, VgenError
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, latest_rows, package_versions, read_rows

OVERLAY_GROUP = "vgen_reproduce"
REPORT_NAME = "reproduce_report.json"
MIN_JOB_ID_PREFIX = 8


@dataclass
class OriginalJob:
    """One recorded job: its exact settings and the artifacts it produced (absolute paths)."""

    job_id: str
    settings: dict[str, Any]
    artifacts: list[dict[str, Any]]  # {"role", "path"}
    versions: dict[str, Any]
    files: dict[str, Any] = field(default_factory=dict)  # recorded input files (inputs.files)
    embedded_images: dict[str, bytes] = field(default_factory=dict)  # source images stored in the artifact


@dataclass
class ReproductionSource:
    description: str
    config: dict[str, Any]  # the resolved config of the original run
    jobs: list[OriginalJob]


# ----------------------------------------------------------------------------- reading sources


def job_from_row(row: dict[str, Any], run_dir: Path, where: str) -> OriginalJob:
    if row.get("status") != "success":
        raise ConfigError(f"{where}: job {row.get('job_id')} has status {row.get('status')!r}: no output to reproduce")
    return OriginalJob(
        job_id=row["job_id"], settings=dict(row["inputs"]["job"]), versions=dict(row.get("versions", {})),
        artifacts=[{"role": a["role"], "path": run_dir / a["path"]} for a in row["artifacts"]],
        files=dict(row["inputs"].get("files") or {}),
    )


def source_from_run(run_dir: Path, rows: list[dict[str, Any]] | None = None,
                    description: str | None = None) -> ReproductionSource:
    """Every successful job of a run dir (or only ``rows``)."""
    run = RunSnapshot.load(run_dir)
    rows = [row for row in run.rows if row["status"] == "success"] if rows is None else rows
    if not rows:
        raise ConfigError(f"{run_dir}: no successful job in {MANIFEST_RELATIVE_PATH}: nothing to reproduce")
    jobs = [job_from_row(row, run_dir, str(run_dir)) for row in rows]
    return ReproductionSource(description or f"run {run_dir}", run.config, jobs)


def source_from_manifest_line(spec: str) -> ReproductionSource:
    path_text, _, line_text = spec.rpartition(":")
    path = Path(path_text)
    if not line_text.isdigit() or int(line_text) < 1:
        raise ConfigError(f"{spec}: expected MANIFEST:LINE with a line number >= 1")
    if not path.is_file():
        raise ConfigError(f"{path}: no such manifest")
    lines = path.read_text(encoding="utf-8").splitlines()
    number = int(line_text)
    if number > len(lines):
        raise ConfigError(f"{spec}: the manifest has only {len(lines)} line(s)")
    try:
        row = json.loads(lines[number - 1])
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{spec}: not a JSON manifest row ({exc.msg})") from None
    run_dir = path.parent.parent  # <run_dir>/manifests/run_history.jsonl
    return source_from_run(run_dir, [row], f"manifest row {spec}")


def find_job_rows(job_id: str, roots: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Rows whose job id starts with ``job_id`` in every manifest under ``roots`` (latest first)."""
    if len(job_id) < MIN_JOB_ID_PREFIX:
        raise ConfigError(f"job id {job_id!r}: give at least {MIN_JOB_ID_PREFIX} characters")
    found = []
    for root in roots:
        for manifest in root.rglob(str(MANIFEST_RELATIVE_PATH)):
            found += [(manifest.parent.parent, row) for row in read_rows(manifest)
                      if row.get("job_id", "").startswith(job_id) and row.get("status") == "success"]
    return sorted(found, key=lambda item: item[1]["timestamp"], reverse=True)


def source_from_job_id(job_id: str, roots: list[Path]) -> ReproductionSource:
    found = find_job_rows(job_id, roots)
    if not found:
        raise ConfigError(f"job id {job_id}: no successful job with this id in the manifests under "
                          + ", ".join(str(root) for root in roots))
    run_dir, row = found[0]
    note = f" (latest of {len(found)} matching rows)" if len(found) > 1 else ""
    return source_from_run(run_dir, [row], f"job {row['job_id']} of run {run_dir}{note}")


def source_from_artifact(path: Path) -> ReproductionSource:
    """The metadata stored with a media file is the whole recipe: resolved config + job settings."""
    from vgen.media.metadata_io import read_metadata, read_source_images

    metadata = read_metadata(path)
    missing = [key for key in ("config", "inputs", "job_id") if key not in metadata]
    if missing:
        raise ConfigError(f"{path}: its vgen metadata lacks {', '.join(missing)}: cannot reproduce from it")
    job = OriginalJob(
        job_id=metadata["job_id"], settings=dict(metadata["inputs"]["job"]),
        versions={"vgen": metadata["vgen_version"]} if "vgen_version" in metadata else {},
        artifacts=[{"role": None, "path": path}],  # role unknown: matched by file type
        files=dict(metadata["inputs"].get("files") or {}), embedded_images=read_source_images(path),
    )
    return ReproductionSource(f"artifact {path}", metadata["config"], [job])


def load_source(spec: str, *, job_id: str | None = None, search_roots: list[Path] | None = None) -> ReproductionSource:
    path = Path(spec)
    if job_id is not None:
        return source_from_job_id(job_id, [path])
    if path.is_dir():
        return source_from_run(path)
    if path.is_file():
        return source_from_artifact(path)
    if ":" in spec and Path(spec.rpartition(":")[0]).is_file():
        return source_from_manifest_line(spec)
    if os.sep not in spec and "." not in spec:
        return source_from_job_id(spec, search_roots or [Path.cwd()])
    raise ConfigError(f"{spec}: no such run dir, file, manifest row or job id")


# ------------------------------------------------------------------------------------ rerunning


def rerun_jobs(source: ReproductionSource) -> list[dict[str, Any]]:
    """The queue of the rerun: each job's recorded settings, seed included, in the original order."""
    return [{key: value for key, value in job.settings.items() if key not in RECORD_ONLY_JOB_KEYS}
            for job in source.jobs]


def overlay_config(source: ReproductionSource) -> dict[str, Any]:
    """The recorded config as a global overlay: same values, the recorded jobs, nothing run-specific."""
    overlay = copy.deepcopy(source.config)
    overlay.pop("run_dir", None)
    overlay["dry_run"] = False
    overlay["queue"] = {**overlay.get("queue", {}), "jobs": rerun_jobs(source), "prompts_file": None,
                        "repeats": 1, "resume": False, "resume_from": None}
    if isinstance(overlay.get("control"), dict):
        overlay["control"]["enabled"] = False  # no control server for a rerun; outputs do not depend on it
    return overlay


def escape_interpolations(value: Any) -> Any:
    """Recorded strings are literal: a prompt containing ``${...}`` must not be resolved again."""
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, dict):
        return {key: escape_interpolations(child) for key, child in value.items()}
    if isinstance(value, list):
        return [escape_interpolations(child) for child in value]
    return value


def rerun_command(config_dir: Path, run_dir: Path) -> list[str]:
    removed_groups = [f"~{group}" for group in GROUP_SCHEMAS]
    return [sys.executable, "-m", "vgen", f"--config-dir={config_dir}", f"+{OVERLAY_GROUP}=snapshot",
            *removed_groups, f"hydra.run.dir={run_dir}"]


def run_again(source: ReproductionSource, run_dir: Path) -> int:
    """Run ``python -m vgen`` on the overlay into ``run_dir``; its exit code."""
    from omegaconf import OmegaConf

    with tempfile.TemporaryDirectory(prefix="vgen-reproduce-") as config_dir:
        group_dir = Path(config_dir) / OVERLAY_GROUP
        group_dir.mkdir()
        overlay = OmegaConf.create(escape_interpolations(overlay_config(source)))
        text = "# @package _global_\n" + OmegaConf.to_yaml(overlay)
        (group_dir / "snapshot.yaml").write_text(text, encoding="utf-8")
        return subprocess.run(rerun_command(Path(config_dir), run_dir)).returncode


# ------------------------------------------------------------------------------------ comparing


def pick_artifact(original: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rerun artifact for ``original``: same role, or (role unknown) same file type."""
    for candidate in candidates:
        if original["role"] is not None and candidate["role"] == original["role"]:
            return candidate
        if original["role"] is None and Path(candidate["path"]).suffix == Path(original["path"]).suffix:
            return candidate
    return None


def compare_runs(source: ReproductionSource, run_dir: Path) -> list[dict[str, Any]]:
    """Per original artifact: whether the rerun's counterpart (same job index and role) is identical."""
    rerun_rows = latest_rows(read_rows(run_dir / MANIFEST_RELATIVE_PATH))
    rows = {row["job_index"]: row for row in rerun_rows}
    results = []
    for index, job in enumerate(source.jobs):
        row = rows.get(index)
        succeeded = row is not None and row["status"] == "success"
        candidates = [{"role": a["role"], "path": run_dir / a["path"]} for a in row["artifacts"]] if succeeded else []
        for original in job.artifacts:
            rerun = pick_artifact(original, candidates)
            if rerun is None:
                same, how = False, f"no rerun artifact (rerun job status: {row['status'] if row else 'not run'})"
            else:
                candidates.remove(rerun)
                same, how = compare_files(Path(original["path"]), Path(rerun["path"]))
            results.append({"job_id": job.job_id, "job_index": index, "role": original["role"], "identical": same,
                            "how": how, "original": str(original["path"]), "rerun": rerun and str(rerun["path"])})
    return results


def default_run_dir() -> Path:
    now = time.time()
    stamp = time.strftime("%Y-%m-%d/%H-%M-%S", time.localtime(now)) + f"-{int(now % 1 * 1e6):06d}"
    return Path("outputs") / "reproduce" / f"{stamp}_{os.getpid()}"


def use_recorded_inputs(source: ReproductionSource, run_dir: Path) -> None:
    """Refuse inputs that changed on disk; write embedded source images into ``run_dir`` and use them."""
    for job in source.jobs:
        check_recorded_files(job.files, f"job {job.job_id}", skip=tuple(job.embedded_images))
    for job in source.jobs:
        if job.embedded_images:
            job.settings = restore_embedded_images(job.settings, job.embedded_images,
                                                   run_dir / "source_images" / job.job_id)


def reproduce(source: ReproductionSource, run_dir: Path) -> dict[str, Any]:
    """Rerun ``source`` into ``run_dir`` and return the report (also written to ``run_dir``)."""
    use_recorded_inputs(source, run_dir)
    exit_code = run_again(source, run_dir)
    if exit_code == 2:
        raise ConfigError(f"the rerun rejected the recorded config (exit 2); see the log above and {run_dir}")
    artifacts = compare_runs(source, run_dir)
    config_file = run_dir / RESOLVED_CONFIG_NAME
    recorded = {key: value for key, value in source.config.items() if key not in ("queue", "dry_run", "control")}
    config_drift = []
    if config_file.is_file():
        from omegaconf import OmegaConf

        rerun_config = OmegaConf.to_container(OmegaConf.load(config_file))
        config_drift = config_differences(recorded, {key: rerun_config.get(key) for key in recorded})
    recorded_versions = source.jobs[0].versions
    current_versions = {key: package_versions().get(key) for key in recorded_versions}
    version_drift = mapping_differences(recorded_versions, current_versions)
    report = {
        "source": source.description, "run_dir": str(run_dir), "rerun_exit_code": exit_code,
        "identical": bool(artifacts) and all(entry["identical"] for entry in artifacts),
        "artifacts": artifacts, "config_drift": config_drift, "version_drift": version_drift,
    }
    (run_dir / REPORT_NAME).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"Reproduced {report['source']}", f"into {report['run_dir']}", ""]
    if report["rerun_exit_code"]:
        lines.append(f"  warning: the rerun exited with code {report['rerun_exit_code']} (see its log above)")
    for entry in report["artifacts"]:
        verdict = "identical" if entry["identical"] else "DIFFERENT"
        lines.append(f"  job {entry['job_index']} [{entry['job_id']}] {entry['role'] or Path(entry['original']).name}: "
                     f"{verdict} ({entry['how']})")
    for key, old, new in report["version_drift"]:
        lines.append(f"  note: package {key} was {old}, now {new}")
    for key, old, new in report["config_drift"]:
        lines.append(f"  warning: config {key} was {old!r}, the rerun used {new!r}")
    same = sum(entry["identical"] for entry in report["artifacts"])
    lines += ["", f"{same} of {len(report['artifacts'])} artifact(s) identical"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vgen.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="RUN_DIR, RUN_DIR/manifests/run_history.jsonl:LINE, a job id, or a media file")
    parser.add_argument("--job", metavar="ID", help="reproduce only this job of the run dir SOURCE")
    parser.add_argument("--out", type=Path, metavar="DIR", help="the new run dir (default outputs/reproduce/<time>)")
    parser.add_argument("--search-root", type=Path, action="append", metavar="DIR",
                        help="where a bare job id is searched (default: the current dir; repeatable)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        source = load_source(args.source, job_id=args.job, search_roots=args.search_root)
        run_dir = args.out or default_run_dir()
        if (run_dir / MANIFEST_RELATIVE_PATH).exists():
            raise ConfigError(f"--out {run_dir}: already holds a vgen run; pick a new dir")
        report = reproduce(source, run_dir)
    except VgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
