"""Change-event simulation `S_t+1 = F(S_t)`: the learning-free, semantic half of Changen's change process.

A `LabelState` is a semantic map (0 background, classes 1..K) plus an instance raster (0 none). One step removes
instances, applies land-cover class transitions and creates objects (copies of an instance's shape or a given
shape, rotated and scaled, placed without overlap). Every function takes an explicit `numpy.random.Generator`;
results are dataclasses recording what happened, so a step can be logged, replayed and shown on a map.

Speed: work happens on bounding-box crops (instance boxes are cached per state and updated incrementally), with
a handful of cheap whole-image array operations per step, never one per instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .placement import MAX_PLACEMENT_TRIES, Creation, _AllowedArea, _mark_occupied, _occupied_padded, _place
from .state import InstanceInfo, LabelState
from .transitions import ClassChange, TransitionTable, _transition_regions, explicit_regions


@dataclass(frozen=True)
class Event:
    """One thing that happened in a step. `kind` is "remove", "create" or "transition".

    `instance_id`: the removed/created instance (a created object's new id; 0 for a transition region);
    `source_id`: the instance whose shape was copied (None for a given shape or a removal/transition);
    `bbox` (row0, col0, row1, col1, end-exclusive) and `centre` (row, col) locate it; `cls`: the class after the
    event, `from_cls`: before; `area` in pixels.
    """

    kind: str
    instance_id: int
    bbox: tuple[int, int, int, int]
    centre: tuple[float, float]
    area: int
    cls: int
    from_cls: int
    source_id: int | None = None
    angle: float | None = None
    scale: float | None = None

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "instance_id": int(self.instance_id),
            "source_id": None if self.source_id is None else int(self.source_id),
            "bbox": [int(v) for v in self.bbox],
            "centre": [round(float(v), 2) for v in self.centre],
            "area": int(self.area),
            "from_cls": int(self.from_cls),
            "cls": int(self.cls),
            "angle": None if self.angle is None else round(float(self.angle), 4),
            "scale": None if self.scale is None else round(float(self.scale), 6),
        }


@dataclass(frozen=True)
class Unplaced:
    """A creation that could not be placed, and why."""

    creation: Creation
    reason: str

    def to_dict(self) -> dict:
        return {"creation": self.creation.describe(), "reason": self.reason}


@dataclass
class StepResult:
    """The state after one step and what changed. `change`: pixels whose semantic class changed."""

    state: LabelState
    change: np.ndarray
    removed: np.ndarray
    created: np.ndarray
    transitioned: np.ndarray
    events: list[Event]
    unplaced: list[Unplaced]
    seed: int | None = None

    def to_dict(self) -> dict:
        return {
            "seed": self.seed,
            "changed_pixels": int(self.change.sum()),
            "events": [event.to_dict() for event in self.events],
            "unplaced": [item.to_dict() for item in self.unplaced],
        }


# ---------------------------------------------------------------------------------------- one step
def simulate_step(
    state: LabelState,
    rng: np.random.Generator,
    remove: int | float = 0,
    create: int = 0,
    min_area: int = 64,
    scale_range: tuple[float, float] = (0.8, 1.2),
    angle_range: tuple[float, float] = (0.0, 360.0),
    min_gap: int = 2,
    remove_ids: Iterable[int] = (),
    creations: Iterable[Creation] = (),
    fill_class: int = 0,
    transition: float = 0.0,
    transitions: TransitionTable | None = None,
    max_tries: int = MAX_PLACEMENT_TRIES,
    allowed: np.ndarray | None = None,
    min_region: int = 0,
    class_changes: Iterable[ClassChange] = (),
) -> StepResult:
    """One change step: removals, then class transitions, then creations; returns the new state and masks.

    remove: a count (int) or a fraction (float in [0, 1]) of the instances with area >= `min_area`, drawn at
    random, plus every id in `remove_ids`; removed pixels take `fill_class`.
    transition: probability that each connected region (4-connected) of a class with at least `min_region` pixels
    switches to a class drawn from `transitions` (a class with its own rate in the table uses that rate instead).
    class_changes: explicit transitions (`ClassChange`: a region at a pixel, or every region of a class, becomes
    a given class), applied first; their pixels take no random transition in the same step.
    create: random creations (copies of random instances with area >= `min_area`, angle and scale uniform in the
    ranges), after the explicit `creations`. Created objects never overlap an object of the state before or
    after the step, keep `min_gap` pixels from them, and stay inside the image; the ones that cannot are
    reported in `unplaced`. allowed: `(H, W)` bool, where randomly placed objects may lie (e.g. open ground);
    explicit centres are the caller's choice and ignore it.
    """
    if not isinstance(rng, np.random.Generator):
        raise InputError("simulate_step needs a numpy.random.Generator (np.random.default_rng(seed))")
    _check_ranges(scale_range, angle_range, min_gap, create, transition, fill_class)
    if allowed is not None and np.shape(allowed) != state.shape:
        raise InputError(
            f"allowed must be a bool mask of the state's shape {state.shape}, got {np.shape(allowed)}"
        )
    before = state
    semantic = before.semantic.copy()
    instance = before.instance.copy()
    index = dict(before.index)
    events: list[Event] = []
    removed = np.zeros(before.shape, dtype=bool)

    # -- removals
    for instance_id in _choose_removals(before, rng, remove, min_area, remove_ids):
        info = index.pop(instance_id)
        rows, cols = info.slices
        pixels = instance[rows, cols] == instance_id
        semantic[rows, cols][pixels] = fill_class
        instance[rows, cols][pixels] = 0
        removed[rows, cols] |= pixels
        events.append(_event("remove", instance_id, info.bbox, pixels, info.cls, fill_class, info.area))

    # -- class transitions (regions of the post-removal map): explicit ones, then random ones elsewhere
    transitioned = np.zeros(before.shape, dtype=bool)
    if transition > 0 and transitions is None:
        raise InputError("transition > 0 needs a TransitionTable (e.g. default_oem_transitions())")
    if min_region < 0:
        raise InputError(f"min_region is a size in pixels (>= 0), got {min_region}")
    chosen = [region for change in class_changes for region in explicit_regions(semantic, change)]
    if transition > 0 or (transitions is not None and transitions.has_rates):
        # pixels changed explicitly are class 0 here: class 0 never takes a random transition
        drawn_on = np.where(transitioned_mask(before.shape, chosen), 0, semantic).astype(semantic.dtype)
        chosen += _transition_regions(drawn_on, rng, transition, transitions, min_region)
    for region, bbox, from_cls, to_cls in chosen:
        rows, cols = slice(bbox[0], bbox[2]), slice(bbox[1], bbox[3])
        region = region & ~transitioned[rows, cols]  # two explicit changes of one region: the first wins
        if not region.any():
            continue
        semantic[rows, cols][region] = to_cls
        gone = np.unique(instance[rows, cols][region])
        instance[rows, cols][region] = 0
        transitioned[rows, cols] |= region
        for instance_id in gone[gone != 0]:
            index.pop(int(instance_id), None)
        events.append(_event("transition", 0, bbox, region, from_cls, to_cls, int(region.sum())))
    if transitioned.any():
        index = None  # instances may have been cut: rebuilt lazily

    # -- creations
    created = np.zeros(before.shape, dtype=bool)
    next_id = before.next_id
    sources = [i for i, info in before.index.items() if info.area >= min_area]
    requests = list(creations) + [
        Creation(
            source_id=None,
            angle=float(rng.uniform(*angle_range)),
            scale=float(rng.uniform(*scale_range)),
        )
        for _ in range(int(create))
    ]
    unplaced: list[Unplaced] = []
    if requests:
        occupied = _occupied_padded(before.instance, min_gap)
        area_rule = None if allowed is None else _AllowedArea(np.asarray(allowed, dtype=bool))
        for request in requests:
            placed = _place(before, request, rng, sources, occupied, min_gap, max_tries, area_rule)
            if isinstance(placed, str):
                unplaced.append(Unplaced(request, placed))
                continue
            shape, (r0, c0), source_id, cls = placed
            rows, cols = slice(r0, r0 + shape.shape[0]), slice(c0, c0 + shape.shape[1])
            from_values = semantic[rows, cols][shape]
            from_cls = int(np.bincount(from_values).argmax())
            semantic[rows, cols][shape] = cls
            instance[rows, cols][shape] = next_id
            created[rows, cols] |= shape
            _mark_occupied(occupied, shape, r0, c0, min_gap)
            area = int(shape.sum())
            bbox = (r0, c0, r0 + shape.shape[0], c0 + shape.shape[1])
            if index is not None:
                index[next_id] = InstanceInfo(bbox, area, cls)
            events.append(
                _event(
                    "create",
                    next_id,
                    bbox,
                    shape,
                    from_cls,
                    cls,
                    area,
                    source_id=source_id,
                    angle=request.angle,
                    scale=request.scale,
                )
            )
            next_id += 1

    after = LabelState(semantic, instance, next_id, index)
    change = semantic != before.semantic
    return StepResult(after, change, removed, created, transitioned, events, unplaced)


def transitioned_mask(shape: tuple[int, int], regions: list) -> np.ndarray:
    """The pixels of (region crop mask, bbox, ...) tuples -> bool `shape`."""
    mask = np.zeros(shape, dtype=bool)
    for region, bbox, *_ in regions:
        mask[bbox[0] : bbox[2], bbox[1] : bbox[3]] |= region
    return mask


def _check_ranges(scale_range, angle_range, min_gap, create, transition, fill_class):
    if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
        raise InputError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}")
    if len(angle_range) != 2 or angle_range[0] > angle_range[1]:
        raise InputError(f"angle_range must be (low, high) degrees with low <= high, got {angle_range}")
    if min_gap < 0 or int(create) < 0:
        raise InputError("min_gap and create must be >= 0")
    if not 0 <= fill_class <= 255:
        raise InputError(f"fill_class must be a class in 0..255, got {fill_class}")
    if not 0.0 <= transition <= 1.0:
        raise InputError(f"transition is a probability in [0, 1], got {transition}")


def _choose_removals(state, rng, remove, min_area, remove_ids) -> list[int]:
    chosen = []
    for instance_id in remove_ids:
        if int(instance_id) not in state.index:
            raise InputError(f"cannot remove instance {instance_id}: no such instance in the mask")
        if int(instance_id) not in chosen:
            chosen.append(int(instance_id))
    candidates = [i for i in sorted(state.index) if state.index[i].area >= min_area and i not in chosen]
    if isinstance(remove, float | np.floating):
        if not 0.0 <= remove <= 1.0:
            raise InputError(f"remove as a fraction must be in [0, 1], got {remove}; pass an int for a count")
        count = int(round(remove * len(candidates)))
    else:
        if int(remove) < 0:
            raise InputError(f"remove must be >= 0, got {remove}")
        count = min(int(remove), len(candidates))
    if count:
        picks = rng.choice(len(candidates), size=count, replace=False)
        chosen.extend(candidates[i] for i in sorted(picks))
    return chosen


def _event(kind, instance_id, bbox, pixels, from_cls, cls, area, source_id=None, angle=None, scale=None):
    rows, cols = np.nonzero(pixels)
    centre = (bbox[0] + float(rows.mean()), bbox[1] + float(cols.mean())) if rows.size else (0.0, 0.0)
    return Event(kind, int(instance_id), tuple(int(v) for v in bbox), centre, int(area), int(cls), int(from_cls),
                 source_id, angle, scale)  # fmt: skip
