"""Where each report entry goes: the sweep's axes and the grid sections built from them.

An axis is a swept override (or a ``queue.grid`` key) that takes more than one value across the
entries. The last two axes are the rows and columns of a grid; any axes before them split the report
into one section per combination of their values. Values keep the order they first appear in (the
order the user wrote them in the sweep). Pure functions: no files, no media.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Mapping, Sequence

UNSET = "(unset)"


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[str, ...]


@dataclass
class Cell:
    row: str | None
    col: str | None
    entries: list[int] = field(default_factory=list)  # indices into the report's entry list


@dataclass
class Section:
    """One grid (``rows`` x ``cols``; a missing axis is a single unnamed row/column) or, without axes,
    a plain list of one-entry cells."""

    title: dict[str, str]
    rows: Axis | None
    cols: Axis | None
    cells: list[Cell]

    @property
    def is_grid(self) -> bool:
        return self.cols is not None


def override_key_value(override: str) -> tuple[str, str] | None:
    """``"+generation.seed=3"`` -> ``("generation.seed", "3")``; None for an override without ``=``."""
    key, sep, value = override.partition("=")
    if not sep:
        return None
    return key.lstrip("+~"), value


def axes_of(coordinates: Sequence[Mapping[str, str]]) -> list[Axis]:
    """The keys whose values differ between coordinates, with their values in first-seen order."""
    keys: dict[str, None] = {}
    for coords in coordinates:
        keys.update(dict.fromkeys(coords))
    axes = []
    for key in keys:
        values = list(dict.fromkeys(coords.get(key, UNSET) for coords in coordinates))
        if len(values) > 1:
            axes.append(Axis(key, tuple(values)))
    return axes


def override_coordinates(overrides: Sequence[str]) -> dict[str, str]:
    pairs = (override_key_value(override) for override in overrides)
    return dict(pair for pair in pairs if pair is not None)


def grid_sections(coordinates: Sequence[Mapping[str, str]], axes: Sequence[Axis]) -> list[Section]:
    """Entries (given by their coordinates) placed into sections of rows x columns."""
    if not axes:
        return [Section({}, None, None, [Cell(None, None, [index]) for index in range(len(coordinates))])]
    cols = axes[-1]
    rows = axes[-2] if len(axes) > 1 else None
    section_axes = axes[:-2]
    sections: dict[tuple[str, ...], tuple[Section, dict[tuple, Cell]]] = {}
    for index, coords in enumerate(coordinates):
        title = tuple(coords.get(axis.key, UNSET) for axis in section_axes)
        if title not in sections:
            cells = {(row, col): Cell(row, col) for row in (rows.values if rows else (None,)) for col in cols.values}
            section = Section(dict(zip((axis.key for axis in section_axes), title)), rows, cols, list(cells.values()))
            sections[title] = (section, cells)
        row = coords.get(rows.key, UNSET) if rows else None
        sections[title][1][(row, coords.get(cols.key, UNSET))].entries.append(index)
    order = product(*(axis.values for axis in section_axes))
    return [sections[title][0] for title in order if title in sections]
