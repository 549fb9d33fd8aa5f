"""Prompts files and only_jobs files as other tools write them (Excel, Notepad, json.dumps), through
``python -m vgen`` (dry runs: nothing loads) and at unit level."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_vgen
from vgen.errors import ConfigError
from vgen.jobs.expand import read_prompts_file


def test_csv_quoted_newlines_stay_in_the_prompt(tmp_path: Path):
    """Excel writes a cell with a line break as a quoted field spanning lines (CRLF rows, LF inside)."""
    path = tmp_path / "shots.csv"
    path.write_bytes('\ufeffprompt,seed\r\n"a boat\nat sea",3\r\n"a fox\u2028in snow",4\r\n'.encode())
    assert read_prompts_file(path) == [{"prompt": "a boat\nat sea", "seed": 3}, {"prompt": "a fox\u2028in snow", "seed": 4}]


def test_jsonl_written_by_json_dumps_without_ascii_escapes_is_read(tmp_path: Path):
    """``json.dumps(ensure_ascii=False)`` leaves U+2028/U+2029/U+0085 raw inside strings: one job a line still."""
    path = tmp_path / "shots.jsonl"
    jobs = [{"prompt": "a boat\u2028at sea"}, {"prompt": "a fox\u0085in snow", "seed": 2}]
    path.write_text("".join(json.dumps(job, ensure_ascii=False) + "\r\n" for job in jobs), encoding="utf-8")
    assert read_prompts_file(path) == jobs


def test_csv_duplicate_column_is_bad_input(tmp_path: Path):
    (tmp_path / "shots.csv").write_text("prompt,seed,seed\na fox,1,2\n")
    result = run_vgen("dry_run=true", "queue.prompts_file=shots.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"queue.prompts_file: {Path('shots.csv')}:1: column 'seed' appears twice"]


def test_csv_row_with_more_cells_than_columns_names_the_line(tmp_path: Path):
    (tmp_path / "shots.csv").write_text("prompt,seed\na fox,1\na boat,2,3\n")
    result = run_vgen("dry_run=true", "queue.prompts_file=shots.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "queue.prompts_file: shots.csv:3: 3 cells but the header has 2 columns (quote a cell that holds a comma)"]


def test_only_jobs_file_saved_with_a_bom_and_crlf(tmp_path: Path):
    """Notepad's UTF-8 starts with a BOM: the first id must still match."""
    plan = run_vgen("dry_run=true", cwd=tmp_path)
    first_id = plan.stdout.split("[0] ", 1)[1].split()[0]
    (tmp_path / "ids.txt").write_bytes(f"\ufeff{first_id}\r\n\r\n# a comment\r\n".encode())
    result = run_vgen("dry_run=true", "queue.only_jobs=ids.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "jobs: 1\n" in result.stdout and f"[0] {first_id}" in result.stdout


def test_only_jobs_file_that_is_not_text_is_bad_input(tmp_path: Path):
    (tmp_path / "ids.txt").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    result = run_vgen("dry_run=true", "queue.only_jobs=ids.txt", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == ["queue.only_jobs: ids.txt:1: not UTF-8 text (byte 0x89 at column 1)"]


def test_excel_semicolon_csv_is_one_line_naming_the_column_and_each_known_key_once(tmp_path: Path):
    """Excel in comma-decimal locales saves ``;``-separated "CSV": the header is one unknown column."""
    (tmp_path / "shots.csv").write_text("prompt;seed\r\na fox;1\r\n")
    result = run_vgen("dry_run=true", "queue.prompts_file=shots.csv", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("shots.csv[0].prompt;seed: unknown job key (known keys: ")
    known = line.split("known keys: ", 1)[1].rstrip(")").split(", ")
    assert len(known) == len(set(known)) and "seed" in known and "image" in known


def test_a_spreadsheets_empty_rows_are_skipped_like_blank_lines(tmp_path: Path):
    """Spreadsheets export rows that were once touched as ``,,``: no job, not an 'empty prompt' error."""
    (tmp_path / "shots.csv").write_text("prompt,seed\r\na fox,1\r\n,\r\n , \r\n")
    result = run_vgen("dry_run=true", "queue.prompts_file=shots.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "jobs: 1\n" in result.stdout


def test_a_lora_preset_saved_with_a_bom_is_read(tmp_path: Path):
    """Wan2GP .lset files edited in Windows Notepad start with a UTF-8 BOM."""
    from vgen.lora.presets import load_preset

    preset = tmp_path / "style.lset"
    preset.write_bytes('\ufeff{"loras": ["style.safetensors"], "loras_mult": "0.8"}'.encode())
    assert [name for name, _ in load_preset(preset).entries] == ["style.safetensors"]
