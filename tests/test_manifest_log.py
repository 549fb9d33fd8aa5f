"""The manifest survives torn lines: a row always starts on a fresh line, readers skip only the torn one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vgen.rundir.manifest import MANIFEST_RELATIVE_PATH, ManifestLog, read_manifest, read_rows


def row(job_id: str, prompt: str = "x") -> dict:
    return {"job_id": job_id, "status": "success", "inputs": {"prompt": prompt}}


def test_append_after_a_torn_line_starts_a_fresh_line(tmp_path):
    log = ManifestLog(tmp_path)
    log.append(row("a"))
    with open(log.path, "a", encoding="utf-8") as handle:  # a process killed in the middle of a row
        handle.write(json.dumps(row("b"))[:25])
    log.append(row("c"))
    contents = read_manifest(log.path)
    assert [r["job_id"] for r in contents.rows] == ["a", "c"]
    assert contents.skipped_lines == [2]
    assert log.path.read_text().count("\n") == 3


def test_a_line_cut_inside_a_multibyte_character_costs_only_that_line(tmp_path, caplog):
    log = ManifestLog(tmp_path)
    log.append(row("a", "café au lait"))
    encoded = json.dumps(row("b", "☃☃☃"), ensure_ascii=False).encode()
    cut = encoded.index("☃".encode()) + 1  # inside the 3-byte snowman
    with open(log.path, "ab") as handle:
        handle.write(encoded[:cut])
    log.append(row("c", "über"))
    assert [r["inputs"]["prompt"] for r in read_rows(log.path)] == ["café au lait", "über"]
    assert "skipped 1 torn or unreadable line(s) (line 2)" in caplog.text


def test_a_complete_last_row_without_newline_is_kept(tmp_path):
    log = ManifestLog(tmp_path)
    log.path.parent.mkdir(parents=True)
    log.path.write_text(json.dumps(row("a")))
    log.append(row("b"))
    contents = read_manifest(log.path)
    assert [r["job_id"] for r in contents.rows] == ["a", "b"] and contents.skipped_lines == []


def test_non_object_lines_are_counted_as_unreadable(tmp_path):
    path = tmp_path / MANIFEST_RELATIVE_PATH
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(row("a")) + "\n\n42\n[1]\n")
    contents = read_manifest(path)
    assert [r["job_id"] for r in contents.rows] == ["a"] and contents.skipped_lines == [3, 4]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs: a real full disk (needs root, as on the project's machines)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    """Take every free block of ``disk`` with one file."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_full_disk_mid_row_then_space_again(tiny_disk):
    """ENOSPC cuts a row short (the rest of its page fits, the next page does not): the append raises and
    cuts the partial row off again, and once there is space again the next row follows the first."""
    log = ManifestLog(tiny_disk)
    log.append(row("a"))
    filler = fill(tiny_disk)
    with pytest.raises(OSError):
        log.append(row("b", "y" * 8000))
    assert log.path.read_bytes().count(b"\n") == 1 and log.path.read_bytes().endswith(b"\n"), "a torn row was left"
    filler.unlink()
    log.append(row("c"))
    contents = read_manifest(log.path)
    assert [r["job_id"] for r in contents.rows] == ["a", "c"] and contents.skipped_lines == []
