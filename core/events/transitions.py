"""Class transitions of connected land-cover regions (Changen2's third change event) over OpenEarthMap's eight
classes: a region switches with some probability to a class drawn from a transition table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .state import FOUR_CONNECTED

# OpenEarthMap's land-cover classes, in its label order (0 = unknown / background).
OEM_CLASSES = ("bareland", "rangeland", "developed", "road", "tree", "water", "agriculture", "building")

# Changen2's published OpenEarthMap transition table (from -> allowed targets, equally likely): `OEM_Transition` in
# torchange, github.com/Z-Zheng/pytorch-change-models, torchange/models/changen2/change_event_simulation.py.
# Two differences, both because `TransitionTable` is conditioned on a change happening: agriculture's published
# row also lists agriculture itself (a draw that leaves the region as it was) and background's row (any class);
# here class 0 (unknown) never changes and a transition always changes the class.
OEM_DEFAULT_TRANSITIONS = {
    "bareland": ("rangeland", "developed", "tree", "water", "agriculture"),
    "rangeland": ("bareland", "developed", "tree", "water", "agriculture"),
    "developed": ("bareland", "rangeland", "tree", "water", "agriculture"),
    "road": ("bareland", "developed", "tree", "water"),
    "tree": ("bareland", "rangeland", "developed", "water", "agriculture"),
    "water": ("bareland", "rangeland", "developed", "tree", "agriculture"),
    "agriculture": ("bareland", "rangeland", "developed", "tree", "water"),
    "building": ("developed", "tree", "water"),
}


# ---------------------------------------------------------------------------------------- transitions
@dataclass(frozen=True)
class TransitionTable:
    """Class-transition probabilities: `matrix[a, b]` = P(a region of class a becomes class b | it changes).

    Rows are indexed by class id (0..K); a row of zeros means the class never changes.
    """

    matrix: np.ndarray
    names: tuple[str, ...] = ()

    def __post_init__(self):
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or (matrix < 0).any():
            raise InputError("a transition table must be a square matrix of non-negative weights")
        np.fill_diagonal(matrix, 0.0)
        sums = matrix.sum(axis=1, keepdims=True)
        object.__setattr__(self, "matrix", np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0))

    @classmethod
    def from_allowed(cls, classes: Sequence[str], allowed: Mapping[str, Iterable[str]]) -> TransitionTable:
        """`classes` in label order (class 1 first); `allowed[name]` = target names (equally likely) or a
        mapping target -> weight."""
        names = tuple(classes)
        position = {name: i + 1 for i, name in enumerate(names)}
        matrix = np.zeros((len(names) + 1, len(names) + 1))
        for source, targets in allowed.items():
            if source not in position:
                raise InputError(f"transition table: unknown class {source!r}; classes are {list(names)}")
            weights = targets if isinstance(targets, Mapping) else dict.fromkeys(targets, 1.0)
            for target, weight in weights.items():
                if target not in position:
                    raise InputError(f"transition table: unknown target class {target!r} for {source!r}")
                matrix[position[source], position[target]] = float(weight)
        return cls(matrix, names)

    @classmethod
    def load(cls, path: str | Path) -> TransitionTable:
        """A JSON file `{"classes": [...], "allowed": {"road": ["bareland", ...] or {"bareland": 2.0, ...}}}`."""
        try:
            data = json.loads(Path(path).read_text())
            return cls.from_allowed(data["classes"], data["allowed"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"cannot read the transition table {path}: {error}; expected JSON with 'classes' (names in "
                "label order) and 'allowed' (class -> list of target classes)"
            ) from error

    def to_json(self) -> str:
        allowed = {}
        for a, name in enumerate(self.names, start=1):
            targets = {
                self.names[b - 1]: round(float(self.matrix[a, b]), 6) for b in np.flatnonzero(self.matrix[a])
            }
            if targets:
                allowed[name] = targets
        return json.dumps({"classes": list(self.names), "allowed": allowed}, indent=2)

    def allows(self, source: int, target: int) -> bool:
        return source < len(self.matrix) and target < len(self.matrix) and self.matrix[source, target] > 0


def default_oem_transitions() -> TransitionTable:
    """The shipped table for OpenEarthMap's 8 classes (ids 1..8 in `OEM_CLASSES` order)."""
    return TransitionTable.from_allowed(OEM_CLASSES, OEM_DEFAULT_TRANSITIONS)


def _transition_regions(semantic, rng, probability, table: TransitionTable) -> list:
    """(region crop mask, bbox, from class, to class) for each region drawn to switch, all found on `semantic`
    before any of them is applied."""
    regions = []
    for from_cls in range(1, min(len(table.matrix), int(semantic.max()) + 1)):
        weights = table.matrix[from_cls]
        if not weights.any():
            continue
        labels, count = ndimage.label(semantic == from_cls, structure=FOUR_CONNECTED)
        if count == 0:
            continue
        switching = np.flatnonzero(rng.random(count) < probability)
        if switching.size == 0:
            continue
        targets = rng.choice(len(weights), size=switching.size, p=weights)
        boxes = ndimage.find_objects(labels)
        for region_index, to_cls in zip(switching, targets, strict=True):
            rows, cols = boxes[region_index]
            region = labels[rows, cols] == region_index + 1
            regions.append((region, (rows.start, cols.start, rows.stop, cols.stop), from_cls, int(to_cls)))
    return regions
