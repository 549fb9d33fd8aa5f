"""queue.shard=auto under launchers nobody in the project configured: a stepped SLURM array, a rank
beyond the world size (dry runs: nothing loads)."""

from __future__ import annotations

from conftest import run_vgen


def test_a_stepped_slurm_array_maps_its_indices_onto_the_shards(tmp_path):
    """``sbatch --array=0-12:4``: task ids 0, 4, 8, 12 are shards 0..3."""
    env = {"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0",
           "SLURM_ARRAY_TASK_STEP": "4"}
    result = run_vgen("dry_run=true", "queue.shard=auto", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shard: 2 of 4: " in result.stdout


def test_a_rank_outside_the_world_is_one_line_exit_2(tmp_path):
    result = run_vgen("dry_run=true", "queue.shard=auto", cwd=tmp_path, env={"LOCAL_RANK": "2", "WORLD_SIZE": "2"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "queue.shard=auto: LOCAL_RANK=2, WORLD_SIZE=2 is not one of shards 0..1 (a SLURM array's indices must be "
        "evenly spaced: MIN, MIN+STEP, ...); or give queue.shard=I"]


def test_an_empty_shard_points_at_no_manifest_and_reports_nothing(tmp_path):
    """One job in three shards: shards 1 and 2 run nothing. They used to log a manifest path that
    was never written and warn that the report could not be built."""
    run_dir = tmp_path / "run"
    result = run_vgen("queue.jobs=[{prompt: a fox}]", "queue.num_shards=3", "queue.shard=2",
                      f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "No manifest: no job ran in this run dir" in result.stderr
    assert "Manifest:" not in result.stderr and "WARNING" not in result.stderr, result.stderr[-2000:]
    assert not (run_dir / "manifests").exists() and not (run_dir / "report.html").exists()
