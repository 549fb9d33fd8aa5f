"""The sweep summary on a disk that fills up: the previous multirun_summary.jsonl stays whole (vgen.report
and merges read it), the command says so in one line. A real sweep (dry-run points) on a real tmpfs."""

from __future__ import annotations

import pytest

from conftest import run_vgen
from disk_helpers import fill_disk, mounted_tmpfs


@pytest.mark.slow
def test_summary_rewrite_on_a_full_disk_keeps_the_old_summary(tmp_path):
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        sweep = disk / "sweep"
        result = run_vgen("-m", "dry_run=true", "generation.seed=1,2", f"hydra.sweep.dir={sweep}",
                          "report.enabled=false", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        before = (sweep / "multirun_summary.jsonl").read_bytes()
        assert before.count(b"\n") == 2
        fill_disk(disk)
        result = run_vgen(str(sweep), module="vgen.sweep.summary", cwd=tmp_path)
        assert result.returncode == 1, result.stderr[-3000:]
        assert result.stderr.strip().splitlines() == [
            f"error: could not write {sweep / 'multirun_summary.jsonl'}: No space left on device"]
        assert (sweep / "multirun_summary.jsonl").read_bytes() == before
        report = run_vgen(str(sweep), "--no-contact-sheet", module="vgen.report", cwd=tmp_path)
        assert "JSONDecodeError" not in report.stderr
