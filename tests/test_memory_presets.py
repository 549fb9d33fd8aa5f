"""``memory=PRESET`` sets the runtime speed/memory knobs; the command line still wins; each preset's
settings pass the same checks as hand-set ones."""

from __future__ import annotations

import pytest

from vgen.speed.compilation import validate_compile
from vgen.config.compose import compose_run_config
from vgen.config.locate import config_dir

PRESETS = sorted(path.stem for path in (config_dir() / "memory").glob("*.yaml"))


def test_presets_exist():
    assert PRESETS == ["cpu", "gpu_12gb", "gpu_24gb", "gpu_80gb", "gpu_8gb", "none"]


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_is_a_valid_runtime(preset, tmp_path):
    from vgen.speed.attention import validate_attention
    from vgen.devices import validate_runtime

    runtime = compose_run_config(tmp_path, [f"memory={preset}"]).runtime
    validate_runtime(runtime)
    validate_compile(runtime)
    validate_attention(runtime)


def test_preset_sets_knobs_and_the_command_line_wins(tmp_path):
    runtime = compose_run_config(tmp_path, ["memory=gpu_12gb"]).runtime
    assert (runtime.offload, runtime.quantization.transformer, runtime.vae_tiling) == ("model", "int8", True)
    runtime = compose_run_config(tmp_path, ["memory=gpu_12gb", "runtime.vae_tiling=false"]).runtime
    assert runtime.vae_tiling is False and runtime.offload == "model"


def test_group_offload_needs_cuda(tmp_path):
    from vgen.devices import resolve_placement
    from vgen.errors import ConfigError

    runtime = compose_run_config(tmp_path, ["runtime.device=cpu", "runtime.offload=group"]).runtime
    with pytest.raises(ConfigError, match="runtime.offload=group .* needs a CUDA device"):
        resolve_placement(runtime)
