"""The built-in model is the same on every machine: two builds are identical, the cache is reused."""

from __future__ import annotations

import pytest

from vgen.models.tiny_wan import TINY_WAN_VERSION, build_tiny_wan_pipeline, ensure_tiny_wan


def test_two_builds_are_identical():
    import torch

    first, second = build_tiny_wan_pipeline(), build_tiny_wan_pipeline()
    assert first.tokenizer.get_vocab() == second.tokenizer.get_vocab()
    for component in ("transformer", "vae", "text_encoder"):
        a, b = getattr(first, component).state_dict(), getattr(second, component).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), component


def test_cache_is_built_once(tmp_path):
    directory = ensure_tiny_wan(tmp_path)
    assert directory.name == f"tiny_wan-v{TINY_WAN_VERSION}" and (directory / "model_index.json").is_file()
    stamp = (directory / "model_index.json").stat().st_mtime_ns
    assert ensure_tiny_wan(tmp_path) == directory
    assert (directory / "model_index.json").stat().st_mtime_ns == stamp
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".tiny_wan-")]


@pytest.mark.parametrize("source", ["builtin:nope"])
def test_unknown_builtin_is_a_config_error(source, tmp_path):
    from types import SimpleNamespace

    from vgen.errors import ConfigError
    from vgen.models.loader import resolve_source

    with pytest.raises(ConfigError, match="unknown built-in model 'nope'"):
        resolve_source(SimpleNamespace(source=source), str(tmp_path))


def test_image_to_video_builtin_is_built_once_into_its_own_dir_and_identical(tmp_path):
    import torch

    from vgen.models.tiny_wan import build_tiny_wan_i2v_pipeline

    directory = ensure_tiny_wan(tmp_path, "tiny_wan_i2v")
    assert directory.name == f"tiny_wan_i2v-v{TINY_WAN_VERSION}" and (directory / "image_encoder").is_dir()
    assert ensure_tiny_wan(tmp_path, "tiny_wan_i2v") == directory
    first, second = build_tiny_wan_i2v_pipeline(), build_tiny_wan_i2v_pipeline()
    for component in ("transformer", "image_encoder"):
        a, b = getattr(first, component).state_dict(), getattr(second, component).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), component
