"""Job grids (queue.grid) and shards (queue.num_shards/queue.shard/queue.only_jobs)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from conftest import read_manifest, run_vgen
from vgen.errors import ConfigError
from vgen.jobs.expand import expand_jobs
from vgen.jobs.shards import job_cost, partition, resolve_shard, select_jobs

DEFAULTS = dict(prompt="", negative_prompt="", height=64, width=64, num_frames=9, steps=4, guidance_scale=5.0,
                fps=16, seed=42)
FAST = ["runtime.progress=false", "generation.steps=2"]
MODEL = SimpleNamespace(name="tiny_wan", size_multiple=16, frame_multiple=4)  # the shape rules of vgen.jobs.validation


def queue(jobs, grid=None, num_shards=1, shard=0, only_jobs=None):
    return SimpleNamespace(jobs=list(jobs), prompts_file=None, repeats=1, grid=grid, num_shards=num_shards,
                           shard=shard, only_jobs=only_jobs, default_jobs=[])


# -- grids -------------------------------------------------------------------------------------------


def test_grid_crosses_every_job_with_every_cell():
    jobs = expand_jobs(queue([{"prompt": "a", "seed": 7}, {"prompt": "b"}],
                             grid={"seed": [1, 2, 3], "guidance_scale": [3.0, 5.0]}), DEFAULTS, MODEL)
    cells = [(job.prompt, job.settings["seed"], job.settings["guidance_scale"]) for job in jobs]
    assert cells[:6] == [("a", 1, 3.0), ("a", 1, 5.0), ("a", 2, 3.0), ("a", 2, 5.0), ("a", 3, 3.0), ("a", 3, 5.0)]
    assert [cell[0] for cell in cells[6:]] == ["b"] * 6  # the grid value wins over the job's own seed
    assert len({job.job_id for job in jobs}) == 12 and [job.index for job in jobs] == list(range(12))


def test_grid_cell_has_the_job_id_of_the_same_job_written_out():
    gridded = expand_jobs(queue([{"prompt": "a"}], grid={"steps": [2, 3]}), DEFAULTS, MODEL)
    written = expand_jobs(queue([{"prompt": "a", "steps": 2}, {"prompt": "a", "steps": 3}]), DEFAULTS, MODEL)
    assert [job.job_id for job in gridded] == [job.job_id for job in written]


def test_grid_over_lora_weights_and_sizes():
    loras = [[{"name": "style", "weight": 0.5}], [{"name": "style", "weight": 1.0}]]
    jobs = expand_jobs(queue([{"prompt": "a"}], grid={"loras": loras, "width": [64, 96]}), DEFAULTS, MODEL)
    assert [(job.settings["loras"][0]["weight"], job.settings["width"]) for job in jobs] == [
        (0.5, 64), (0.5, 96), (1.0, 64), (1.0, 96)]


@pytest.mark.parametrize("grid,needle", [
    ({"stepz": [1]}, "queue.grid.stepz: unknown job key"),
    ({"seed": [1.5]}, "queue.grid.seed: expected int"),
    ({"seed": 3}, "queue.grid.seed: expected a non-empty list"),
    ({"seed": []}, "queue.grid.seed: expected a non-empty list"),
    ({"prompt": ["x"]}, "queue.grid.prompt"),
    ([1, 2], "queue.grid: expected a mapping"),
])
def test_bad_grid_names_the_key(grid, needle):
    with pytest.raises(ConfigError) as info:
        expand_jobs(queue([{"prompt": "a"}], grid=grid), DEFAULTS, MODEL)
    assert needle in str(info.value)


def test_bad_grid_key_exits_2_before_any_model_loads(tmp_path):
    result = run_vgen(*FAST, "queue.grid={sed: [1, 2]}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "queue.grid.sed: unknown job key" in result.stderr and "Loaded" not in result.stderr
    assert not (tmp_path / "run" / "manifests").exists()


@pytest.mark.slow
def test_two_by_three_grid_runs_on_one_model_load(tmp_path):
    result = run_vgen(*FAST, "queue.jobs=[{prompt: grid}]", "queue.grid={seed: [1, 2, 3], guidance_scale: [3.0, 5.0]}",
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("Loaded WanPipeline") == 1
    rows = read_manifest(tmp_path / "run")
    assert [row["status"] for row in rows] == ["success"] * 6
    assert len({row["job_id"] for row in rows}) == 6
    assert {(row["inputs"]["job"]["seed"], row["inputs"]["job"]["guidance_scale"]) for row in rows} == {
        (seed, scale) for seed in (1, 2, 3) for scale in (3.0, 5.0)}


# -- shards ------------------------------------------------------------------------------------------


def mixed_jobs(count=60, seed=0):
    rng = random.Random(seed)
    sizes = [(9, 64, 64, 4), (17, 96, 96, 8), (33, 128, 128, 20), (81, 480, 832, 30)]
    jobs = [{"prompt": f"shot {i}", **dict(zip(("num_frames", "height", "width", "steps"), rng.choice(sizes)))}
            for i in range(count)]
    return expand_jobs(queue(jobs), DEFAULTS, MODEL)


@pytest.mark.parametrize("num_shards", [2, 3, 4, 8])
def test_costliest_shard_is_at_most_125_percent_of_the_mean(num_shards):
    jobs = mixed_jobs()
    costs = [sum(job_cost(job.settings) for job in shard) for shard in partition(jobs, num_shards)]
    assert max(costs) <= 1.25 * (sum(costs) / num_shards)


def test_partition_covers_every_job_once_and_is_deterministic():
    jobs = mixed_jobs(37)
    shards = partition(jobs, 4)
    assert sorted(job.job_id for shard in shards for job in shard) == sorted(job.job_id for job in jobs)
    assert [[job.job_id for job in shard] for shard in partition(list(reversed(jobs)), 4)] == [
        [job.job_id for job in shard] for shard in shards]
    for shard in shards:  # queue order, whole-queue indexes (artifact names do not depend on N)
        assert [job.index for job in shard] == sorted(job.index for job in shard)


def test_job_ids_and_indexes_do_not_depend_on_the_shard_count():
    jobs = mixed_jobs(20)
    for num_shards in (1, 3, 5):
        picked = [job for index in range(num_shards)
                  for job in select_jobs(jobs, queue([], num_shards=num_shards, shard=index), env={})]
        assert sorted((job.index, job.job_id) for job in picked) == [(job.index, job.job_id) for job in jobs]


def test_auto_shard_from_slurm_array_or_local_rank():
    assert resolve_shard("auto", 1, {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4",
                                     "SLURM_ARRAY_TASK_MIN": "3"}) == (2, 4)
    assert resolve_shard("auto", 8, {"LOCAL_RANK": "7", "WORLD_SIZE": "8"}) == (7, 8)
    with pytest.raises(ConfigError, match="queue.shard=auto"):
        resolve_shard("auto", 1, {})
    with pytest.raises(ConfigError, match="queue.num_shards=3 but LOCAL_RANK/WORLD_SIZE says 2"):
        resolve_shard("auto", 3, {"LOCAL_RANK": "0", "WORLD_SIZE": "2"})


@pytest.mark.parametrize("shard,num_shards,needle", [(3, 3, "queue.shard"), (-1, 2, "queue.shard"),
                                                     ("one", 2, "queue.shard"), (0, 0, "queue.num_shards")])
def test_bad_shard_settings_name_the_key(shard, num_shards, needle):
    with pytest.raises(ConfigError, match=needle):
        resolve_shard(shard, num_shards, {})


def test_only_jobs_filter(tmp_path):
    jobs = mixed_jobs(6)
    wanted = tmp_path / "ids.txt"
    wanted.write_text(f"# rerun\n{jobs[4].job_id}\n\n{jobs[1].job_id}\n")
    assert [job.index for job in select_jobs(jobs, queue([], only_jobs=str(wanted)), env={})] == [1, 4]
    wanted.write_text("0123456789abcdef\n")
    with pytest.raises(ConfigError, match="queue.only_jobs: 1 job id"):
        select_jobs(jobs, queue([], only_jobs=str(wanted)), env={})
    with pytest.raises(ConfigError, match="queue.only_jobs: file not found"):
        select_jobs(jobs, queue([], only_jobs=str(tmp_path / "none.txt")), env={})


def test_dry_run_shows_the_shard_and_its_cost(tmp_path):
    result = run_vgen("dry_run=true", "queue.grid={seed: [1, 2, 3]}", "queue.num_shards=2", "queue.shard=auto",
                      cwd=tmp_path, env={"LOCAL_RANK": "1", "WORLD_SIZE": "2"})
    assert result.returncode == 0, result.stderr
    assert "shard: 1 of 2: 4 job(s), estimated cost 589,824" in result.stdout  # 9 jobs; 4 x 9*64*64*4
    assert result.stdout.count(" -> <run_dir>/") == 4


@pytest.mark.slow
def test_an_empty_shard_exits_0_without_loading_the_model(tmp_path):
    result = run_vgen(*FAST, "queue.jobs=[{prompt: only one}]", "queue.num_shards=2", "queue.shard=1",
                      f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Loaded" not in result.stderr and "0 done" in result.stderr
    assert (tmp_path / "run" / "resolved_config.yaml").is_file()  # merge reads the shard's expected jobs
