"""LoRA multiplier strings (Wan2GP syntax) parsed into per-step, per-phase weight schedules.

Syntax of one LoRA's multiplier:

- ``0.8``                 constant weight;
- ``1.0,0.8,0.5``         values spread evenly over the denoising steps (Wan2GP: with 30 steps,
                          steps 0-9 use 1.0, 10-19 use 0.8, 20-29 use 0.5);
- ``1;0`` / ``0.9,0.8;1`` one part per phase (``;``), for two-expert models such as Wan 2.2
                          (phase 0 = ``transformer``, phase 1 = ``transformer_2``); each part's
                          values are spread over that phase's steps. A multiplier without ``;``
                          ignores phases. Fewer parts than the model has phases are padded with
                          the last part (Wan2GP: ``1;0`` on a three-phase model is ``1;0;0``).

A multiplier string for several LoRAs has one token per LoRA separated by spaces or newlines;
lines starting with ``#`` are comments. At most one ``|`` may split the string: in Wan2GP's UI it
separates the accelerator LoRAs' multipliers from the user's when settings are merged, and its
generation parser reads it as one more separator, which is what vgen does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vgen.errors import ConfigError


def split_multiplier_tokens(text: str | Sequence[str | float] | None) -> list[str]:
    """One multiplier token per LoRA from a Wan2GP multiplier string (or list of strings)."""
    if text is None:
        return []
    if not isinstance(text, str):
        return [str(item).strip() for item in text]
    lines = (line.strip() for line in text.replace("\r", "").split("\n"))
    kept = " ".join(line for line in lines if line and not line.startswith("#"))
    if kept.count("|") > 1:
        raise ConfigError(f"LoRA multipliers {kept!r}: at most one '|' is allowed (as in Wan2GP)")
    return kept.replace("|", " ").split()


def _parse_values(part: str, *, token: str) -> tuple[float, ...]:
    values = []
    for raw in part.split(","):
        try:
            values.append(float(raw))
        except ValueError:
            raise ConfigError(
                f"LoRA multiplier {token!r}: {raw.strip()!r} is not a number "
                "(expected e.g. 0.8, '1.0,0.5' per step or '1;0' per phase)"
            ) from None
    return tuple(values)


def _spread(values: tuple[float, ...], position: int, length: int) -> float:
    """Value at ``position`` of ``values`` stretched evenly over ``length`` steps (Wan2GP rule)."""
    if length <= 0:
        return values[-1]
    position = min(max(position, 0), length - 1)
    return values[position * len(values) // length]


@dataclass(frozen=True)
class LoraSchedule:
    """Weight of one LoRA at every (step, phase) of a denoising run.

    ``phases`` holds one tuple of values per phase, or a single tuple when the schedule ignores
    phases (``shared``). ``phase_starts`` are the first step of each phase.
    """

    phases: tuple[tuple[float, ...], ...]
    shared: bool
    num_steps: int
    phase_starts: tuple[int, ...] = (0,)

    def phase_of(self, step: int) -> int:
        """The phase running at ``step`` (the last phase whose start is <= step)."""
        return max(index for index, start in enumerate(self.phase_starts) if start <= step or index == 0)

    def weight_for_step(self, step: int) -> float:
        """Weight at ``step`` in the phase that runs then (what the step callback applies)."""
        return self.weight_at(step, self.phase_of(step))

    def weight_at(self, step: int, phase: int = 0) -> float:
        if self.shared:
            return _spread(self.phases[0], step, self.num_steps)
        if not 0 <= phase < len(self.phases):
            raise ValueError(f"phase {phase} out of range for a {len(self.phases)}-phase schedule")
        start = self.phase_starts[phase]
        end = self.phase_starts[phase + 1] if phase + 1 < len(self.phase_starts) else self.num_steps
        return _spread(self.phases[phase], step - start, end - start)

    @property
    def is_constant(self) -> bool:
        return len({value for values in self.phases for value in values}) == 1

    def to_text(self) -> str:
        """The multiplier in Wan2GP syntax (``0.8``, ``1,0.5``, ``1;0``), for plans and logs."""
        def number(value: float) -> str:
            return str(int(value)) if value.is_integer() else repr(value)

        if self.is_constant:
            return number(self.phases[0][0])
        return ";".join(",".join(map(number, values)) for values in self.phases)

    def to_payload(self) -> dict:
        """The parsed form: equal for equivalent spellings (``1``, ``1.0``, ``"1.00"``)."""
        if self.is_constant:
            return {"constant": self.phases[0][0]}
        if self.shared:
            return {"steps": list(self.phases[0])}
        return {"phases": [list(values) for values in self.phases], "phase_starts": list(self.phase_starts)}


def _even_phase_starts(num_steps: int, num_phases: int) -> tuple[int, ...]:
    return tuple(num_steps * index // num_phases for index in range(num_phases))


def parse_multiplier(
    spec: str | float | int,
    *,
    num_steps: int,
    num_phases: int = 1,
    phase_starts: Sequence[int] | None = None,
) -> LoraSchedule:
    """Parse one LoRA's multiplier into a :class:`LoraSchedule`.

    ``phase_starts`` gives the first step of each phase (for Wan 2.2 the step where the pipeline
    switches to ``transformer_2``); by default the steps are split evenly between phases.
    """
    if num_steps < 1:
        raise ConfigError(f"LoRA multiplier: num_steps must be >= 1, got {num_steps}")
    starts = tuple(phase_starts) if phase_starts is not None else _even_phase_starts(num_steps, num_phases)
    if len(starts) != num_phases or list(starts) != sorted(starts) or not all(0 <= s <= num_steps for s in starts):
        raise ConfigError(
            f"LoRA multiplier: {num_phases} phase(s) need {num_phases} ascending phase starts within "
            f"0..{num_steps}, got {list(starts)}"
        )
    if isinstance(spec, bool):
        raise ConfigError(f"LoRA multiplier {spec!r} is not a number")
    if isinstance(spec, (int, float)):
        return LoraSchedule(phases=((float(spec),),), shared=True, num_steps=num_steps, phase_starts=starts)
    token = str(spec).strip()
    if not token:
        raise ConfigError("LoRA multiplier is empty (expected e.g. 1.0)")
    parts = token.split(";")
    if len(parts) == 1:
        return LoraSchedule(
            phases=(_parse_values(parts[0], token=token),), shared=True, num_steps=num_steps, phase_starts=starts
        )
    if len(parts) > num_phases:
        raise ConfigError(
            f"LoRA multiplier {token!r} has {len(parts)} ';'-separated phases but the model has {num_phases} "
            "denoising phase(s)"
        )
    parts += parts[-1:] * (num_phases - len(parts))  # Wan2GP pads the missing phases with the last value
    return LoraSchedule(
        phases=tuple(_parse_values(part, token=token) for part in parts),
        shared=False,
        num_steps=num_steps,
        phase_starts=starts,
    )
