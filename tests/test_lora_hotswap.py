"""Fixed LoRA slots (``vgen.lora.hotswap``) on the real tiny Wan pipeline: the outputs of one adapter per
file, files swapped in place, and each refusal failing only its job.

The slot logic does not depend on compilation, so these tests run it on an uncompiled pipeline (fast);
``test_compile.py`` runs a queue on a compiled one and counts torch._dynamo's graphs.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from lora_fixtures import ATTENTION_PROJECTIONS, FEED_FORWARD, generate, make_lora_file
from test_lora_activation import load_pipe, tiny_wan_dir  # noqa: F401 (a fixture)
from vgen.config.schema import LoraConfig
from vgen.errors import VgenError
from vgen.lora.hotswap import SlotLayout, SlotsLost
from vgen.lora.manager import LoRAInjectionManager

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # generates with the tiny model, two pipelines per test
LAYOUT = SlotLayout(count=2, max_rank=8)
SLOTS = ["vgen_slot_0", "vgen_slot_1"]


@pytest.fixture(scope="module")
def lora_dir(tiny_wan_dir, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("hotswap_loras")
    transformer = load_pipe(tiny_wan_dir).transformer
    make_lora_file(transformer, root / "a.safetensors", seed=1)
    make_lora_file(transformer, root / "b.safetensors", seed=2)
    make_lora_file(transformer, root / "half.safetensors", seed=3, rank=2, alpha=1.0)  # scale 0.5, not 1
    make_lora_file(transformer, root / "ffn.safetensors", seed=4, targets=FEED_FORWARD)
    make_lora_file(transformer, root / "rank16.safetensors", seed=5, rank=16)
    return root


class Runner:
    """One LoRA manager and pipeline; ``run(job)`` activates the job's LoRAs and generates."""

    def __init__(self, model_dir, lora_dir, slots: SlotLayout | None, *, experts: int = 1) -> None:
        self.pipe = load_pipe(model_dir) if experts == 1 else two_expert_pipe(model_dir)
        self.manager, self.lora_dir, self.slots, self.experts = LoRAInjectionManager(), lora_dir, slots, experts

    def run(self, job: dict):
        from vgen.lora.adapters import expert_phase_starts

        resolved = self.manager.resolve_job(LoraConfig(dirs=[str(self.lora_dir)]), "wan", job, num_steps=4,
                                            num_phases=self.experts, phase_starts=expert_phase_starts(self.pipe, 4))
        self.manager.activate(self.pipe, resolved, slots=self.slots)
        frames = generate(self.pipe, callback_on_step_end=self.manager.step_callback(self.pipe, resolved))
        return frames, resolved

    def adapters(self):
        return self.pipe.get_list_adapters()


def two_expert_pipe(model_dir):
    """Wan 2.2's layout: a second (low-noise) expert, here a copy with its own random weights."""
    import copy

    from diffusers import WanPipeline

    base = load_pipe(model_dir)
    second = copy.deepcopy(base.transformer)
    torch.manual_seed(7)
    for parameter in second.parameters():
        parameter.data.add_(torch.randn_like(parameter) * 0.05)
    pipe = WanPipeline(**dict(base.components, transformer_2=second), boundary_ratio=0.9)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def job(*loras) -> dict:
    return {"loras": [{"name": name, "weight": weight} for name, weight in loras]}


def test_slots_give_the_outputs_of_one_adapter_per_file(tiny_wan_dir, lora_dir):  # noqa: F811
    """A, then B and a rank-2 alpha-1 file together (both slots swapped), that file on a per-step
    schedule (its slot kept), no LoRA, A again: the same frames as the uncompiled path's adapters."""
    slotted, reference = Runner(tiny_wan_dir, lora_dir, LAYOUT), Runner(tiny_wan_dir, lora_dir, None)
    jobs = [job(("a", 1.0)), job(("b", 0.7), ("half", 1.0)), job(("half", "1,0,0.5,1")), {}, job(("a", 1.0))]
    outputs = []
    for number, spec in enumerate(jobs):
        frames, resolved = slotted.run(spec)
        expected, _ = reference.run(spec)
        assert slotted.adapters() == {"transformer": SLOTS}, number  # never an adapter more or less
        assert np.abs(frames - expected).max() < 1e-5, number
        outputs.append(frames)
    assert resolved.applied_weights == [[1.0]]
    assert slotted.manager.lora_file_loads == 4  # a; b and half swapped in; half kept; a swapped back
    assert np.array_equal(outputs[0], outputs[4])
    base = generate(load_pipe(tiny_wan_dir))
    assert np.array_equal(outputs[3], base)  # every slot at weight 0 is exactly no LoRA
    assert not np.allclose(outputs[1], outputs[0], atol=1e-3) and not np.allclose(outputs[2], base, atol=1e-3)
    slotted.manager.reset()
    assert not any(slotted.adapters().values())
    assert np.array_equal(slotted.run(job(("a", 1.0)))[0], outputs[0])  # slots rebuilt after a reset


def test_two_expert_phases_on_slots(tiny_wan_dir, lora_dir):  # noqa: F811
    """Wan 2.2: each file goes into the slot of both experts; '1;0' / '0;1' phases and a swap act as on
    the uncompiled path."""
    slotted, reference = (Runner(tiny_wan_dir, lora_dir, LAYOUT, experts=2),
                          Runner(tiny_wan_dir, lora_dir, None, experts=2))
    for spec in (job(("a", "1;0")), job(("b", "0;1"), ("half", "1;0.5")), job(("a", "0;1"))):
        frames, resolved = slotted.run(spec)
        assert slotted.adapters() == {"transformer": SLOTS, "transformer_2": SLOTS}
        assert np.abs(frames - reference.run(spec)[0]).max() < 1e-5
    assert resolved.applied_weights[0] == [0.0] and resolved.applied_weights[-1] == [1.0]


@pytest.mark.parametrize(("bad_job", "message"), [
    (job(("a", 1.0), ("b", 1.0), ("half", 1.0)), "the job uses 3 LoRA files but the compiled pipeline has 2 LoRA slot"),
    (job(("ffn", 1.0)), "cannot hotswap it into the compiled pipeline: it adapts 4 layer(s) that vgen_slot_"),
    (job(("rank16", 1.0)), "rank 16 is above runtime.lora_max_rank=8"),
])
def test_a_file_the_slots_cannot_take_fails_its_job_and_the_slots_keep_working(
        tiny_wan_dir, lora_dir, bad_job, message):  # noqa: F811
    slotted, reference = Runner(tiny_wan_dir, lora_dir, LAYOUT), Runner(tiny_wan_dir, lora_dir, None)
    slotted.run(job(("a", 1.0)))
    with pytest.raises(VgenError, match=re.escape(message)) as refused:
        slotted.run(bad_job)
    assert str(lora_dir) in str(refused.value) and "\n" not in str(refused.value)
    assert slotted.adapters() == {"transformer": SLOTS}
    frames, _ = slotted.run(job(("b", 1.0), ("a", 0.5)))
    expected, _ = reference.run(job(("b", 1.0), ("a", 0.5)))
    assert np.abs(frames - expected).max() < 1e-5


def test_a_first_file_above_the_max_rank_leaves_no_slot_behind(tiny_wan_dir, lora_dir):  # noqa: F811
    slotted = Runner(tiny_wan_dir, lora_dir, LAYOUT)
    with pytest.raises(VgenError, match="rank 16 is above runtime.lora_max_rank=8"):
        slotted.run(job(("rank16", 1.0)))
    assert not any(slotted.adapters().values())
    slotted.run(job(("a", 1.0)))
    assert slotted.adapters() == {"transformer": SLOTS}


def test_a_swap_diffusers_refuses_removes_the_slots_and_the_next_job_rebuilds_them(tiny_wan_dir, lora_dir, tmp_path):  # noqa: F811
    """A file whose metadata (as a trainer writes it) sets another dropout: peft cannot hotswap it into
    a slot holding a dropout-0 LoRA, and diffusers removes that slot while refusing."""
    from safetensors.torch import load_file, save_file

    metadata = {"transformer.r": 4, "transformer.lora_alpha": 4, "transformer.lora_dropout": 0.1,
                "transformer.target_modules": ATTENTION_PROJECTIONS}
    save_file(load_file(str(lora_dir / "b.safetensors")), str(tmp_path / "dropout.safetensors"),
              metadata={"format": "pt", "lora_adapter_metadata": json.dumps(metadata)})
    slotted = Runner(tiny_wan_dir, lora_dir, LAYOUT)
    slotted.lora_dir = tmp_path
    (tmp_path / "a.safetensors").write_bytes((lora_dir / "a.safetensors").read_bytes())
    slotted.run(job(("a", 1.0)))
    with pytest.raises(SlotsLost, match="dropout.safetensors.*the next LoRA job rebuilds them"):
        slotted.run(job(("dropout", 1.0), ("a", 1.0)))
    assert not any(slotted.adapters().values())
    frames, _ = slotted.run(job(("a", 1.0)))
    assert slotted.adapters() == {"transformer": SLOTS}
    assert np.abs(frames - Runner(tiny_wan_dir, lora_dir, None).run(job(("a", 1.0)))[0]).max() < 1e-5
