"""Discovery of LoRA files and preset files, and name lookup with close-match suggestions."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from vgen.errors import ConfigError
from vgen.lora.presets import PRESET_SUFFIXES, YAML_SUFFIXES, is_wan2gp_json_preset, read_preset_data

LORA_SUFFIXES = (".safetensors", ".sft")


@dataclass(frozen=True)
class LoRALibrary:
    """What one discovery found: ``{name: path}`` where name is the path relative to its dir.

    Earlier dirs win when two dirs hold the same relative path.
    """

    loras: dict[str, Path] = field(default_factory=dict)
    presets: dict[str, Path] = field(default_factory=dict)
    searched: tuple[Path, ...] = ()

    def lora_path(self, name: str) -> tuple[str, Path]:
        return _lookup(self.loras, name, kind="LoRA", searched=self.searched)

    def preset_path(self, name: str) -> tuple[str, Path]:
        return _lookup(self.presets, name, kind="LoRA preset", searched=self.searched)


def expand_dirs(dirs: list[str], model_family: str) -> list[Path]:
    """``{family}`` in a configured dir is replaced by the model family (e.g. ``loras/{family}``)."""
    return [Path(str(entry).replace("{family}", model_family)).expanduser() for entry in dirs]


def _is_preset(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return True
    try:
        return is_wan2gp_json_preset(read_preset_data(path))
    except ConfigError:
        return False


def discover(dirs: list[Path], preset_dirs: list[Path] = ()) -> LoRALibrary:
    """Scan ``dirs`` recursively for LoRA files and presets; ``preset_dirs`` (not recursive) for presets."""
    loras: dict[str, Path] = {}
    presets: dict[str, Path] = {}
    for root in dirs:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            key = path.relative_to(root).as_posix()
            if path.suffix.lower() in LORA_SUFFIXES:
                loras.setdefault(key, path.resolve())
            elif path.suffix.lower() in PRESET_SUFFIXES and _is_preset(path):
                presets.setdefault(key, path.resolve())
    for root in preset_dirs:
        if root.is_dir():
            for path in sorted(root.iterdir()):
                if path.is_file() and path.suffix.lower() in YAML_SUFFIXES:
                    presets.setdefault(path.name, path.resolve())
    return LoRALibrary(loras=loras, presets=presets, searched=tuple(list(dirs) + list(preset_dirs)))


def _aliases(key: str) -> set[str]:
    """Names that select ``key``: its relative path, file name and stem (with or without subdir)."""
    path = Path(key)
    return {key.lower(), path.name.lower(), path.stem.lower(), path.with_suffix("").as_posix().lower()}


def _lookup(table: dict[str, Path], name: str, *, kind: str, searched: tuple[Path, ...]) -> tuple[str, Path]:
    wanted = name.strip().lower()
    exact = [key for key in table if key.lower() == wanted]
    matches = exact or [key for key in table if wanted in _aliases(key)]
    if len(matches) == 1:
        return matches[0], table[matches[0]]
    if matches:
        raise ConfigError(f"{kind} {name!r} is ambiguous: it matches {sorted(matches)}; use the relative path")
    candidates = {alias.lower(): key for key in table for alias in (key, Path(key).stem)}
    close = sorted({candidates[c] for c in difflib.get_close_matches(wanted, list(candidates), n=5, cutoff=0.5)})
    hint = f"; close matches: {close}" if close else f"; available: {sorted(table)[:20]}" if table else ""
    where = ", ".join(str(p) for p in searched) or "(no dirs configured)"
    raise ConfigError(f"unknown {kind} {name!r} (searched {where}){hint}")
