"""Real LoRA adapters on the real tiny Wan pipeline: weights, schedules, preset switching, errors."""

import time

import numpy as np
import pytest

from lora_fixtures import (ATTENTION_PROJECTIONS, FEED_FORWARD, generate, make_lora_file,
                           rewrite_in_other_format, write_json)
from vgen.config.schema import LoraConfig
from vgen.errors import VgenError
from vgen.lora.manager import LoRAInjectionManager

torch = pytest.importorskip("torch")


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory):
    from vgen.models.tiny_wan import ensure_tiny_wan

    return ensure_tiny_wan(tmp_path_factory.mktemp("vgen_cache"))


def load_pipe(model_dir):
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def lora_dir(tiny_wan_dir, tmp_path_factory):
    """Two real LoRA files for the tiny transformer and two Wan2GP presets using them."""
    root = tmp_path_factory.mktemp("loras")
    transformer = load_pipe(tiny_wan_dir).transformer
    make_lora_file(transformer, root / "style_a.safetensors", seed=1)
    make_lora_file(transformer, root / "sub" / "style_b.safetensors", seed=2)
    write_json(root / "preset_a.lset", {"loras": ["style_a.safetensors"], "loras_mult": "1.0", "prompt": ""})
    write_json(root / "preset_b.json", {"activated_loras": ["style_b.safetensors", "style_a.safetensors"],
                                        "loras_multipliers": "0.8\n# half of a\n0.5"})
    return root


@pytest.fixture
def pipe(tiny_wan_dir):
    return load_pipe(tiny_wan_dir)


def resolve(manager, lora_dir, job):
    return manager.resolve_job(LoraConfig(dirs=[str(lora_dir)]), "wan", job, num_steps=4)


def run_job(manager, pipe, resolved, prompt="a red fox running"):
    manager.activate(pipe, resolved)
    callback = manager.step_callback(pipe, resolved)
    return generate(pipe, manager.apply_prompt(resolved, prompt), callback_on_step_end=callback)


@pytest.mark.slow
def test_weight_one_changes_output_and_zero_or_none_reproduce_base(pipe, lora_dir, tmp_path):
    manager = LoRAInjectionManager(preset_group_dir=tmp_path)
    base = run_job(manager, pipe, resolve(manager, lora_dir, {}))
    full = run_job(manager, pipe, resolve(manager, lora_dir, {"loras": ["style_a:1.0"]}))
    none_after = run_job(manager, pipe, resolve(manager, lora_dir, {"loras": []}))  # right after weight 1.0
    zero = run_job(manager, pipe, resolve(manager, lora_dir, {"loras": ["style_a:0.0"]}))
    full_again = run_job(manager, pipe, resolve(manager, lora_dir, {"loras": ["style_a"]}))  # re-enabled
    assert np.abs(full - base).max() > 1e-3
    np.testing.assert_array_equal(zero, base)
    np.testing.assert_array_equal(none_after, base)
    np.testing.assert_array_equal(full_again, full)
    assert manager.lora_file_loads == 1


@pytest.mark.slow
def test_schedule_sets_expected_weight_at_each_step(pipe, lora_dir, tmp_path):
    manager = LoRAInjectionManager(preset_group_dir=tmp_path)
    resolved = resolve(manager, lora_dir, {"loras": ["style_a:1.0,0.5,0.0,0.0"]})
    adapter = resolved.entries[0].adapter_name
    manager.activate(pipe, resolved)
    layer = pipe.transformer.blocks[0].attn1.to_q  # a peft LoRA layer once the adapter is loaded
    seen = []  # the scaling the LoRA layer actually uses in each transformer forward
    handle = layer.register_forward_pre_hook(lambda module, args: seen.append(module.scaling[adapter]))
    try:
        callback = manager.step_callback(pipe, resolved)
        assert callback is not None
        generate(pipe, callback_on_step_end=callback)
    finally:
        handle.remove()
    assert resolved.applied_weights == [[1.0], [0.5], [0.0], [0.0]]
    assert seen == [1.0, 0.5, 0.0, 0.0]  # guidance 1.0: one forward per step
    assert manager.step_callback(pipe, resolve(manager, lora_dir, {"loras": ["style_a:0.7"]})) is None


@pytest.mark.slow
def test_two_presets_alternate_with_one_model_load_and_one_load_per_file(tiny_wan_dir, lora_dir, tmp_path, capsys):
    started = time.perf_counter()
    pipe = load_pipe(tiny_wan_dir)  # the only base-model load
    model_load_s = time.perf_counter() - started
    manager = LoRAInjectionManager(preset_group_dir=tmp_path)
    jobs = [{"lora_preset": name} for name in ("preset_a", "preset_b", "preset_a", "preset_b")]
    outputs, switch_s = [], []
    for job in jobs:
        resolved = resolve(manager, lora_dir, job)
        started = time.perf_counter()
        manager.activate(pipe, resolved)
        switch_s.append(time.perf_counter() - started)
        outputs.append(generate(pipe))
        assert resolved.applied_weights == [[1.0]] if job["lora_preset"] == "preset_a" else [[0.8, 0.5]]
    assert manager.lora_file_loads == 2  # style_a and style_b, each once
    assert sorted(pipe.get_list_adapters()["transformer"]) == sorted(
        {e.adapter_name for job in jobs for e in resolve(manager, lora_dir, job).entries})
    np.testing.assert_array_equal(outputs[0], outputs[2])
    np.testing.assert_array_equal(outputs[1], outputs[3])
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-3
    with capsys.disabled():
        print(f"\n[lora] base model load {model_load_s * 1000:.1f} ms; activate (first loads) "
              f"{switch_s[0] * 1000:.1f}/{switch_s[1] * 1000:.1f} ms; preset switch (cached) "
              f"{switch_s[2] * 1000:.1f}/{switch_s[3] * 1000:.1f} ms")


def test_corrupt_or_unfitting_file_raises_vgen_error_naming_it_and_pipe_keeps_working(pipe, lora_dir, tmp_path):
    from safetensors.torch import save_file

    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "corrupt.safetensors").write_bytes(b"not a safetensors file" * 4)
    save_file({"transformer.nowhere.lora_A.weight": torch.zeros(4, 8),
               "transformer.nowhere.lora_B.weight": torch.zeros(8, 4)}, str(bad_dir / "misfit.safetensors"))
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 7),
               "transformer.blocks.0.attn1.to_q.lora_B.weight": torch.zeros(24, 4)},
              str(bad_dir / "shape.safetensors"))
    manager = LoRAInjectionManager(preset_group_dir=tmp_path / "no_group")
    config = LoraConfig(dirs=[str(bad_dir), str(lora_dir)])
    for name in ("corrupt", "misfit", "shape"):
        resolved = manager.resolve_job(config, "wan", {"loras": [name]}, num_steps=4)
        with pytest.raises(VgenError, match=f"{name}.safetensors"):
            manager.activate(pipe, resolved)
    assert pipe.get_list_adapters() in ({}, {"transformer": []})
    good = manager.resolve_job(config, "wan", {"loras": ["style_a"]}, num_steps=4)
    manager.activate(pipe, good)
    assert manager.lora_file_loads == 1 and good.applied_weights == [[1.0]]


def test_reset_unloads_adapters_from_tracked_pipes(pipe, lora_dir, tmp_path):
    manager = LoRAInjectionManager(preset_group_dir=tmp_path)
    manager.activate(pipe, resolve(manager, lora_dir, {"loras": ["style_a", "style_b:0.3"]}))
    assert len(pipe.get_list_adapters()["transformer"]) == 2
    manager.reset()
    assert pipe.get_list_adapters().get("transformer", []) == []
    manager.activate(pipe, resolve(manager, lora_dir, {"loras": ["style_a"]}))  # loads again after reset
    assert manager.lora_file_loads == 3


@pytest.mark.slow
def test_phased_multiplier_on_two_expert_pipeline(tiny_wan_dir, lora_dir, tmp_path):
    """Wan 2.2 layout: the LoRA goes into both experts; '1;0' is on for transformer, off for transformer_2."""
    import copy

    from diffusers import WanPipeline

    from vgen.lora.adapters import expert_phase_starts

    base = load_pipe(tiny_wan_dir)
    components = dict(base.components, transformer_2=copy.deepcopy(base.transformer))
    pipe = WanPipeline(**components, boundary_ratio=0.9)
    pipe.set_progress_bar_config(disable=True)
    starts = expert_phase_starts(pipe, 4)
    assert starts[0] == 0 and 0 < starts[1] < 4
    manager = LoRAInjectionManager(preset_group_dir=tmp_path)
    resolved = manager.resolve_job(LoraConfig(dirs=[str(lora_dir)]), "wan", {"loras": ["style_a:1;0"]},
                                   num_steps=4, num_phases=2, phase_starts=starts)
    manager.activate(pipe, resolved)
    adapter = resolved.entries[0].adapter_name
    assert pipe.get_list_adapters() == {"transformer": [adapter], "transformer_2": [adapter]}
    seen = []
    for label, expert in (("high", pipe.transformer), ("low", pipe.transformer_2)):
        expert.blocks[0].attn1.to_q.register_forward_pre_hook(
            lambda module, args, label=label: seen.append((label, module.scaling[adapter])))
    generate(pipe, callback_on_step_end=manager.step_callback(pipe, resolved))
    assert seen == [("high", 1.0)] * starts[1] + [("low", 0.0)] * (4 - starts[1])
    assert manager.lora_file_loads == 1


@pytest.mark.slow
def test_same_content_under_two_names_is_one_adapter_with_the_summed_weight(pipe, lora_dir, tmp_path):
    """A LoRA and its copy: 0.2 + 0.8 is exactly 1.0 (not 0.8 twice), schedules sum per step."""
    import shutil

    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(lora_dir / "style_a.safetensors", copies / "style_a_copy.safetensors")
    manager = LoRAInjectionManager(preset_group_dir=tmp_path / "no_group")
    config = LoraConfig(dirs=[str(lora_dir), str(copies)])

    def run(*loras):
        resolved = manager.resolve_job(config, "wan", {"loras": list(loras)}, num_steps=4)
        return resolved, run_job(manager, pipe, resolved)

    split, split_frames = run("style_a:0.2", "style_a_copy:0.8")
    _, strong_frames = run("style_a:1.6")
    _, one_frames = run("style_a:1.0")
    scheduled, scheduled_frames = run("style_a:1,0", "style_a_copy:0,1")
    assert np.abs(split_frames - strong_frames).max() > 1e-3
    np.testing.assert_array_equal(split_frames, one_frames)
    np.testing.assert_array_equal(scheduled_frames, one_frames)
    assert split.adapter_names == [split.entries[0].adapter_name] and split.applied_weights == [[1.0]]
    assert scheduled.applied_weights == [[1.0]] * 4
    assert manager.lora_file_loads == 1 and len(pipe.get_list_adapters()["transformer"]) == 1
    recorded = [(e["name"], e["weight"], e["sha256"]) for e in split.payload()["loras"]]
    digest = split.entries[0].sha256
    assert recorded == [("style_a.safetensors", {"constant": 0.2}, digest),
                        ("style_a_copy.safetensors", {"constant": 0.8}, digest)]


@pytest.fixture(scope="session")
def foreign_dir(tiny_wan_dir, tmp_path_factory):
    """LoRA files as other tools write them, and files made for other models."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("foreign")
    transformer = load_pipe(tiny_wan_dir).transformer
    full = make_lora_file(transformer, root / "diffusers_full.safetensors", seed=5,
                          targets=ATTENTION_PROJECTIONS + FEED_FORWARD)
    for style in ("comfy", "comfy_down_up", "musubi", "peft", "bare", "down_up"):
        rewrite_in_other_format(full, root / f"{style}.safetensors", style)
    attention_only = make_lora_file(transformer, root / "scratch" / "attention.safetensors", seed=6)
    rewrite_in_other_format(attention_only, root / "musubi_attention_only.safetensors", "musubi")
    from diffusers import WanTransformer3DModel

    wider = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                                  out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                                  cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    make_lora_file(wider, root / "wider_wan.safetensors", seed=7)
    save_file({"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 8),
               "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(8, 4)},
              str(root / "flux_style.safetensors"))
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(8, 4),
               "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)},
              str(root / "sd_kohya.safetensors"))
    save_file({"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 8),
               "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(8, 4)},
              str(root / "text_encoder_only.safetensors"))
    return root


@pytest.mark.slow
def test_comfy_and_musubi_key_formats_load_and_mean_the_same_weights(pipe, foreign_dir, tmp_path):
    manager = LoRAInjectionManager(preset_group_dir=tmp_path)
    config = LoraConfig(dirs=[str(foreign_dir)])

    def frames(*names):
        return run_job(manager, pipe, manager.resolve_job(config, "wan", {"loras": list(names)}, num_steps=4))

    reference = frames("diffusers_full")
    assert np.abs(reference - frames()).max() > 1e-3  # the LoRA does change the frames
    for style in ("comfy", "comfy_down_up", "musubi"):
        np.testing.assert_allclose(frames(style), reference, atol=1e-6, err_msg=style)


@pytest.mark.parametrize(("name", "reason"), [
    ("wider_wan", "16 of its 16 layers have other shapes than in WanTransformer3DModel (blocks.0.attn1.to_k "
                  "32->32 in the LoRA, 24->24 in the model, blocks.0.attn1.to_out.0 32->32 in the LoRA, 24->24 in "
                  "the model and 14 more): made for another model size or family"),
    ("flux_style", "none of its 1 layers exist in WanTransformer3DModel (e.g. single_transformer_blocks.0.attn.to_q)"
                   ": made for another model family"),
    ("sd_kohya", "WanPipeline cannot convert its keys (e.g. lora_unet_down_blocks_0_attentions_0_proj_in.alpha, "
                 "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight and 1 more): made for another model "
                 "family or in a LoRA format diffusers does not convert for it"),
    ("musubi_attention_only", "WanPipeline cannot convert its keys (e.g. lora_unet_blocks_0_cross_attn_k.alpha"),
    ("text_encoder_only", "none of its keys are for the WanTransformer3DModel (e.g. "
                          "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"),
    ("peft", "its keys name WanTransformer3DModel layers but in a key format WanPipeline does not load (e.g. "
             "base_model.model.blocks.0.attn1.to_k.lora_A.weight"),
    ("bare", "its keys name WanTransformer3DModel layers but in a key format WanPipeline does not load (e.g. "
             "blocks.0.attn1.to_k.lora_A.weight"),
    ("down_up", "its keys name WanTransformer3DModel layers but in a key format WanPipeline does not load (e.g. "
                "transformer.blocks.0.attn1.to_k.lora_down.weight"),
])
def test_a_lora_that_does_not_fit_says_why_in_one_line(pipe, foreign_dir, tmp_path, name, reason):
    manager = LoRAInjectionManager(preset_group_dir=tmp_path)
    resolved = manager.resolve_job(LoraConfig(dirs=[str(foreign_dir)]), "wan", {"loras": [name]}, num_steps=4)
    with pytest.raises(VgenError) as error:
        manager.activate(pipe, resolved)
    message = str(error.value)
    assert message.startswith(f"LoRA file {foreign_dir / name}.safetensors: cannot load it into WanPipeline: ")
    assert reason in message and "\n" not in message
    assert pipe.get_list_adapters() in ({}, {"transformer": []})
