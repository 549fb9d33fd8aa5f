"""Outside tests of vgen.merge and vgen.report with real faults: another working directory, a full disk."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_vgen
from test_report_e2e import browser  # noqa: F401 - the shared Chromium fixture

BOAT = REPO_ROOT / "examples" / "boat.png"


@pytest.fixture(scope="module")
def i2v_run(tmp_path_factory) -> Path:
    """One tiny image-to-video job whose image is given relative to the launch directory."""
    work = tmp_path_factory.mktemp("launch dir")
    shutil.copy(BOAT, work / "boat.png")
    result = run_vgen("model=tiny_wan_i2v", "runtime.progress=false", "generation.steps=1",
                      "queue.jobs=[{prompt: a boat sails off, image: boat.png}]", "hydra.run.dir=run", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "run"


@pytest.mark.slow
def test_merge_from_another_directory_expects_the_jobs_the_run_ran(i2v_run, tmp_path):
    """The saved queue's relative input paths are the launch directory's, not the merge's cwd."""
    result = run_vgen(str(i2v_run), "--out", str(tmp_path / "merged"), module="vgen.merge", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "coverage: 1 expected, 1 succeeded exactly once, 0 failed, 0 missing, 0 duplicated\n" in result.stdout


@pytest.mark.slow
def test_merge_onto_a_full_disk_is_one_line_and_leaves_nothing(i2v_run, tmp_path):
    from disk_helpers import fill_disk, mounted_tmpfs

    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        fill_disk(disk)
        result = run_vgen(str(i2v_run), "--out", str(disk / "merged"), module="vgen.merge", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [
            f"error: cannot write {disk / 'merged' / 'run_history.jsonl'}: No space left on device"]
        assert not list((disk / "merged").iterdir())


@pytest.mark.slow
def test_merge_into_a_read_only_dir_is_bad_input_in_one_line(i2v_run, tmp_path):
    out = tmp_path / "read-only"
    out.mkdir()
    bound = subprocess.run(["mount", "--bind", str(out), str(out)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip("needs root to bind-mount a read-only dir")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(out)], check=True)
        result = run_vgen(str(i2v_run), "--out", str(out), module="vgen.merge", cwd=tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(out)], check=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write {out / 'run_history.jsonl'}: Read-only file system"]
def _leftovers(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()
                  and path.name not in ("filler", ".vgen.lock") and (path.name.startswith(".") or "partial" in path.name))



@pytest.mark.slow
def test_report_onto_a_full_disk_is_one_line_and_leaves_no_partial_files(i2v_run, tmp_path):
    from disk_helpers import fill_disk, mounted_tmpfs

    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        run = shutil.copytree(i2v_run, disk / "run", ignore=shutil.ignore_patterns("report*"))
        fill_disk(disk)
        result = run_vgen(str(run), module="vgen.report", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and "No space left on device" in line, line
        assert _leftovers(run) == []
        assert not (run / "report.html").exists()


@pytest.mark.slow
def test_a_prompt_with_html_comment_and_script_text_leaves_the_report_script_working(browser, tmp_path):
    """``<!--<script>`` inside the page's JSON puts the HTML parser in script "double escaped" state:
    the data element then swallows the page script (filters and compare dead). Checked in Chromium."""
    prompt = "a boat <!--<script> at sea"
    result = run_vgen("runtime.progress=false", "generation.steps=1", f"queue.jobs=[{{prompt: '{prompt}'}}, {{prompt: x}}]",
                      "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    browser.get((tmp_path / "run" / "report.html").as_uri())
    assert browser.execute_script("return document.scripts.length") == 2
    compare = browser.execute_script("return JSON.parse(document.getElementById('compare-data').textContent)")
    assert compare["values"]["e0"]["job.prompt"] == f'"{prompt}"'


@pytest.mark.slow
def test_rerun_missing_refuses_while_a_shard_is_still_running(i2v_run, tmp_path):
    """A shard still running has jobs without rows yet: rerunning them now would run them twice."""
    sweep = tmp_path / "sweep"
    shutil.copytree(i2v_run, sweep / "0")
    (sweep / "0" / "manifests" / "run_history.jsonl").write_text("")  # its job is not done yet
    holder = subprocess.Popen([sys.executable, "-c", HOLD_RUN_DIR, str(sweep / "0")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        result = run_vgen(str(sweep), "--rerun-missing", module="vgen.merge", cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"still running: {sweep / '0'} (pid {holder.pid})" in result.stdout
    assert result.stderr.strip().splitlines() == [
        f"error: rerun: {sweep / '0'} is still running (pid {holder.pid}); rerunning its unfinished jobs now "
        "would run them twice: wait for it to end, then merge again"]
    assert not (sweep / "reruns").exists()
    finished = run_vgen(str(sweep), "--rerun-missing", module="vgen.merge", cwd=tmp_path)  # killed: not running
    assert finished.returncode == 1 and "rerun: 1 job(s) listed in" in finished.stdout, finished.stderr


HOLD_RUN_DIR = """
import sys, time
from vgen.rundir.lock import hold_run_dir
with hold_run_dir(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_merge_out_into_a_runs_manifests_folder_is_refused(i2v_run, tmp_path):
    """``--out RUN/manifests`` would replace the run's own manifest by the merged one (paths rebased)."""
    run = shutil.copytree(i2v_run, tmp_path / "run")
    before = (run / "manifests" / "run_history.jsonl").read_bytes()
    result = run_vgen(str(run), "--out", str(run / "manifests"), module="vgen.merge", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: --out {run / 'manifests'}: the merged manifest would replace the manifest of run dir {run}"]
    assert (run / "manifests" / "run_history.jsonl").read_bytes() == before
    assert sorted(path.name for path in (run / "manifests").iterdir()) == ["run_history.jsonl"]


@pytest.mark.slow
def test_rerun_missing_of_a_sweep_over_seeds_reruns_each_point_with_its_own_overrides(tmp_path):
    """Points of ``generation.seed=1,2`` have different queues (job ids): one rerun command with the
    first point's overrides and every missing id was refused by that point's only_jobs check."""
    result = run_vgen("-m", "runtime.progress=false", "generation.steps=1", "generation.seed=1,2",
                      "queue.jobs=[{prompt: a fox}]", "report.enabled=false", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for point in ("0", "1"):  # neither point's job got its row (killed before persisting, say)
        (tmp_path / "sweep" / point / "manifests" / "run_history.jsonl").write_text("")
    rerun = run_vgen("sweep", "--rerun-missing", "--launch", module="vgen.merge", cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert "coverage: 2 expected, 2 succeeded exactly once" in rerun.stdout
    commands = [line for line in rerun.stdout.splitlines() if line.startswith("cd ")]
    assert len(commands) == 2 and "generation.seed=1 " in commands[0] and "generation.seed=2 " in commands[1]


@pytest.mark.slow
def test_rerun_missing_of_a_sweep_in_a_non_ascii_dir(tmp_path):
    """Hydra's override grammar refuses unquoted non-ASCII letters: the rerun command quotes its paths."""
    sweep = tmp_path / "tournée d'été" / "sweep"
    result = run_vgen("-m", "runtime.progress=false", "generation.steps=1", "queue.jobs=[{prompt: a fox}]",
                      "report.enabled=false", f"hydra.sweep.dir='{sweep.as_posix().replace(chr(39), chr(92) + chr(39))}'",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep / "0" / "manifests" / "run_history.jsonl").write_text("")
    rerun = run_vgen(str(sweep), "--rerun-missing", "--launch", module="vgen.merge", cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert "coverage: 1 expected, 1 succeeded exactly once" in rerun.stdout
