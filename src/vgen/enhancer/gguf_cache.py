"""Convert a GGUF checkpoint to transformers format once and keep it in the enhancer cache.

transformers de-quantises GGUF on every ``from_pretrained(..., gguf_file=...)`` (about 30 s for
SmolLM2-135M on 2 CPU cores, tokenizer included); the converted copy loads in under a second.
Entries are keyed by the GGUF file's name, size and mtime and written atomically (temp dir +
rename), so concurrent processes never see a half-written entry.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from vgen.enhancer.checkpoints import CheckpointSource

log = logging.getLogger(__name__)

_COMPLETE_MARKER = "config.json"


def cache_entry_name(gguf_path: Path) -> str:
    stat = gguf_path.stat()
    return f"{gguf_path.stem}-{stat.st_size}-{stat.st_mtime_ns}"


def converted_checkpoint(source: CheckpointSource, cache_root: Path) -> tuple[Path, bool]:
    """Directory with the converted model + tokenizer, and whether this call did the conversion."""
    gguf_path = source.directory / source.gguf_file
    entry = cache_root / cache_entry_name(gguf_path)
    if (entry / _COMPLETE_MARKER).is_file():
        return entry, False
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=cache_root))
    except OSError as exc:
        log.warning("enhancer cache %s is not writable (%s); converting into a temp dir", cache_root, exc)
        entry = Path(tempfile.mkdtemp(prefix="vgen-enhancer-")) / entry.name
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        _convert(source, staging)
        os.rename(staging, entry)
    except OSError:
        if not (entry / _COMPLETE_MARKER).is_file():  # not a lost race with another process
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry, True


def _convert(source: CheckpointSource, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:  # transformers >= 5 can keep GGUF blocks packed, and a packed model is not serialisable
        from transformers import GgufConfig

        dense = {"quantization_config": GgufConfig(dequantize=True)}
    except ImportError:  # older transformers always de-quantise
        dense = {}
    log.info("converting %s to transformers format (one-off)", source.directory / source.gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(source.directory, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source.directory, gguf_file=source.gguf_file, **dense)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
