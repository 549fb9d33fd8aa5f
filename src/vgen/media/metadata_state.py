"""Per-run metadata policy, built once per run from ``cfg.metadata`` and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vgen.errors import ConfigError

METADATA_MODES = ("embedded", "json", "none")


@dataclass(frozen=True)
class MetadataState:
    mode: str  # "embedded" | "json" | "none"
    embed_source_images: bool = False

    @classmethod
    def from_config(cls, metadata_cfg: Any) -> "MetadataState":
        mode = metadata_cfg.get("mode") if isinstance(metadata_cfg, dict) else getattr(metadata_cfg, "mode", None)
        embed = (
            metadata_cfg.get("embed_source_images", False)
            if isinstance(metadata_cfg, dict)
            else getattr(metadata_cfg, "embed_source_images", False)
        )
        if mode not in METADATA_MODES:
            raise ConfigError(f"metadata.mode: expected one of {list(METADATA_MODES)}, got {mode!r}")
        return cls(mode=mode, embed_source_images=bool(embed))
