"""Everything Hydra must know before composing vgen's config: schemas and custom resolvers."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from vgen.config.model_defaults import register_resolver as register_model_default_resolver
from vgen.config.schema import register_schemas
from vgen.sweep.gpu_pinning import gpu_count
from vgen.matte.schema import register_matte_schemas


def register_all() -> None:
    """Idempotent; called on import of the app and by tests that compose configs."""
    register_schemas()
    register_matte_schemas()
    # The pid keeps two runs started in the same microsecond apart (see hydra.run.dir).
    OmegaConf.register_new_resolver("vgen_pid", lambda: str(os.getpid()), use_cache=True, replace=True)
    OmegaConf.register_new_resolver("vgen_gpu_count", gpu_count, use_cache=True, replace=True)  # local_gpus
    register_model_default_resolver()  # generation.* values that a model's generation_defaults replace
