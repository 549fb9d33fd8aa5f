"""LoRA preset files: Wan2GP ``.lset`` / ``.json`` and vgen YAML presets (``lora`` group options).

Parsing only: names stay as written (matched against discovered files later) and multipliers
stay unparsed strings/numbers (they need the job's step count).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgen.errors import ConfigError
from vgen.lora.multipliers import split_multiplier_tokens
from vgen.lora.prompts import PromptTransform

log = logging.getLogger(__name__)
PRESET_SUFFIXES = (".lset", ".json", ".yaml", ".yml")
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PresetSpec:
    """A parsed preset: ``entries`` are (LoRA name, multiplier spec) in order."""

    entries: list[tuple[str, str | float]] = field(default_factory=list)
    prompt: PromptTransform = field(default_factory=PromptTransform)


def parse_lora_entries(items: Any, *, source: str) -> list[tuple[str, str | float]]:
    """``[{name, weight}]`` or ``["name:weight", "name"]`` -> [(name, weight)] (weight defaults to 1.0).

    In the string form the weight is what follows the last ``:`` (checked later, with the step count);
    a LoRA whose name contains ``:`` is selected with the ``{name, weight}`` form.
    """
    if items is None:
        return []
    if isinstance(items, (str, Mapping)) or not isinstance(items, Sequence):
        items = [items]
    entries = []
    for index, item in enumerate(items):
        where = f"{source}[{index}]"
        if isinstance(item, str):
            name, colon, weight = item.strip().rpartition(":")
            name, weight = (name, weight.strip()) if colon else (weight, 1.0)
        elif isinstance(item, Mapping):
            unknown = set(item) - {"name", "weight"}
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} (expected name, weight)")
            name, weight = item.get("name"), item.get("weight", 1.0)
        else:
            raise ConfigError(f"{where}: expected 'name:weight' or {{name, weight}}, got {item!r}")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: missing LoRA name")
        if weight is None or isinstance(weight, bool) or not isinstance(weight, (str, int, float)):
            raise ConfigError(f"{where}: weight must be a number or a multiplier string, got {weight!r}")
        entries.append((name.strip(), weight))
    return entries


def _zip_multipliers(names: list[str], multipliers: Any, *, path: Path) -> list[tuple[str, str | float]]:
    """Pair LoRA names with Wan2GP multiplier tokens; missing tokens mean 1.0, extra ones are ignored
    (as in Wan2GP, but with a warning)."""
    if isinstance(multipliers, list):
        multipliers = "\n".join(str(item) for item in multipliers)
    try:
        tokens = split_multiplier_tokens(multipliers if isinstance(multipliers, str) else str(multipliers or ""))
    except ConfigError as error:
        raise ConfigError(f"LoRA preset {path}: {error}") from None
    if len(tokens) > len(names):
        log.warning("LoRA preset %s: %d multipliers for %d LoRA(s); ignoring the extra %s",
                    path, len(tokens), len(names), tokens[len(names):])
    tokens = tokens[: len(names)] + ["1.0"] * (len(names) - len(tokens))
    return list(zip(names, tokens))


def _string_list(value: Any, *, key: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: '{key}' must be a list of LoRA file names")
    return value


def _parse_wan2gp(data: Mapping, path: Path, *, loras_key: str, mult_key: str) -> PresetSpec:
    names = _string_list(data.get(loras_key, []), key=loras_key, path=path)
    return PresetSpec(
        entries=_zip_multipliers(names, data.get(mult_key, ""), path=path),
        prompt=PromptTransform.from_preset(data.get("prompt"), bool(data.get("full_prompt", False))),
    )


def _parse_yaml(data: Mapping, path: Path) -> PresetSpec:
    return PresetSpec(
        entries=parse_lora_entries(data.get("loras") or [], source=f"{path}: loras"),
        prompt=PromptTransform.from_preset(
            data.get("prompt"),
            bool(data.get("full_prompt", False)),
            data.get("prompt_prefix") or "",
            data.get("prompt_suffix") or "",
        ),
    )


def is_wan2gp_json_preset(data: Any) -> bool:
    """A ``.json`` in a LoRA dir is a preset only if it is shaped like one (other JSON files are ignored).

    Wan2GP's JSON presets are settings files: ``activated_loras`` (a list of file names) and optionally
    ``loras_multipliers`` (a string or a list of strings), ``prompt`` and ``full_prompt``, possibly
    among other generation settings.
    """
    if not isinstance(data, Mapping):
        return False
    names, multipliers = data.get("activated_loras"), data.get("loras_multipliers", "")
    return (
        isinstance(names, list)
        and all(isinstance(name, str) for name in names)
        and (isinstance(multipliers, str) or isinstance(multipliers, list) and all(
            isinstance(item, (str, int, float)) for item in multipliers))
        and isinstance(data.get("prompt", ""), (str, type(None)))
        and isinstance(data.get("full_prompt", False), (bool, int))
    )


def read_preset_data(path: Path) -> Any:
    """The raw mapping of a preset file (``ConfigError`` naming the file when unreadable)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8-sig")  # a preset saved by Windows Notepad starts with a BOM
        if path.suffix.lower() in YAML_SUFFIXES:
            return yaml.safe_load(text) or {}
        return json.loads(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"LoRA preset {path}: cannot read it ({error})") from error


def load_preset(path: str | Path) -> PresetSpec:
    """Parse a preset file, dispatching on its suffix (in any case: ``UP.LSET`` is an ``.lset``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    data = read_preset_data(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"LoRA preset {path}: expected a mapping at the top level")
    if suffix == ".lset":
        return _parse_wan2gp(data, path, loras_key="loras", mult_key="loras_mult")
    if suffix == ".json":
        return _parse_wan2gp(data, path, loras_key="activated_loras", mult_key="loras_multipliers")
    if suffix in YAML_SUFFIXES:
        return _parse_yaml(data, path)
    raise ConfigError(f"LoRA preset {path}: unsupported file type (expected one of {PRESET_SUFFIXES})")
