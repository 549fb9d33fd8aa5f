"""List discovered LoRAs and presets: ``python -m vgen.loras [overrides...]`` (e.g. ``lora.dirs=[x]``).

Composes the same config as a run, so ``lora.dirs`` and ``model.family`` come from the usual
groups and overrides. No model is loaded.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vgen.loras", description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides as for vgen, e.g. lora.dirs=[my/loras]")
    args = parser.parse_args(argv)

    from hydra import compose, initialize_config_dir

    from vgen.cli import CONFIG_ERRORS, config_error_exit
    from vgen.config.locate import config_dir
    from vgen.config.schema import register_schemas
    from vgen.lora.manager import LoRAInjectionManager

    register_schemas()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=args.overrides)
        manager = LoRAInjectionManager()
        library = manager.hydrate(cfg.lora, cfg.model.family)
    except CONFIG_ERRORS as error:
        return config_error_exit(error)
    print(f"LoRA dirs for model family {cfg.model.family!r}: {', '.join(map(str, library.searched))}")
    print(f"LoRAs ({len(library.loras)}):")
    for name, path in library.loras.items():
        print(f"  {name}  {path}")
    print(f"Presets ({len(library.presets)}):")
    for name, path in library.presets.items():
        print(f"  {name}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
