"""Compose vgen's config in-process exactly as ``python -m vgen`` would (for scripts and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig


def compose_run_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The task config of a run writing into ``run_dir``; ``${hydra:...}`` interpolations resolve."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from vgen.config.locate import config_dir
    from vgen.config.registry import register_all

    register_all()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=[f"run_dir={run_dir}", *overrides])
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # a hydra.main task config has no hydra node either
    return cfg
