"""Wan2GP multiplier syntax -> per-step / per-phase LoRA weights (pure parsing)."""

import pytest

from vgen.errors import ConfigError
from vgen.hashing import payload_hash
from vgen.lora.multipliers import parse_multiplier, split_multiplier_tokens


def weights(schedule, num_steps, phase=0):
    return [schedule.weight_at(step, phase) for step in range(num_steps)]


def test_constant_from_float_and_string_have_the_same_payload():
    for spec in (0.8, "0.8", " 0.80 "):
        schedule = parse_multiplier(spec, num_steps=4)
        assert weights(schedule, 4) == [0.8] * 4
        assert schedule.to_payload() == {"constant": 0.8}
    assert payload_hash(parse_multiplier(1, num_steps=4).to_payload()) == payload_hash(
        parse_multiplier("1.0", num_steps=4).to_payload()
    )


def test_per_step_values_spread_evenly_over_the_steps():
    assert weights(parse_multiplier("1.0,0.5,0.0,0.0", num_steps=4), 4) == [1.0, 0.5, 0.0, 0.0]
    assert weights(parse_multiplier("1,0", num_steps=4), 4) == [1.0, 1.0, 0.0, 0.0]
    thirty = weights(parse_multiplier("0.9,0.8,0.7", num_steps=30), 30)  # Wan2GP docs example
    assert thirty == [0.9] * 10 + [0.8] * 10 + [0.7] * 10
    assert parse_multiplier("1,0", num_steps=4).to_payload() == {"steps": [1.0, 0.0]}


def test_phases_split_steps_and_each_phase_spreads_its_own_values():
    schedule = parse_multiplier("0.9,0.8;1.2,1.1,1", num_steps=6, num_phases=2, phase_starts=[0, 2])
    assert [schedule.weight_for_step(step) for step in range(6)] == [0.9, 0.8, 1.2, 1.2, 1.1, 1.0]
    even = parse_multiplier("1;0", num_steps=4, num_phases=2)
    assert [even.weight_for_step(step) for step in range(4)] == [1.0, 1.0, 0.0, 0.0]
    assert even.to_payload() == {"phases": [[1.0], [0.0]], "phase_starts": [0, 2]}
    shared = parse_multiplier("0.8,0.7,0.5", num_steps=6, num_phases=2)  # no ';': phases ignored
    assert weights(shared, 6, phase=1) == [0.8, 0.8, 0.7, 0.7, 0.5, 0.5]


@pytest.mark.parametrize(
    ("spec", "kwargs", "needle"),
    [
        ("1.0,abc", {}, "'abc'"),
        ("x", {}, "'x'"),
        ("", {}, "empty"),
        ("1;0", {}, "'1;0'"),  # two phases on a one-phase model
        ("1;0;1", {"num_phases": 2}, "3 ';'-separated"),
        ("1|0", {}, "'1|0'"),  # '|' separates LoRAs' tokens, it is not part of one weight
        (1.0, {"num_phases": 2, "phase_starts": [3, 1]}, "phase starts"),
    ],
)
def test_bad_multipliers_raise_config_error_naming_the_token(spec, kwargs, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        parse_multiplier(spec, num_steps=4, **kwargs)


def test_split_tokens_handles_spaces_newlines_and_comments():
    text = "# high noise lora first\n1;0  0.5\r\n# a comment\n0.9,0.8\n\n"
    assert split_multiplier_tokens(text) == ["1;0", "0.5", "0.9,0.8"]
    assert split_multiplier_tokens(["1.0", 0.5]) == ["1.0", "0.5"]
    assert split_multiplier_tokens("") == [] and split_multiplier_tokens(None) == []


def test_a_bar_is_one_more_token_separator_and_only_one_is_allowed():
    """Wan2GP's parser reads '|' (accelerator LoRAs | the user's LoRAs) as a separator."""
    assert split_multiplier_tokens("1 0.5 | 0.3") == ["1", "0.5", "0.3"]
    assert split_multiplier_tokens("0.9,0.8;1.2|0.5;0.8\n# a | in a comment\n") == ["0.9,0.8;1.2", "0.5;0.8"]
    with pytest.raises(ConfigError, match="at most one '\\|'"):
        split_multiplier_tokens("1 | 2 | 3")


def test_fewer_phases_than_the_model_are_padded_with_the_last_value():
    """Wan2GP: '1;0' on a three-phase model is '1;0;0'; more parts than phases stay an error."""
    schedule = parse_multiplier("1;0.5", num_steps=6, num_phases=3)
    assert schedule.phases == ((1.0,), (0.5,), (0.5,))
    assert [schedule.weight_for_step(step) for step in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    assert parse_multiplier("0.9,0.8;1", num_steps=6, num_phases=3).to_payload() == {
        "phases": [[0.9, 0.8], [1.0], [1.0]], "phase_starts": [0, 2, 4]}
    with pytest.raises(ConfigError, match="3 ';'-separated phases but the model has 2"):
        parse_multiplier("1;0;1", num_steps=4, num_phases=2)


def test_text_form_round_trips_through_the_parser():
    for spec, phases in (("0.8", 1), ("1,0.5,0", 1), ("1;0", 2), ("0.9,0.8;1.2,1.1", 2)):
        schedule = parse_multiplier(spec, num_steps=8, num_phases=phases)
        assert schedule.to_text() == spec
        assert parse_multiplier(schedule.to_text(), num_steps=8, num_phases=phases) == schedule
