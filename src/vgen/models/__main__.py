"""List every model config: ``python -m vgen.models [overrides...]`` (e.g. ``runtime.cache_dir=x``).

For each ``conf/model/*.yaml``: family, task, inputs, output kind, its generation defaults
(``model.generation_defaults``), and whether its checkpoint is present locally (and where). Composes the
same config as a run (so overrides such as ``runtime.cache_dir`` apply; ``model=NAME`` lists that model only).
Nothing is loaded or built and torch is not imported: presence is a look at the disk and the HF cache.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def describe_defaults(defaults) -> str:
    """``832x480, 81 frames, 50 steps, guidance 5.0, 16 fps`` from a model's generation_defaults ("" when unset)."""
    parts = [f"{defaults.width}x{defaults.height}" if defaults.height and defaults.width else None,
             f"{defaults.num_frames} frames" if defaults.num_frames else None,
             f"{defaults.steps} steps" if defaults.steps else None,
             None if defaults.guidance_scale is None else f"guidance {defaults.guidance_scale:g}"
             + ("" if defaults.guidance_scale_2 is None else f" / {defaults.guidance_scale_2:g}"),
             f"{defaults.fps} fps" if defaults.fps else None,
             None if defaults.strength is None else f"strength {defaults.strength:g}",
             None if defaults.duration_s is None else f"{defaults.duration_s:g} s"]
    return ", ".join(part for part in parts if part)


def checkpoint_location(model_cfg, cache_dir: str | None) -> tuple[bool, str]:
    """``(present, where)`` for ``model.source`` without loading or building anything."""
    from vgen.models.loader import BUILTIN_PREFIX

    source = model_cfg.source
    if source.startswith(BUILTIN_PREFIX):
        from vgen.models.tiny_wan import tiny_wan_dir

        target = tiny_wan_dir(cache_dir, source[len(BUILTIN_PREFIX):])
        built = (target / "model_index.json").is_file()
        return True, f"{target}" + ("" if built else " (built on first use)")
    local = Path(source).expanduser()
    if local.is_dir():
        return (local / "model_index.json").is_file(), str(local.resolve())
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:
        return False, f"{source} (no such directory)"
    from huggingface_hub import constants, try_to_load_from_cache

    found = try_to_load_from_cache(source, "model_index.json", revision=model_cfg.revision)
    if isinstance(found, str):
        return True, str(Path(found).parent)
    return False, f"not in the HF cache ({constants.HF_HUB_CACHE}); {model_cfg.download_hint or 'huggingface-cli download ' + source}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vgen.models", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides as for vgen, e.g. runtime.cache_dir=/x")
    args = parser.parse_args(argv)

    from hydra import compose, initialize_config_dir

    from vgen.cli import CONFIG_ERRORS, config_error_exit
    from vgen.conditioning.spec import output_kind
    from vgen.config.locate import config_dir
    from vgen.config.schema import register_schemas

    register_schemas()
    model_dir = config_dir() / "model"
    chosen = [o.split("=", 1)[1] for o in args.overrides if o.startswith("model=")]
    names = chosen or sorted(p.stem for p in model_dir.glob("*.yaml"))
    rest = [o for o in args.overrides if not o.startswith("model=")]
    rows = []
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            for name in names:
                cfg = compose("config", overrides=[*rest, f"model={name}"])
                present, where = checkpoint_location(cfg.model, cfg.runtime.cache_dir)
                rows.append((cfg.model, present, where, describe_defaults(cfg.model.generation_defaults)))
    except CONFIG_ERRORS as error:
        return config_error_exit(error)
    print(f"Model configs ({len(rows)}) in {model_dir}:")
    for model, present, where, defaults in rows:
        inputs = ", ".join(f"{key}{'' if spec.get('required') else '?'}" for key, spec in model.inputs.items())
        print(f"\n{model.name}  [{model.family}] {model.pipeline_class}")
        kind = output_kind(model) + (" + sound" if model.sound else "")
        print(f"  task {model.task} -> {kind}; inputs: prompt{', ' + inputs if inputs else ''}")
        if defaults:
            print(f"  defaults: {defaults}")
        print(f"  checkpoint {model.source}: " + (f"present at {where}" if present else f"MISSING: {where}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
