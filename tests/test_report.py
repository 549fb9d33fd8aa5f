"""vgen.report at unit level: the grid from a sweep summary, browser playability, compare data, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vgen.report import compare_data
from vgen.report.assets import playback_problem
from vgen.report.collect import Entry, collect
from vgen.report.layout import Axis, axes_of, grid_sections, override_coordinates


def coordinates(overrides_per_point: list[list[str]]) -> list[dict[str, str]]:
    return [override_coordinates(overrides) for overrides in overrides_per_point]


def test_two_swept_overrides_make_rows_by_columns(tmp_path):
    """From a synthetic multirun_summary.jsonl: the swept overrides are the axes, the rest is ignored."""
    common = ["+experiment=tiny_smoke", "queue.jobs=[{prompt:a}]"]
    with open(tmp_path / "multirun_summary.jsonl", "w") as summary:
        for num, (seed, guidance) in enumerate((s, g) for s in (1, 2, 3) for g in (3, 5)):
            overrides = [f"generation.seed={seed}", f"generation.guidance_scale={guidance}", *common]
            summary.write(json.dumps({"num": num, "overrides": overrides, "status": "error", "error": "boom",
                                      "run_dir": str(tmp_path / str(num))}) + "\n")
    source = collect(tmp_path)
    assert source.kind == "sweep" and [entry.error for entry in source.entries] == ["boom"] * 6
    assert source.axes == [Axis("generation.seed", ("1", "2", "3")), Axis("generation.guidance_scale", ("3", "5"))]
    (section,) = grid_sections([entry.coords for entry in source.entries], source.axes)
    assert section.title == {} and section.rows.key == "generation.seed" and section.cols.key == "generation.guidance_scale"
    assert [(cell.row, cell.col, cell.entries) for cell in section.cells] == [
        ("1", "3", [0]), ("1", "5", [1]), ("2", "3", [2]), ("2", "5", [3]), ("3", "3", [4]), ("3", "5", [5])]


def test_more_axes_make_one_section_per_leading_value_and_gaps_stay_empty():
    coords = coordinates([[f"output={o}", f"+lora.scale={w}", f"generation.seed={s}"]
                                for o in ("mp4_h264", "mkv_h265") for w in ("0.5", "1") for s in (1, 2)
                                if not (o == "mkv_h265" and w == "1" and s == 2)])  # a point that never ran
    axes = axes_of(coords)
    assert [axis.key for axis in axes] == ["output", "lora.scale", "generation.seed"]
    sections = grid_sections(coords, axes)
    assert [section.title for section in sections] == [{"output": "mp4_h264"}, {"output": "mkv_h265"}]
    assert [(c.row, c.col, c.entries) for c in sections[1].cells] == [
        ("0.5", "1", [4]), ("0.5", "2", [5]), ("1", "1", [6]), ("1", "2", [])]


def test_one_axis_is_one_row_and_no_axis_is_a_list():
    coords = coordinates([["generation.steps=2"], ["generation.steps=4"], ["generation.steps=8"]])
    (section,) = grid_sections(coords, axes_of(coords))
    assert section.rows is None and [c.col for c in section.cells] == ["2", "4", "8"]
    (plain,) = grid_sections([{}, {}], axes_of([{}, {}]))
    assert not plain.is_grid and [cell.entries for cell in plain.cells] == [[0], [1]]


def test_a_key_missing_from_some_points_is_an_unset_value():
    coords = coordinates([["a=1"], ["a=1", "+b=x"]])
    assert axes_of(coords) == [Axis("b", ("(unset)", "x"))]


def test_browser_playability_by_container_codec_and_pixel_format():
    assert playback_problem({"container": "mp4", "codec": "h264", "extra": {"pix_fmt": "yuv420p"}}) is None
    assert playback_problem({"container": "webm", "codec": "vp9"}) is None
    assert playback_problem({"container": "mp4", "codec": "av1"}) is None
    assert "h265" in playback_problem({"container": "mkv", "codec": "hevc"})
    assert "h265" in playback_problem({"container": "mp4", "codec": "hevc"})
    assert "ProRes" in playback_problem({"container": "mov", "codec": "prores"})
    assert "yuv444p" in playback_problem({"container": "mp4", "codec": "h264", "extra": {"pix_fmt": "yuv444p"}})


def test_compare_data_keeps_only_keys_that_vary_with_the_diff_module_semantics():
    def entry(guidance: float, seed: int, extra: dict | None = None) -> Entry:
        config = {"run_dir": f"/runs/{seed}", "generation": {"guidance_scale": guidance, "steps": 4}, **(extra or {})}
        row = {"inputs": {"job": {"seed": seed, "guidance_scale": guidance, "prompt": "p"}}}
        return Entry(Path("."), "success", {}, config, row)

    data = compare_data([entry(3.0, 1), entry(5.0, 1), entry(3.0, 2, {"lora": {"loras": [{"name": "x"}]}})])
    # run_dir differs by construction (vgen.diff leaves it out); steps and prompt never differ.
    assert data["keys"] == ["generation.guidance_scale", "job.guidance_scale", "job.seed", "lora.loras[0].name"]
    assert data["values"]["e1"] == {"generation.guidance_scale": "5.0", "job.guidance_scale": "5.0", "job.seed": "1"}
    assert data["values"]["e2"]["lora.loras[0].name"] == '"x"' and "lora.loras[0].name" not in data["values"]["e0"]
    assert data["absent"] == "<absent>"


def test_cli_refuses_a_dir_that_is_not_a_run_and_writes_nothing(tmp_path):
    (tmp_path / "videos").mkdir()
    result = subprocess.run([sys.executable, "-m", "vgen.report", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path}: not a vgen run or sweep dir (no manifests/run_history.jsonl or multirun_summary.jsonl)"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["videos"]
    missing = subprocess.run([sys.executable, "-m", "vgen.report", str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such directory" in missing.stderr


def test_sweep_point_without_rows_shows_its_logged_error(tmp_path):
    """A point that failed before its queue (bad input, exit 2) has no manifest rows: its log tells why."""
    point = tmp_path / "0"
    point.mkdir()
    (point / "vgen.log").write_text("[2026-11-25 10:00:00,000][vgen][INFO] - Run dir: x\n"
                                    "[2026-11-25 10:00:00,001][vgen][ERROR] - job 0 (abc): unknown LoRA 'nope'\n")
    record = {"num": 0, "overrides": ["lora.loras=[{name:nope}]"], "status": "error", "exit_code": 2, "error": None,
              "run_dir": str(point), "jobs": {}, "artifacts": []}
    (tmp_path / "multirun_summary.jsonl").write_text(json.dumps(record) + "\n")
    (entry,) = collect(tmp_path).entries
    assert entry.status == "error" and entry.row is None
    assert entry.error == "job 0 (abc): unknown LoRA 'nope'"


def test_automatic_report_failure_is_a_warning_not_a_failed_run(tmp_path, caplog):
    """The run's results stand without their report: a report.html that cannot be replaced (here a
    directory is in its way) is logged, and nothing is left half-written."""
    from types import SimpleNamespace

    from vgen.report import write_report_after_run

    record = {"num": 0, "overrides": ["generation.seed=1"], "status": "error", "error": "boom",
              "run_dir": str(tmp_path / "0")}
    (tmp_path / "multirun_summary.jsonl").write_text(json.dumps(record) + "\n")
    (tmp_path / "report.html").mkdir()
    write_report_after_run(tmp_path, SimpleNamespace(enabled=True, previews=False))
    assert any("Report not written for" in message and "IsADirectoryError" in message for message in caplog.messages)
    assert not list(tmp_path.glob(".report.html.*"))
    write_report_after_run(tmp_path / "elsewhere", SimpleNamespace(enabled=False, previews=False))  # off: no checks


def test_queue_grid_keys_of_a_single_run_are_axes(tmp_path):
    """A run whose queue.grid expands jobs over seed x guidance_scale is laid out as that grid."""
    import yaml

    (tmp_path / "resolved_config.yaml").write_text(yaml.safe_dump(
        {"queue": {"grid": {"seed": [1, 2], "guidance_scale": [3.0, 5.0]}}, "generation": {"steps": 4}}, sort_keys=False))
    rows = [{"job_id": f"{index:016x}", "job_index": index, "status": "success", "artifacts": [],
             "inputs": {"job": {"seed": seed, "guidance_scale": guidance, "prompt": "p"}}}
            for index, (seed, guidance) in enumerate((s, g) for s in (1, 2) for g in (3.0, 5.0))]
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "run_history.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    source = collect(tmp_path)
    assert source.kind == "run"
    assert source.axes == [Axis("queue.grid.seed", ("1", "2")), Axis("queue.grid.guidance_scale", ("3.0", "5.0"))]
    (section,) = grid_sections([entry.coords for entry in source.entries], source.axes)
    assert [(cell.row, cell.col, cell.entries) for cell in section.cells] == [
        ("1", "3.0", [0]), ("1", "5.0", [1]), ("2", "3.0", [2]), ("2", "5.0", [3])]
