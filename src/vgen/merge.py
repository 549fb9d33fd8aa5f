"""``python -m vgen.merge SWEEP_DIR [--out DIR] [--rerun-missing [--launch]]``: one view of a sharded sweep.

Finds every run dir under SWEEP_DIR (shards, sweep points, reruns), merges their manifests into
``OUT/run_history.jsonl`` (every row unchanged except artifact paths, made relative to OUT) and
reports coverage: the jobs expected (expanded from each run's saved resolved config, no model
loaded), those that succeeded exactly once, failed, are missing, or succeeded more than once; the
report is also written to ``OUT/merge_coverage.json``. Jobs are matched by ``job_id``, so a sweep
is one queue split into shards (plus reruns), not several models over the same prompts.

Exit codes: 0 every expected job has exactly one success, 1 some job is missing, failed or
duplicated, 2 bad input (no such dir, no run dirs, a saved config that no longer expands).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from vgen.cli import RESOLVED_CONFIG_NAME
from vgen.errors import ConfigError, DiskFullError, VgenError, is_disk_full
from vgen.hashing import canonical_json
from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, manifest_lines, row_json
from vgen.rundir.lock import run_dir_holder

MERGED_MANIFEST_NAME = "run_history.jsonl"
COVERAGE_NAME = "merge_coverage.json"
HYDRA_CONFIG = Path(".hydra") / "hydra.yaml"
ARTIFACT_PATH_FIELDS = ("path", "metadata_sidecar")
ARTIFACTS_KEY = '"artifacts":'
JSON_DECODER = json.JSONDecoder()
SKIPPED_DIRS = {"videos", "images", "manifests"}  # hold no run dirs; hidden dirs (.hydra, .submitit) neither
SHOWN_IDS = 20


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Dirs under ``sweep_dir`` (itself included) holding a saved resolved config or a manifest."""
    found = []
    for current, dirs, files in os.walk(sweep_dir):
        dirs[:] = sorted(name for name in dirs if not name.startswith(".") and name not in SKIPPED_DIRS)
        here = Path(current)
        if RESOLVED_CONFIG_NAME in files or (here / MANIFEST_RELATIVE_PATH).is_file():
            found.append(here)
    return found


def load_yaml(path: Path) -> Any:
    """A saved config as plain data (LibYAML when present: a merge reads one per run dir)."""
    import yaml

    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def launch_cwd(run_dir: Path) -> Path | None:
    """The directory the run was started from (relative paths in its config are relative to it)."""
    if not (run_dir / HYDRA_CONFIG).is_file():
        return None
    return Path(load_yaml(run_dir / HYDRA_CONFIG)["hydra"]["runtime"]["cwd"])


def expected_job_ids(run_dir: Path, expanded: dict[str, list[str]]) -> tuple[str, list[str]]:
    """The run's queue key and the job ids it was to run: its saved queue expanded and
    ``only_jobs``-filtered (all its shards).

    ``expanded`` holds the ids per queue key: the shards of one queue (configs equal but for
    ``queue.shard``, launched from the same folder) expand it once, not once per shard.
    """
    from vgen.jobs.expand import expand_jobs
    from vgen.jobs.shards import filter_jobs

    config_file = run_dir / RESOLVED_CONFIG_NAME
    config = load_yaml(config_file)
    if not isinstance(config, dict) or not all(isinstance(config.get(s), dict) for s in ("queue", "generation", "model")):
        raise ConfigError(f"{config_file}: not a vgen resolved config (needs queue, generation and model)")
    queue, generation = dict(config["queue"]), config["generation"]
    cwd = launch_cwd(run_dir) or Path.cwd()
    for key in ("prompts_file", "only_jobs"):
        if queue.get(key):
            queue[key] = str(cwd / Path(queue[key]).expanduser())  # an absolute path stays as it is
    key = canonical_json({"queue": {k: v for k, v in queue.items() if k != "shard"}, "generation": generation,
                          "model": config["model"], "cwd": str(cwd)})
    if key not in expanded:
        # Relative input paths of queue.jobs/generation are relative to the run's launch dir.
        try:
            jobs = expand_jobs(SimpleNamespace(**queue), generation, SimpleNamespace(**config["model"]),
                               base_dir=cwd if cwd.is_dir() else None)
        except ConfigError as error:
            raise ConfigError(f"{config_file}: {error}") from None
        expanded[key] = [job.job_id for job in filter_jobs(jobs, queue.get("only_jobs"))]
    return key, expanded[key]


def rebased_artifacts(artifacts: list[dict[str, Any]] | None, prefix: str) -> list[dict[str, Any]] | None:
    """Artifacts with relative paths re-based by ``prefix`` (the run dir seen from the merged location);
    None when nothing changes (no artifacts, only absolute paths, or the same location)."""
    if not artifacts or prefix == ".":
        return None
    moved, changed = [], False
    for artifact in artifacts:
        artifact = dict(artifact)
        for name in ARTIFACT_PATH_FIELDS:
            value = artifact.get(name)
            if value and not os.path.isabs(value):
                artifact[name], changed = f"{prefix}/{value}", True
        moved.append(artifact)
    return moved if changed else None


def without_prefix(encoded: str, prefix: str) -> str:
    """``encoded`` (re-based artifacts as vgen encodes them) with ``prefix/`` taken off every path field
    again: the old value's text when the row was written by vgen. A guess the caller checks against
    the line (a JSON value is a prefix of no other, so a match is the value), costing no encoding."""
    escaped = row_json(f"{prefix}/")[1:-1]
    for name in ARTIFACT_PATH_FIELDS:
        encoded = encoded.replace(f'"{name}":"{escaped}', f'"{name}":"')
    return encoded


def rebased_line(text: str, row: dict[str, Any], prefix: str) -> str:
    """The manifest line with its artifact paths re-based, every other byte as it was.

    Only the ``artifacts`` value is re-encoded and spliced in (re-encoding whole rows would cost most
    of a large merge). Its old text is found as :func:`without_prefix` guesses it (a vgen-written
    row), else by decoding it; a line where it cannot be found is re-encoded whole.
    """
    text = text if text.endswith("\n") else text + "\n"
    moved = rebased_artifacts(row.get("artifacts"), prefix)
    if moved is None:
        return text
    encoded = row_json(moved)
    start = text.find(ARTIFACTS_KEY)
    if start >= 0:
        value_start = start + len(ARTIFACTS_KEY)
        while text[value_start] in " \t":
            value_start += 1
        old = without_prefix(encoded, prefix)
        if text.startswith(old, value_start):
            return text[:value_start] + encoded + text[value_start + len(old):]
        try:
            value, end = JSON_DECODER.raw_decode(text, value_start)
        except ValueError:
            value = None
        if value == row["artifacts"]:
            return text[:value_start] + encoded + text[end:]
    return row_json({**row, "artifacts": moved}) + "\n"


@dataclass
class Coverage:
    run_dirs: int = 0
    configs: int = 0
    rows: int = 0
    torn_lines: int = 0
    expected: list[str] = field(default_factory=list)
    successes: Counter = field(default_factory=Counter)  # job_id -> run dirs whose latest row is a success
    seen: set[str] = field(default_factory=set)  # job ids with any row
    to_check: list[dict[str, Any]] = field(default_factory=list)  # run dirs that did not end well, their logs
    running: dict[str, str] = field(default_factory=dict)  # run dir -> pid of the vgen process still in it

    def report(self) -> dict[str, Any]:
        expected = set(self.expected)
        once = [job for job in self.expected if self.successes[job] == 1]
        duplicated = [job for job in self.expected if self.successes[job] > 1]
        failed = [job for job in self.expected if not self.successes[job] and job in self.seen]
        missing = [job for job in self.expected if job not in self.seen]
        unexpected = sorted(self.seen - expected)
        return {
            "run_dirs": self.run_dirs, "run_configs": self.configs, "rows": self.rows,
            "torn_lines": self.torn_lines, "expected": len(expected), "succeeded_once": len(once),
            "failed": len(failed), "missing": len(missing), "duplicated": len(duplicated),
            "unexpected": len(unexpected), "complete": bool(expected) and len(once) == len(expected),
            "failed_job_ids": failed, "missing_job_ids": missing, "duplicated_job_ids": duplicated,
            "unexpected_job_ids": unexpected, "running_run_dirs": self.running,
            # Only while a job failed or is missing: a run dir whose failure a rerun made good needs no look.
            **({"run_dirs_to_check": self.to_check} if self.to_check and (failed or missing) else {}),
        }


def merged_rows(sweep_dir: Path, out_dir: Path, coverage: Coverage) -> Iterator[str]:
    """Every manifest row of the sweep as a JSONL line (artifact paths relative to ``out_dir``); fills ``coverage``."""
    expanded: dict[str, list[str]] = {}
    counted: set[str] = set()  # queue keys whose ids are in ``expected``
    expected: dict[str, None] = {}
    for run_dir in find_run_dirs(sweep_dir):
        coverage.run_dirs += 1
        holder = run_dir_holder(run_dir)
        if holder:
            coverage.running[str(run_dir)] = holder
        if (run_dir / RESOLVED_CONFIG_NAME).is_file():
            coverage.configs += 1
            key, ids = expected_job_ids(run_dir, expanded)
            if key not in counted:
                counted.add(key)
                expected.update(dict.fromkeys(ids))
        prefix = Path(os.path.relpath(run_dir.resolve(), out_dir.resolve())).as_posix()
        latest: dict[str, str] = {}
        for _, text, row in manifest_lines(run_dir / MANIFEST_RELATIVE_PATH):
            if row is None:
                coverage.torn_lines += 1  # a process killed mid-write: the line is not a row
                continue
            coverage.rows += 1
            if "job_id" in row:
                latest[row["job_id"]] = row.get("status")
            yield rebased_line(text, row, prefix)
        coverage.seen.update(latest)
        coverage.successes.update(job for job, status in latest.items() if status == "success")
        check = run_dir_to_check(run_dir, set(latest.values()), out_dir)
        if check:
            coverage.to_check.append(check)
    coverage.expected = list(expected)


def run_dir_to_check(run_dir: Path, statuses: set[str], out_dir: Path) -> dict[str, Any] | None:
    """A run dir where a job's latest row is not a success, or a sweep point whose record does not say
    success (it failed, or was killed and still says running), with the logs to read (relative to
    ``out_dir``): its vgen.log and each SLURM attempt's stdout/stderr (cut per attempt); else None."""
    from vgen.sweep.attempt_logs import split_attempt_logs
    from vgen.report.collect import LOG_NAME
    from vgen.sweep.summary import read_record

    record = read_record(run_dir) or {}
    if statuses <= {"success"} and record.get("status", "success") == "success":
        return None
    logs = [run_dir / LOG_NAME] if (run_dir / LOG_NAME).is_file() else []
    for attempt in split_attempt_logs(run_dir, record.get("attempts") or []):
        logs += [run_dir / attempt[stream] for stream in ("stdout", "stderr") if attempt[stream]]
    return {"run_dir": os.path.relpath(run_dir, out_dir), "point_status": record.get("status"),
            "job_statuses": sorted(statuses), "logs": [os.path.relpath(log, out_dir) for log in logs]}


def write_error(path: Path, exc: OSError) -> VgenError:
    """A failed write to ``--out`` as one line: a full disk (exit 1), else an unusable out dir (exit 2)."""
    return (DiskFullError if is_disk_full(exc) else ConfigError)(f"cannot write {path}: {exc.strerror}")


def write_atomically(path: Path, lines: Iterator[str]) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        if exc.filename not in (None, str(temp), str(path)):
            raise  # reading a run dir failed, not writing
        raise write_error(path, exc) from None
    finally:
        if os.path.lexists(temp):  # not unlink(missing_ok): on a read-only disk that raises EROFS
            temp.unlink()


def merge_sweep(sweep_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write the merged manifest and the coverage report into ``out_dir``; return the report."""
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir}: no such directory")
    run_dirs = find_run_dirs(sweep_dir)
    if not run_dirs:
        raise ConfigError(f"{sweep_dir}: no vgen run dirs under it (no {RESOLVED_CONFIG_NAME} or "
                          f"{MANIFEST_RELATIVE_PATH})")
    target = (out_dir / MERGED_MANIFEST_NAME).resolve()
    for run_dir in run_dirs:
        if (run_dir / MANIFEST_RELATIVE_PATH).resolve() == target:
            raise ConfigError(f"--out {out_dir}: the merged manifest would replace the manifest of run dir {run_dir}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out_dir, exc) from None
    coverage = Coverage()
    write_atomically(out_dir / MERGED_MANIFEST_NAME, merged_rows(sweep_dir, out_dir, coverage))
    report = coverage.report()
    write_atomically(out_dir / COVERAGE_NAME, iter([json.dumps(report, indent=2) + "\n"]))
    return report


def format_coverage(report: dict[str, Any], out_dir: Path) -> str:
    lines = [
        f"merged {report['rows']} row(s) of {report['run_dirs']} run dir(s) into {out_dir / MERGED_MANIFEST_NAME}",
        f"coverage: {report['expected']} expected, {report['succeeded_once']} succeeded exactly once, "
        f"{report['failed']} failed, {report['missing']} missing, {report['duplicated']} duplicated"
        + (f", {report['unexpected']} not expected" if report["unexpected"] else "")
        + (f" ({report['torn_lines']} torn manifest line(s) skipped)" if report["torn_lines"] else ""),
    ]
    for name in ("missing", "failed", "duplicated", "unexpected"):
        ids = report[f"{name}_job_ids"]
        if ids:
            more = f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
            lines.append(f"  {name}: {' '.join(ids[:SHOWN_IDS])}{more}")
    for run_dir, pid in report["running_run_dirs"].items():
        lines.append(f"  still running: {run_dir} (pid {pid}): its unfinished jobs count as missing")
    for check in report.get("run_dirs_to_check", []):
        status = f"point {check['point_status']}" if check["point_status"] else "no point record"
        lines.append(f"  check {check['run_dir']} ({status}; jobs: {', '.join(check['job_statuses']) or 'none'}): "
                     f"{' '.join(check['logs']) or 'no logs'}")
    lines.append(f"report: {out_dir / COVERAGE_NAME}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vgen.merge", description=__doc__.splitlines()[0],
                                     epilog="Exit codes: 0 every job succeeded exactly once, 1 some job is "
                                            "missing, failed or duplicated, 2 bad input.")
    parser.add_argument("sweep_dir", type=Path, help="a sweep dir (multirun/...) or any dir holding vgen run dirs")
    parser.add_argument("--out", type=Path, help="where to write run_history.jsonl and merge_coverage.json "
                                                 "(default: SWEEP_DIR)")
    parser.add_argument("--rerun-missing", action="store_true",
                        help="print the command that runs only the missing and failed jobs (queue.only_jobs)")
    parser.add_argument("--launch", action="store_true", help="with --rerun-missing: run that command, then merge again")
    args = parser.parse_args(argv)
    if args.launch and not args.rerun_missing:
        parser.error("--launch needs --rerun-missing")
    out_dir = args.out or args.sweep_dir
    try:
        report = merge_sweep(args.sweep_dir, out_dir)
        print(format_coverage(report, out_dir))
        if args.rerun_missing:
            from vgen.sweep.rerun import rerun_missing

            if rerun_missing(args.sweep_dir, report, launch=args.launch):
                report = merge_sweep(args.sweep_dir, out_dir)
                print(format_coverage(report, out_dir))
    except VgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0 if report["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
