"""Every config option and experiment composes; bad values fail at compose time naming the key."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from vgen.config.locate import config_dir
from vgen.config.registry import register_all
from vgen.config.schema import GROUP_SCHEMAS

CONF = config_dir()
GROUPS = sorted(GROUP_SCHEMAS)


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def compose_vgen(overrides: list[str]):
    register_all()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes(group, option):
    cfg = compose_vgen([f"{group}={option}"])
    assert cfg[group] is not None
    OmegaConf.to_container(cfg[group], resolve=True, throw_on_missing=group != "enhancer")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose_vgen([f"+experiment={experiment}"])
    assert cfg.model.name


def test_required_options_exist():
    assert {"tiny_wan", "wan21_t2v_1_3b"} <= set(options("model"))
    assert {"embedded", "json", "none"} <= set(options("metadata"))
    assert "mp4_h264" in options("output") and "none" in options("lora") and "none" in options("enhancer")
    assert len(options("experiment")) >= 2


def test_defaults():
    cfg = compose_vgen([])
    assert (cfg.model.name, cfg.output.name, cfg.metadata.mode) == ("tiny_wan", "mp4_h264", "embedded")
    assert cfg.queue.jobs == [] and 2 <= len(cfg.queue.default_jobs) <= 3


@pytest.mark.parametrize(
    "override,key",
    [
        ("generation.steps=many", "steps"),
        ("generation.bogus=1", "bogus"),
        ("model.bogus=1", "bogus"),
        ("output.crf=high", "crf"),
        ("runtime.vae_tiling=maybe", "vae_tiling"),
    ],
)
def test_bad_values_fail_naming_the_key(override, key):
    with pytest.raises((ConfigCompositionException, ValidationError, ConfigKeyError)) as info:
        compose_vgen([override])
    message = str(info.value) + str(info.value.__cause__)
    assert key in message


def test_unknown_key_in_a_group_file_fails(tmp_path):
    """A YAML option with a key its schema lacks is rejected at compose time, naming the key."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "model" / "typo.yaml").write_text(
        "defaults:\n  - base_model\n  - _self_\nname: typo\nsource: builtin:tiny_wan\npipline_class: WanPipeline\n"
    )
    (conf / "model" / "badtype.yaml").write_text(
        "defaults:\n  - base_model\n  - _self_\nname: badtype\nsource: builtin:tiny_wan\nframe_multiple: four\n"
    )
    register_all()
    for option, key in (("typo", "pipline_class"), ("badtype", "frame_multiple")):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            with pytest.raises(Exception) as info:
                compose(config_name="config", overrides=[f"model={option}"])
        assert key in str(info.value) + str(info.value.__cause__)


def test_unknown_option_fails():
    with pytest.raises(Exception) as info:
        compose_vgen(["model=does_not_exist"])
    assert "does_not_exist" in str(info.value)
