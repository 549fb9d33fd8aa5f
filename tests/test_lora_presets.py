"""Preset parsing (.lset/.json/YAML), discovery cache, job resolution and payloads (no torch)."""

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lora_fixtures import write_json
from vgen.config.schema import LoraConfig, LoraEntry
from vgen.errors import ConfigError
from vgen.hashing import payload_hash
from vgen.lora.manager import LoRAInjectionManager
from vgen.lora.presets import load_preset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lora_dir(tmp_path):
    """Fake LoRA files (resolution only hashes them) and Wan2GP presets."""
    root = tmp_path / "loras"
    for rel in ("Style_A.safetensors", "style_b.safetensors", "1.3B/detail.sft", "wan22/high.safetensors"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    write_json(root / "anime_mix.lset", {
        "loras": ["Style_A.safetensors", "style_b.safetensors"],
        "loras_mult": "# first: strong at start\n1.0,0.5\n# second\n0.7\n",
        "prompt": "# trigger word: zzstyle\nzzstyle,",
        "full_prompt": False,
    })
    write_json(root / "full.json", {
        "activated_loras": ["detail.sft"],
        "loras_multipliers": ["# one phase each", "1;0"],
        "prompt": "a fixed full prompt\n# comment",
        "full_prompt": True,
    })
    write_json(root / "1.3B/adapter_config.json", {"r": 4})  # not a preset: ignored
    return root


@pytest.fixture
def manager(tmp_path):
    group = tmp_path / "group"
    group.mkdir()
    (group / "none.yaml").write_text("defaults: [base_lora, _self_]\nname: none\nloras: []\n")
    (group / "yaml_style.yaml").write_text(
        "name: yaml_style\nloras:\n  - {name: style_b, weight: 0.6}\n  - 'detail:1,0'\nprompt_suffix: ', grainy'\n"
    )
    return LoRAInjectionManager(preset_group_dir=group)


def cfg(lora_dir, **kwargs):
    return LoraConfig(dirs=[str(lora_dir)], **kwargs)


def test_lset_parsing_with_comments_multi_lora_and_prefix_prompt(lora_dir):
    spec = load_preset(lora_dir / "anime_mix.lset")
    assert spec.entries == [("Style_A.safetensors", "1.0,0.5"), ("style_b.safetensors", "0.7")]
    assert spec.prompt.full is None and spec.prompt.apply("a cat") == "zzstyle, a cat"


def test_json_parsing_with_list_multipliers_phases_and_full_prompt(lora_dir):
    spec = load_preset(lora_dir / "full.json")
    assert spec.entries == [("detail.sft", "1;0")]
    assert spec.prompt.apply("ignored") == "a fixed full prompt"


def test_missing_multipliers_default_to_one_and_extra_ones_are_ignored_with_a_warning(tmp_path, caplog):
    short = write_json(tmp_path / "s.lset", {"loras": ["a", "b"], "loras_mult": "0.5"})
    assert load_preset(short).entries == [("a", "0.5"), ("b", "1.0")]
    extra = write_json(tmp_path / "x.lset", {"loras": ["a"], "loras_mult": "0.5 | 0.6 0.7"})
    with caplog.at_level("WARNING", logger="vgen.lora.presets"):
        assert load_preset(extra).entries == [("a", "0.5")]
    assert "x.lset: 3 multipliers for 1 LoRA(s); ignoring the extra ['0.6', '0.7']" in caplog.text
    bars = write_json(tmp_path / "bars.lset", {"loras": ["a"], "loras_mult": "1 | 2 | 3"})
    with pytest.raises(ConfigError, match="bars.lset.*at most one"):
        load_preset(bars)
    broken = tmp_path / "broken.lset"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.lset"):
        load_preset(broken)


def test_discovery_recursive_ignores_non_preset_json_and_lists_group_presets(manager, lora_dir):
    library = manager.hydrate(cfg(lora_dir), "wan")
    assert sorted(library.loras) == ["1.3B/detail.sft", "Style_A.safetensors", "style_b.safetensors",
                                     "wan22/high.safetensors"]
    assert manager.presets(cfg(lora_dir), "wan") == ["anime_mix.lset", "full.json", "none.yaml", "yaml_style.yaml"]


def test_discovery_is_memoised_and_invalidated_by_config_change(manager, lora_dir, tmp_path):
    first = manager.hydrate(cfg(lora_dir), "wan")
    assert manager.hydrate(OmegaConf.structured(cfg(lora_dir)), "wan") is first  # same config, other form
    assert manager.load_count == 1
    (lora_dir / "new.safetensors").write_bytes(b"new")
    assert "new.safetensors" not in manager.hydrate(cfg(lora_dir), "wan").loras  # cached
    assert "new.safetensors" in manager.hydrate(cfg(lora_dir), "wan", refresh=True).loras
    manager.hydrate(cfg(lora_dir, prompt_prefix="changed"), "wan")  # config change -> new discovery
    manager.hydrate(cfg(lora_dir), "ltx")  # other model family -> its own entry
    assert manager.load_count == 4
    entries = manager.snapshot_state()["entries"]
    assert [(e["model_family"], e["hits"]) for e in entries] == [("wan", 2), ("wan", 0), ("ltx", 0)]
    assert entries[0]["loras_count"] == 5 and entries[0]["presets_count"] == 4
    manager.reset()
    assert manager.snapshot_state() == {"entries": []}


def test_family_placeholder_in_dirs(manager, lora_dir):
    library = manager.hydrate(LoraConfig(dirs=[str(lora_dir / "{family}")]), "wan22")
    assert list(library.loras) == ["high.safetensors"]


def test_resolve_preset_matches_file_name_or_stem_case_insensitively(manager, lora_dir):
    for name in ("anime_mix", "ANIME_MIX.lset", "Anime_Mix"):
        resolution = manager.resolve_preset(cfg(lora_dir), "wan", name)
        assert resolution.name == "anime_mix.lset"
    assert resolution.names == ["Style_A.safetensors", "style_b.safetensors"]
    assert resolution.multipliers == ["1.0,0.5", "0.7"]
    assert (resolution.prompt, resolution.prompt_is_full) == ("zzstyle,", False)
    full = manager.resolve_preset(cfg(lora_dir), "wan", "full")
    assert (full.prompt, full.prompt_is_full) == ("a fixed full prompt", True)


def test_unknown_preset_lists_close_matches(manager, lora_dir):
    with pytest.raises(ConfigError) as error:
        manager.resolve_preset(cfg(lora_dir), "wan", "anime_mixx")
    assert "anime_mixx" in str(error.value) and "close matches: ['anime_mix.lset']" in str(error.value)


def test_unknown_lora_in_job_lists_close_matches(manager, lora_dir):
    with pytest.raises(ConfigError, match=r"unknown LoRA 'style_c'.*close matches: \['Style_A.safetensors', "
                                          r"'style_b.safetensors'\]"):
        manager.resolve_job(cfg(lora_dir), "wan", {"loras": ["style_c:0.5"]}, num_steps=4)


def test_run_level_loras_and_prompt_affixes(manager, lora_dir):
    run_cfg = cfg(lora_dir, loras=[LoraEntry(name="style_a", weight="1,0")], prompt_prefix="pre,")
    resolved = manager.resolve_job(run_cfg, "wan", {"prompt": "a cat"}, num_steps=4)
    assert [(e.name, e.path.name) for e in resolved.entries] == [("Style_A.safetensors", "Style_A.safetensors")]
    assert resolved.weights_for_step(0) == [1.0] and resolved.weights_for_step(3) == [0.0]
    assert manager.apply_prompt(resolved, "a cat") == "pre, a cat"


def test_job_keys_override_the_run_choice(manager, lora_dir):
    run_cfg = cfg(lora_dir, preset="anime_mix")
    from_run = manager.resolve_job(run_cfg, "wan", {}, num_steps=4)
    assert [e.name for e in from_run.entries] == ["Style_A.safetensors", "style_b.safetensors"]
    assert from_run.preset == "anime_mix.lset" and manager.apply_prompt(from_run, "x") == "zzstyle, x"
    job = manager.resolve_job(run_cfg, "wan", {"loras": ["style_b:0.25", {"name": "1.3B/detail"}]}, num_steps=4)
    assert [(e.name, e.schedule.weight_at(0)) for e in job.entries] == [("style_b.safetensors", 0.25),
                                                                         ("1.3B/detail.sft", 1.0)]
    assert job.preset is None and manager.apply_prompt(job, "x") == "x"
    assert manager.resolve_job(run_cfg, "wan", {"loras": []}, num_steps=4).payload() == {}
    assert manager.resolve_job(run_cfg, "wan", {"lora_preset": "none"}, num_steps=4).entries == []
    yaml_job = manager.resolve_job(run_cfg, "wan", {"lora_preset": "yaml_style"}, num_steps=4)
    assert [(e.name, e.schedule.to_payload()) for e in yaml_job.entries] == [
        ("style_b.safetensors", {"constant": 0.6}), ("1.3B/detail.sft", {"steps": [1.0, 0.0]})]
    assert manager.apply_prompt(yaml_job, "a dog") == "a dog, grainy"


def test_phased_preset_needs_a_two_phase_model(manager, lora_dir):
    with pytest.raises(ConfigError, match="LoRA 'detail.sft'.*'1;0'"):
        manager.resolve_job(cfg(lora_dir), "wan", {"lora_preset": "full"}, num_steps=4)
    two = manager.resolve_job(cfg(lora_dir), "wan", {"lora_preset": "full"}, num_steps=4, num_phases=2)
    assert [two.weights_for_step(step) for step in range(4)] == [[1.0], [1.0], [0.0], [0.0]]


def test_same_file_twice_is_rejected(manager, lora_dir):
    with pytest.raises(ConfigError, match="selected twice"):
        manager.resolve_job(cfg(lora_dir), "wan", {"loras": ["style_b", "style_b.safetensors:0.5"]}, num_steps=4)


def test_payload_is_canonical_and_hash_stable(manager, lora_dir):
    def payload(job):
        return manager.resolve_job(cfg(lora_dir), "wan", job, num_steps=4).payload()

    a = payload({"loras": ["style_b:1"]})
    b = payload({"loras": [{"name": "STYLE_B.safetensors", "weight": 1.0}]})
    assert a == b and payload_hash(a) == payload_hash(b)
    assert a["loras"][0]["sha256"] == __import__("hashlib").sha256(b"style_b.safetensors").hexdigest()
    assert set(a) == {"loras", "preset", "prompt_transform"} and a["prompt_transform"] is None
    assert payload_hash(payload({"loras": ["style_b:0.9"]})) != payload_hash(a)
    assert payload_hash(a)["sha256"] == payload_hash(payload({"loras": ["style_b:1.0"]}))["sha256"]


def test_resolution_does_not_import_torch(lora_dir, tmp_path):
    code = (
        "import sys\nfrom vgen.lora import LoRAInjectionManager\nfrom vgen.config.schema import LoraConfig\n"
        f"m = LoRAInjectionManager()\nr = m.resolve_job(LoraConfig(dirs=[{str(lora_dir)!r}]), 'wan', "
        "{'lora_preset': 'anime_mix'}, num_steps=4)\n"
        "assert len(r.entries) == 2 and r.payload()\nassert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(REPO / "src")})


def test_listing_cli_prints_loras_and_presets(lora_dir):
    write_json(lora_dir / "UP.LSET", {"loras": ["style_b"]})
    write_json(lora_dir / "CONFIG.JSON", {"r": 4})
    result = subprocess.run(
        [sys.executable, "-m", "vgen.loras", f"lora.dirs=[{lora_dir}]"],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")}, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Style_A.safetensors" in result.stdout and str(lora_dir / "anime_mix.lset") in result.stdout
    assert "example_style.yaml" in result.stdout
    assert str(lora_dir / "UP.LSET") in result.stdout and "CONFIG.JSON" not in result.stdout


def test_upper_case_preset_suffixes_work_and_json_is_a_preset_only_when_shaped_like_one(manager, lora_dir):
    write_json(lora_dir / "UP.LSET", {"loras": ["style_b"], "loras_mult": "0.4", "prompt": "up,"})
    write_json(lora_dir / "X.JSON", {"activated_loras": ["Style_A.safetensors"], "loras_multipliers": "0.3"})
    write_json(lora_dir / "wan2gp_settings.json", {  # a Wan2GP settings file saved as a preset
        "activated_loras": ["style_b.safetensors"], "loras_multipliers": ["0.9"], "prompt": "p", "seed": 7,
        "num_inference_steps": 30, "full_prompt": False})
    write_json(lora_dir / "CONFIG.JSON", {"r": 4, "lora_alpha": 4})  # e.g. an adapter config
    write_json(lora_dir / "wrong_types.json", {"activated_loras": "style_b", "loras_multipliers": 1})
    (lora_dir / "list.json").write_text("[1, 2]")
    presets = manager.hydrate(cfg(lora_dir), "wan").presets
    assert {"UP.LSET", "X.JSON", "wan2gp_settings.json"} <= set(presets)
    assert not {"CONFIG.JSON", "wrong_types.json", "list.json"} & set(presets)
    up = manager.resolve_job(cfg(lora_dir), "wan", {"lora_preset": "up", "prompt": "x"}, num_steps=4)
    assert [(e.name, e.schedule.weight_at(0)) for e in up.entries] == [("style_b.safetensors", 0.4)]
    assert up.preset == "UP.LSET" and manager.apply_prompt(up, "x") == "up, x"
    x = manager.resolve_job(cfg(lora_dir, preset="X"), "wan", {}, num_steps=4)
    assert [(e.name, e.schedule.weight_at(0)) for e in x.entries] == [("Style_A.safetensors", 0.3)]


def test_upper_case_yaml_preset_in_the_group_dir(tmp_path, lora_dir):
    group = tmp_path / "upper_group"
    group.mkdir()
    (group / "LOUD.YAML").write_text("name: loud\nloras: ['style_b:0.2']\n")
    manager = LoRAInjectionManager(preset_group_dir=group)
    resolved = manager.resolve_job(cfg(lora_dir), "wan", {"lora_preset": "loud"}, num_steps=4)
    assert [(e.name, e.schedule.weight_at(0)) for e in resolved.entries] == [("style_b.safetensors", 0.2)]


@pytest.mark.parametrize("item", ["Style_A:abc", "no_such_lora:abc", "Style_A:1,x", "Style_A:"])
def test_a_bad_weight_is_reported_as_one_naming_the_lora_and_value(manager, lora_dir, item):
    name, _, weight = item.rpartition(":")
    with pytest.raises(ConfigError) as error:
        manager.resolve_job(cfg(lora_dir), "wan", {"loras": ["style_b", item]}, num_steps=4)
    assert f"LoRA {name!r}: bad weight {weight!r}" in str(error.value)
    assert "unknown LoRA" not in str(error.value)


def test_bad_weight_through_the_cli_exits_2_naming_the_job_before_any_model_loads(lora_dir, tmp_path):
    from conftest import run_vgen

    jobs = "queue.jobs=[{prompt: fine, loras: ['style_b:0.5']},{prompt: broken, loras: ['style_b:abc']}]"
    result = run_vgen(f"lora.dirs=[{lora_dir}]", jobs, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "bad weight" in line]
    assert "job 1 (" in line and "LoRA 'style_b': bad weight 'abc'" in line
    assert "unknown LoRA" not in result.stderr and not (tmp_path / "run" / "manifests").exists()


def test_dry_run_shows_each_jobs_loras_weights_and_transformed_prompt_without_torch(lora_dir, tmp_path):
    jobs = ("queue.jobs=[{prompt: a cat},{prompt: a dog, loras: ['style_b:1,0.5', {name: detail, weight: 0.3}]},"
            "{prompt: a fish, lora_preset: full},{prompt: plain, loras: []}]")
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['vgen', 'dry_run=true', 'model.experts=2', 'lora.preset=anime_mix', "
        f"'lora.dirs=[{lora_dir}]', {jobs!r}]\n"
        "try:\n    runpy.run_module('vgen', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('HEAVY', [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules])\n"
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    assert "HEAVY []" in plan and list(cwd.iterdir()) == []
    assert "; lora: none (preset anime_mix); " in plan
    cat, dog, fish, plain = plan.split("\n  [")[1:]
    assert "loras: Style_A.safetensors:1,0.5 style_b.safetensors:0.7 (preset anime_mix.lset)" in cat
    assert "prompt: zzstyle, a cat\n" in cat and "job prompt (before the LoRA prompt settings): a cat" in cat
    assert "loras: style_b.safetensors:1,0.5 1.3B/detail.sft:0.3\n      prompt: a dog" in dog
    assert "job prompt" not in dog
    assert "loras: 1.3B/detail.sft:1;0 (preset full.json)\n      prompt: a fixed full prompt\n" in fish
    assert "loras: none\n      prompt: plain" in plain
