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

    Rows are indexed by class id (0..K); a row of zeros means the class never changes. `rates[a]` (optional,
    NaN = not given) is class a's own probability that a region changes in a step, instead of the step's one.
    """

    matrix: np.ndarray
    names: tuple[str, ...] = ()
    rates: np.ndarray | None = None

    def __post_init__(self):
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or (matrix < 0).any():
            raise InputError("a transition table must be a square matrix of non-negative weights")
        np.fill_diagonal(matrix, 0.0)
        sums = matrix.sum(axis=1, keepdims=True)
        object.__setattr__(self, "matrix", np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0))
        if self.rates is not None:
            rates = np.asarray(self.rates, dtype=np.float64)
            given = rates[~np.isnan(rates)]
            if rates.shape != (len(matrix),) or (given < 0).any() or (given > 1).any():
                raise InputError("transition rates are probabilities in [0, 1], one per class of the table")
            object.__setattr__(self, "rates", rates)

    @property
    def has_rates(self) -> bool:
        return self.rates is not None and not np.isnan(self.rates).all()

    def rate(self, cls: int, default: float) -> float:
        """The probability that a region of `cls` changes in a step: its own rate, else `default`."""
        if self.rates is None or np.isnan(self.rates[cls]):
            return default
        return float(self.rates[cls])

    @classmethod
    def from_allowed(
        cls,
        classes: Sequence[str],
        allowed: Mapping[str, Iterable[str]],
        rates: Mapping[str, float] | None = None,
    ) -> TransitionTable:
        """`classes` in label order (class 1 first); `allowed[name]` = target names (equally likely) or a
        mapping target -> weight; `rates[name]` = that class's probability of changing per region and step."""
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
        if rates is None:
            return cls(matrix, names)
        rate_array = np.full(len(names) + 1, np.nan)
        for name, rate in rates.items():
            if name not in position:
                raise InputError(
                    f"transition table: unknown class {name!r} in rates; classes are {list(names)}"
                )
            rate_array[position[name]] = float(rate)
        return cls(matrix, names, rate_array)

    @classmethod
    def load(cls, path: str | Path) -> TransitionTable:
        """A JSON file `{"classes": [...], "allowed": {"road": ["bareland", ...] or {"bareland": 2.0, ...}},
        "rates": {"tree": 0.3, ...}}` ("rates" optional: per-class probabilities of a region changing)."""
        try:
            data = json.loads(Path(path).read_text())
            return cls.from_allowed(data["classes"], data["allowed"], data.get("rates"))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise InputError(
                f"cannot read the transition table {path}: {error}; expected JSON with 'classes' (names in "
                "label order), 'allowed' (class -> list of target classes) and optional 'rates' (class -> "
                "probability of changing)"
            ) from error

    def to_json(self) -> str:
        allowed = {}
        for a, name in enumerate(self.names, start=1):
            targets = {
                self.names[b - 1]: round(float(self.matrix[a, b]), 6) for b in np.flatnonzero(self.matrix[a])
            }
            if targets:
                allowed[name] = targets
        data = {"classes": list(self.names), "allowed": allowed}
        if self.has_rates:
            data["rates"] = {
                name: float(self.rates[a])
                for a, name in enumerate(self.names, 1)
                if not np.isnan(self.rates[a])
            }
        return json.dumps(data, indent=2)

    def reindexed(self, classes: Sequence[str]) -> TransitionTable:
        """The same probabilities over `classes` (ids 1.. in that order, 0 unknown), e.g. a JSON table naming a
        subset of the project classes, in any order; a class it does not name never changes."""
        if not self.names:
            raise InputError(
                "this transition table has no class names: it cannot be matched to other classes"
            )
        position = {name: i + 1 for i, name in enumerate(classes)}
        unknown = [name for name in self.names if name not in position]
        if unknown:
            raise InputError(
                f"transition table: classes {unknown} are not among {list(classes)}; rename them in the table"
            )
        matrix = np.zeros((len(classes) + 1, len(classes) + 1))
        ids = [position[name] for name in self.names]
        matrix[np.ix_(ids, ids)] = self.matrix[1:, 1:]
        rates = None
        if self.rates is not None:
            rates = np.full(len(classes) + 1, np.nan)
            rates[ids] = self.rates[1:]
        return TransitionTable(matrix, tuple(classes), rates)

    def allows(self, source: int, target: int) -> bool:
        return source < len(self.matrix) and target < len(self.matrix) and self.matrix[source, target] > 0


def default_oem_transitions() -> TransitionTable:
    """The shipped table for OpenEarthMap's 8 classes (ids 1..8 in `OEM_CLASSES` order)."""
    return TransitionTable.from_allowed(OEM_CLASSES, OEM_DEFAULT_TRANSITIONS)


@dataclass(frozen=True)
class ClassChange:
    """An analyst's explicit transition: regions become class `to_cls`.

    `at` (row, col): the connected region (4-connected, of one class) holding that pixel; `from_cls` then only
    checks that the pixel has that class. Without `at`: every region of class `from_cls`. Explicit changes ignore
    the minimum region size and the transition table (the analyst's choice), but never change class 0 (unknown)
    unless `from_cls` says 0 explicitly.
    """

    to_cls: int
    from_cls: int | None = None
    at: tuple[int, int] | None = None

    @classmethod
    def parse(cls, text: str) -> ClassChange:
        """ "tree:bareland" (project class names or ids) -> every region of class A becomes class B."""
        from .classes import class_id

        before, separator, after = text.partition(":")
        if not separator:
            raise InputError(f"a class change is FROM:TO (names or ids, e.g. tree:bareland), got {text!r}")
        return cls(class_id(after), from_cls=class_id(before))

    def describe(self) -> dict:
        return {
            "to_cls": self.to_cls,
            "from_cls": self.from_cls,
            "at": None if self.at is None else list(self.at),
        }


def explicit_regions(semantic: np.ndarray, change: ClassChange) -> list:
    """(region crop mask, bbox, from class, to class) of the regions `change` names on `semantic`."""
    height, width = semantic.shape
    if not 0 <= change.to_cls <= 255 or (change.from_cls is not None and not 0 <= change.from_cls <= 255):
        raise InputError(f"class change {change.describe()}: classes are ids in 0..255")
    if change.at is None:
        if change.from_cls is None:
            raise InputError(
                "a class change needs a class to change (from_cls) or a pixel of the region (at)"
            )
        source = semantic == change.from_cls
        from_cls = change.from_cls
    else:
        row, col = (int(v) for v in change.at)
        if not (0 <= row < height and 0 <= col < width):
            raise InputError(
                f"class change at pixel (row {row}, col {col}) lies outside the {width}×{height} map: pick a "
                "pixel inside it"
            )
        from_cls = int(semantic[row, col])
        if change.from_cls is not None and change.from_cls != from_cls:
            raise InputError(
                f"class change at pixel (row {row}, col {col}): the pixel has class {from_cls}, not "
                f"{change.from_cls}; pick a pixel of the region you mean"
            )
        labels, _ = ndimage.label(semantic == from_cls, structure=FOUR_CONNECTED)
        source = labels == labels[row, col]
    if from_cls == change.to_cls or not source.any():
        return []
    labels, count = ndimage.label(source, structure=FOUR_CONNECTED)
    regions = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[rows, cols] == index
        regions.append((region, (rows.start, cols.start, rows.stop, cols.stop), from_cls, int(change.to_cls)))
    return regions


def _transition_regions(semantic, rng, probability, table: TransitionTable, min_area: int = 0) -> list:
    """(region crop mask, bbox, from class, to class) for each region drawn to switch (with its class's rate,
    else `probability`), all found on `semantic` before any of them is applied. Regions smaller than `min_area`
    pixels never switch (nor draw a number)."""
    regions = []
    for from_cls in range(1, min(len(table.matrix), int(semantic.max()) + 1)):
        weights = table.matrix[from_cls]
        if not weights.any():
            continue
        labels, count = ndimage.label(semantic == from_cls, structure=FOUR_CONNECTED)
        if count == 0:
            continue
        candidates = np.arange(count)
        if min_area > 0:
            candidates = np.flatnonzero(np.bincount(labels.ravel(), minlength=count + 1)[1:] >= min_area)
        switching = candidates[rng.random(candidates.size) < table.rate(from_cls, probability)]
        if switching.size == 0:
            continue
        targets = rng.choice(len(weights), size=switching.size, p=weights)
        boxes = ndimage.find_objects(labels)
        for region_index, to_cls in zip(switching, targets, strict=True):
            rows, cols = boxes[region_index]
            region = labels[rows, cols] == region_index + 1
            regions.append((region, (rows.start, cols.start, rows.stop, cols.stop), from_cls, int(to_cls)))
    return regions
