"""``runtime.compile``: a queue switching LoRAs on a regionally compiled pipeline compiles once and
matches the uncompiled run; bad combinations are refused before loading; the mode is part of the
pipeline cache key."""

from __future__ import annotations

import time

import pytest

from lora_fixtures import make_lora_file
from vgen.speed.compilation import validate_compile
from vgen.config.compose import compose_run_config
from vgen.errors import ConfigError
from vgen.production import ProductionManager


def runtime(tmp_path, *overrides):
    return compose_run_config(tmp_path, ["runtime.device=cpu", *overrides]).runtime


class FrameRecorder(ProductionManager):
    """The real manager, keeping the frames each job generated (the queue saves them as lossy video) and
    torch._dynamo's graph counters after it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frames, self.graphs = {}, {}

    def run_generation(self, job, **kwargs):
        from torch._dynamo.utils import counters

        result = super().run_generation(job, **kwargs)
        self.frames[job.index] = result.frames
        self.graphs[job.index] = {"unique_graphs": counters["stats"]["unique_graphs"],
                                  "aot_autograd": counters["aot_autograd"]["total"]}
        return result


# LoRA A, B, A again, A on a per-step schedule, no LoRA: each a one-LoRA (or no-LoRA) job of the same seed.
SWITCHING_JOBS = "queue.jobs=[" + ",".join(
    f"{{prompt: a red fox, seed: 0{loras}}}" for loras in
    (", loras: [a]", ", loras: [b]", ", loras: [a]", ", loras: [{name: a, weight: '1,0.5,0,1'}]", "")) + "]"


def run_switching_queue(run_dir, lora_dir, compile_mode):
    import torch
    from torch._dynamo.utils import counters

    from vgen.queue.controller import QueueController
    from vgen.resident import ResidentModels

    cfg = compose_run_config(run_dir, [
        "runtime.device=cpu", "runtime.progress=false", f"runtime.compile={compile_mode}", "runtime.lora_max_rank=8",
        "generation.num_frames=5", "generation.steps=4", "generation.height=32", "generation.width=32",
        f"lora.dirs=[{lora_dir}]", SWITCHING_JOBS])
    manager = FrameRecorder(cfg, run_dir=run_dir, resident=ResidentModels())
    manager.load_pipeline()
    torch._dynamo.reset()
    counters.clear()
    started = time.perf_counter()
    summary = QueueController(manager, manager.jobs()).run()
    print(f"compile={compile_mode}: {summary.done} jobs in {time.perf_counter() - started:.1f} s, "
          f"dynamo counters after each job: {manager.graphs}")
    assert (summary.done, summary.failed) == (5, 0), [row.get("error") for row in manager.manifest.rows()]
    return manager


@pytest.mark.slow
def test_switching_loras_between_jobs_on_a_compiled_pipeline_does_not_recompile(tmp_path):
    """The queue runs for real (QueueController, ProductionManager, the LoRA manager, regional compile);
    only the first LoRA job compiles: swapping B in, A back, a per-step schedule and a job without
    LoRA reuse its graph, and every output matches the uncompiled run of the same queue."""
    import numpy as np
    import torch
    from diffusers import WanPipeline

    from vgen.models.tiny_wan import ensure_tiny_wan

    transformer = WanPipeline.from_pretrained(ensure_tiny_wan(), dtype=torch.float32).transformer
    make_lora_file(transformer, tmp_path / "loras" / "a.safetensors", seed=1)
    make_lora_file(transformer, tmp_path / "loras" / "b.safetensors", seed=2)
    compiled = run_switching_queue(tmp_path / "compiled", tmp_path / "loras", "regional")
    eager = run_switching_queue(tmp_path / "eager", tmp_path / "loras", "off")

    first = compiled.graphs[0]
    assert first["unique_graphs"] > 0 and first["aot_autograd"] > 0  # the blocks really were compiled
    assert all(graphs == first for graphs in compiled.graphs.values())  # no job after the first recompiled
    assert eager.graphs[4] == {"unique_graphs": 0, "aot_autograd": 0}
    assert compiled.loras.lora_file_loads == 3  # A, B swapped in, A swapped back
    frames = compiled.frames
    assert np.array_equal(frames[0], frames[2])  # A again, after B, is exactly A
    assert not np.allclose(frames[0], frames[1], atol=1e-3)  # B took effect
    assert not np.allclose(frames[0], frames[3], atol=1e-3) and not np.allclose(frames[0], frames[4], atol=1e-3)
    for index, expected in eager.frames.items():
        difference = np.abs(frames[index] - expected).max()
        print(f"job {index}: compiled vs uncompiled max |difference| {difference:.2e}")
        assert difference < 1e-4


@pytest.mark.parametrize(("overrides", "message"), [
    (["runtime.compile=max"], "runtime.compile: expected one of off, regional, full"),
    (["runtime.compile=regional", "runtime.offload=sequential"], "with runtime.offload=sequential"),
    (["runtime.compile=full", "runtime.lora_max_rank=0"], "runtime.lora_max_rank=0"),
])
def test_bad_compile_settings(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_compile(runtime(tmp_path, *overrides))


def test_compile_is_in_the_pipeline_key_not_the_output_key(tmp_path):
    from vgen.speed.compilation import cache_key

    cache = compose_run_config(tmp_path, []).cache
    assert cache_key(runtime(tmp_path), cache) == "off"
    assert cache_key(runtime(tmp_path, "runtime.compile=regional"), cache) == "regional,lora_max_rank=128,full graphs"
    keys = []
    for overrides in ([], ["runtime.compile=regional"]):
        manager = ProductionManager(compose_run_config(tmp_path, ["queue.jobs=[{prompt: fox}]", *overrides]),
                                    run_dir=tmp_path)
        (job,) = manager.jobs()
        keys.append(manager.job_output_key(job))
    assert keys[0] == keys[1]


def run_cached_queue(run_dir, compile_mode):
    from vgen.queue.controller import QueueController
    from vgen.resident import ResidentModels

    cfg = compose_run_config(run_dir, [
        "runtime.device=cpu", "runtime.progress=false", f"runtime.compile={compile_mode}", "cache=first_block",
        "generation.num_frames=5", "generation.steps=6", "generation.height=32", "generation.width=32",
        "queue.jobs=[{prompt: a red fox, seed: 0}, {prompt: a red fox, seed: 1}]"])
    manager = FrameRecorder(cfg, run_dir=run_dir, resident=ResidentModels())
    summary = QueueController(manager, manager.jobs()).run()
    assert (summary.done, summary.failed) == (2, 0), [row.get("error") for row in manager.manifest.rows()]
    return manager


@pytest.mark.slow
def test_a_step_cache_runs_on_a_compiled_pipeline(tmp_path):
    """A step cache's Python hooks sit around the compiled blocks: compiled as a full graph, every job
    failed ("Unsupported hasattr call"); vgen compiles such a run allowing graph breaks at the hooks,
    and the frames match the uncompiled run with the same cache."""
    import numpy as np

    compiled = run_cached_queue(tmp_path / "compiled", "regional")
    eager = run_cached_queue(tmp_path / "eager", "off")
    assert compiled.graphs[1]["unique_graphs"] > 0  # the blocks really were compiled
    for index, expected in eager.frames.items():
        assert np.abs(compiled.frames[index] - expected).max() < 1e-4


def test_the_pipeline_key_tells_full_graphs_from_graph_breaks(tmp_path):
    """A sweep from cache=none to a cache on one resident compiled pipeline must reload, not reuse
    full-graph blocks that the cache's hooks would break."""
    from vgen.speed.compilation import cache_key

    def key(*overrides):
        cfg = compose_run_config(tmp_path, ["runtime.device=cpu", "runtime.compile=regional", *overrides])
        return cache_key(cfg.runtime, cfg.cache)

    assert key() != key("cache=first_block") == key("cache=taylorseer")
