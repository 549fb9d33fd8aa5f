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


def test_missing_multipliers_default_to_one_and_extra_ones_fail(tmp_path):
    short = write_json(tmp_path / "s.lset", {"loras": ["a", "b"], "loras_mult": "0.5"})
    assert load_preset(short).entries == [("a", "0.5"), ("b", "1.0")]
    extra = write_json(tmp_path / "x.lset", {"loras": ["a"], "loras_mult": "0.5 0.6"})
    with pytest.raises(ConfigError, match="x.lset"):
        load_preset(extra)
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
    result = subprocess.run(
        [sys.executable, "-m", "vgen.loras", f"lora.dirs=[{lora_dir}]"],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")}, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Style_A.safetensors" in result.stdout and str(lora_dir / "anime_mix.lset") in result.stdout
    assert "example_style.yaml" in result.stdout
