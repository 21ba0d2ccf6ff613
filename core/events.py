"""Change-event simulation `S_t+1 = F(S_t)`: the learning-free, semantic half of Changen's change process.

A `LabelState` is a semantic map (0 background, classes 1..K) plus an instance raster (0 none). One step removes
instances, applies land-cover class transitions and creates objects (copies of an instance's shape or a given
shape, rotated and scaled, placed without overlap). Every function takes an explicit `numpy.random.Generator`;
results are dataclasses recording what happened, so a step can be logged, replayed and shown on a map.

Speed: work happens on bounding-box crops (instance boxes are cached per state and updated incrementally), with
a handful of cheap whole-image array operations per step, never one per instance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from .errors import InputError

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
MAX_PLACEMENT_TRIES = 50

# OpenEarthMap's land-cover classes, in its label order (0 = unknown / background).
OEM_CLASSES = ("bareland", "rangeland", "developed", "road", "tree", "water", "agriculture", "building")

# Plausible land-cover changes between OpenEarthMap classes (from -> allowed targets, equally likely).
OEM_DEFAULT_TRANSITIONS = {
    "bareland": ("rangeland", "developed", "road", "tree", "water", "agriculture", "building"),
    "rangeland": ("bareland", "developed", "road", "tree", "water", "agriculture", "building"),
    "developed": ("bareland", "rangeland", "road", "tree", "building"),
    "road": ("bareland", "developed", "tree", "water"),
    "tree": ("bareland", "rangeland", "developed", "road", "agriculture", "building"),
    "water": ("bareland", "rangeland", "developed", "tree", "agriculture"),
    "agriculture": ("bareland", "rangeland", "developed", "road", "tree", "water", "building"),
    "building": ("bareland", "rangeland", "developed", "tree"),
}


# ---------------------------------------------------------------------------------------------------- state
@dataclass(frozen=True)
class InstanceInfo:
    """Where an instance is: its bounding box (row0, col0, row1, col1; end-exclusive), area and class."""

    bbox: tuple[int, int, int, int]
    area: int
    cls: int

    @property
    def slices(self) -> tuple[slice, slice]:
        r0, c0, r1, c1 = self.bbox
        return slice(r0, r1), slice(c0, c1)


@dataclass(eq=False)
class LabelState:
    """A semantic map `(H, W)` uint8 and an instance raster `(H, W)` int32; arrays are treated as read-only.

    `next_id` is the first id never used in this state's history, so created objects never reuse an id.
    """

    semantic: np.ndarray
    instance: np.ndarray
    next_id: int | None = None
    _index: dict[int, InstanceInfo] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        semantic = np.asarray(self.semantic)
        instance = np.asarray(self.instance)
        if semantic.ndim != 2 or instance.shape != semantic.shape:
            raise InputError(
                f"semantic {semantic.shape} and instance {instance.shape} must be 2-D arrays of the same shape"
            )
        if semantic.dtype != np.uint8:
            if semantic.size and (semantic.min() < 0 or semantic.max() > 255):
                raise InputError("semantic classes must lie in 0..255 (0 = background)")
            semantic = semantic.astype(np.uint8)
        if instance.dtype != np.int32:
            if instance.size and instance.min() < 0:
                raise InputError("instance ids must be >= 0 (0 = no instance)")
            instance = instance.astype(np.int32)
        self.semantic = semantic
        self.instance = instance
        highest = int(instance.max()) if instance.size else 0
        self.next_id = highest + 1 if self.next_id is None else max(int(self.next_id), highest + 1)

    @classmethod
    def from_mask(cls, mask: np.ndarray, object_class: int = 1) -> LabelState:
        """A building mask (0/1 or 0/255; any non-zero is foreground) -> instances by 8-connectivity."""
        mask = np.asarray(mask)
        if mask.ndim == 3 and mask.shape[2] == 1:
            mask = mask[:, :, 0]
        if mask.ndim != 2:
            raise InputError(f"a building mask must be (H, W), got shape {mask.shape}; pass one band")
        foreground = mask != 0
        instance, _ = ndimage.label(foreground, structure=EIGHT_CONNECTED, output=np.int32)
        semantic = foreground.astype(np.uint8) * np.uint8(object_class)
        return cls(semantic, instance)

    @property
    def shape(self) -> tuple[int, int]:
        return self.semantic.shape

    @property
    def index(self) -> dict[int, InstanceInfo]:
        """Instance id -> box, area and class (computed once per state, then updated incrementally)."""
        if self._index is None:
            self._index = _build_index(self.semantic, self.instance)
        return self._index

    @property
    def ids(self) -> list[int]:
        return sorted(self.index)

    def foreground(self) -> np.ndarray:
        """Pixels of any object (instance) -> bool `(H, W)`."""
        return self.instance != 0

    def outlines(self, width: int = 1) -> np.ndarray:
        """Object outlines `(H, W)` bool: the condition of Changen2's unlabeled (S0) mode."""
        return object_outlines(self.instance, width)

    def copy(self) -> LabelState:
        index = None if self._index is None else dict(self._index)
        return LabelState(self.semantic.copy(), self.instance.copy(), self.next_id, index)


def _build_index(semantic: np.ndarray, instance: np.ndarray) -> dict[int, InstanceInfo]:
    if not instance.any():
        return {}
    areas = np.bincount(instance.ravel())
    index = {}
    for offset, box in enumerate(ndimage.find_objects(instance)):
        if box is None:
            continue
        instance_id = offset + 1
        rows, cols = box
        crop = instance[box] == instance_id
        cls = int(semantic[box][crop][0])
        index[instance_id] = InstanceInfo(
            (rows.start, cols.start, rows.stop, cols.stop), int(areas[instance_id]), cls
        )
    return index


def object_outlines(instance: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels of an object that touch another id (or background) within `width` pixels -> bool `(H, W)`."""
    size = 2 * int(width) + 1
    kernel = np.ones((size, size), np.uint8)
    values = instance.astype(np.float32)  # exact for ids < 2**24
    high = cv2.dilate(values, kernel, borderType=cv2.BORDER_REPLICATE)
    low = cv2.erode(values, kernel, borderType=cv2.BORDER_REPLICATE)
    return (instance != 0) & ((high != values) | (low != values))


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Creation:
    """An object to create: a copy of instance `source_id`'s shape, or of `shape` (binary mask, or polygon
    vertices `(N, 2)` as (row, col) pixel coordinates), rotated by `angle` degrees (counter-clockwise) about its
    centre and scaled by `scale`, with its centroid at `centre` = (row, col), or at a random free place when None.
    A created `Event`'s (source_id, centre, angle, scale) given back as a Creation reproduces the same pixels.

    `cls` None keeps the source instance's class (1 for a given shape). `source_id` also accepts a shape.
    """

    source_id: int | np.ndarray | Sequence | None = None
    centre: tuple[float, float] | None = None
    angle: float = 0.0
    scale: float = 1.0
    cls: int | None = None
    shape: np.ndarray | Sequence | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.source_id is not None and not isinstance(self.source_id, int | np.integer):
            if self.shape is not None:
                raise InputError("give a Creation either a source_id or a shape, not both")
            object.__setattr__(self, "shape", self.source_id)
            object.__setattr__(self, "source_id", None)
        if not self.scale > 0:
            raise InputError(f"a creation's scale must be > 0, got {self.scale}")
        if self.cls is not None and not 1 <= int(self.cls) <= 255:
            raise InputError(f"a created object's class must be in 1..255 (0 is background), got {self.cls}")

    def describe(self) -> dict:
        return {
            "source_id": None if self.source_id is None else int(self.source_id),
            "shape": None if self.shape is None else "given",
            "centre": None if self.centre is None else [float(v) for v in self.centre],
            "angle": float(self.angle),
            "scale": float(self.scale),
            "cls": None if self.cls is None else int(self.cls),
        }


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
) -> StepResult:
    """One change step: removals, then class transitions, then creations; returns the new state and masks.

    remove: a count (int) or a fraction (float in [0, 1]) of the instances with area >= `min_area`, drawn at
    random, plus every id in `remove_ids`; removed pixels take `fill_class`.
    transition: probability that each connected region of a class switches to a class drawn from `transitions`.
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

    # -- class transitions (regions of the post-removal map)
    transitioned = np.zeros(before.shape, dtype=bool)
    if transition > 0:
        if transitions is None:
            raise InputError("transition > 0 needs a TransitionTable (e.g. default_oem_transitions())")
        for region, bbox, from_cls, to_cls in _transition_regions(semantic, rng, transition, transitions):
            rows, cols = slice(bbox[0], bbox[2]), slice(bbox[1], bbox[3])
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


# ---------------------------------------------------------------------------------------- placement
def _occupied_padded(instance_before, gap):
    """Objects of the state before the step (a superset of what removals and transitions leave), padded by
    `gap` so gap checks near the border need no clipping, as uint8; creations are marked as they are placed."""
    height, width = instance_before.shape
    occupied = np.zeros((height + 2 * gap, width + 2 * gap), dtype=np.uint8)
    np.not_equal(instance_before, 0, out=occupied[gap : gap + height, gap : gap + width].view(bool))
    return occupied


def _mark_occupied(occupied, shape, r0, c0, gap):
    occupied[gap + r0 : gap + r0 + shape.shape[0], gap + c0 : gap + c0 + shape.shape[1]] |= shape


def rotation_matrix(height: int, width: int, angle: float, scale: float):
    """The affine matrix that rotates (degrees, counter-clockwise) and scales a height × width patch about its
    centre into a canvas just large enough to hold it; returns (matrix, (canvas width, canvas height))."""
    radians = math.radians(angle)
    cos, sin = abs(math.cos(radians)) * scale, abs(math.sin(radians)) * scale
    out_w = int(math.ceil(width * cos + height * sin)) + 2
    out_h = int(math.ceil(width * sin + height * cos)) + 2
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, scale)
    matrix[0, 2] += (out_w - 1) / 2.0 - (width - 1) / 2.0
    matrix[1, 2] += (out_h - 1) / 2.0 - (height - 1) / 2.0
    return matrix, (out_w, out_h)


def transform_shape(shape: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """Rotate (degrees, counter-clockwise) and scale a binary shape about its centre; trimmed to its box and
    kept in one 8-connected piece."""
    shape = np.asarray(shape, dtype=bool)
    matrix, (out_w, out_h) = rotation_matrix(*shape.shape, angle, scale)
    warped = cv2.warpAffine(
        shape.astype(np.uint8) * 255, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0
    )
    return _trim(_largest_part(warped >= 128))


def _largest_part(mask: np.ndarray) -> np.ndarray:
    """Resampling can cut a thin part off a shape; an instance is one 8-connected object, so keep the largest."""
    parts, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
    if count <= 1:
        return mask
    return parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1


def _trim(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return mask[:0, :0]
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def polygon_to_shape(vertices) -> np.ndarray:
    """Polygon vertices `(N, 2)` as (row, col) pixel coordinates -> binary shape trimmed to its box."""
    points = np.asarray(vertices, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise InputError("a polygon shape needs at least 3 vertices as an (N, 2) array of (row, col)")
    points = points - points.min(axis=0)
    size = np.ceil(points.max(axis=0)).astype(int) + 1
    canvas = np.zeros(tuple(size), dtype=np.uint8)
    xy = np.round(points[:, ::-1] * 16).astype(
        np.int32
    )  # fillPoly wants (x, y); 4 bits of sub-pixel precision
    cv2.fillPoly(canvas, [xy], 1, lineType=cv2.LINE_8, shift=4)
    return _trim(canvas.astype(bool))


def _source_shape(state, request, rng, sources):
    """(binary shape, source id, class) for a creation, or a reason string."""
    if request.shape is not None:
        shape = np.asarray(request.shape)
        is_mask = shape.dtype in (np.bool_, np.uint8) or not (shape.ndim == 2 and shape.shape[1] == 2)
        if is_mask and shape.ndim != 2:
            raise InputError("a creation shape must be a 2-D mask (bool/uint8) or (N, 2) polygon vertices")
        shape = _trim(shape != 0) if is_mask else polygon_to_shape(shape)
        return shape, None, 1 if request.cls is None else int(request.cls)
    source_id = request.source_id
    if source_id is None:
        if not sources:
            return "no instance large enough to copy (lower min_area or give a shape)"
        source_id = sources[int(rng.integers(len(sources)))]
    info = state.index.get(int(source_id))
    if info is None:
        return f"source instance {source_id} does not exist"
    rows, cols = info.slices
    shape = state.instance[rows, cols] == int(source_id)
    return shape, int(source_id), info.cls if request.cls is None else int(request.cls)


def _gap_kernel(gap):
    """Pixels within `gap + 0.5` of the centre: the halo leaves >= `gap` free pixels between objects, and with
    `gap >= 1` no diagonal contact, so a written mask reads back into the same instances (8-connectivity)."""
    offsets = np.arange(-gap, gap + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (gap + 0.5) ** 2).astype(np.uint8)


class _AllowedArea:
    """Where random placements may put object pixels, with the allowed pixels' positions for sampling centres."""

    def __init__(self, allowed: np.ndarray):
        self.barred = ~allowed
        self.positions = np.flatnonzero(allowed)
        self.width = allowed.shape[1]

    def accepts(self, shape, r0, c0) -> bool:
        return not self.barred[r0 : r0 + shape.shape[0], c0 : c0 + shape.shape[1]][shape].any()

    def random_corner(self, rng, shape) -> tuple[int, int]:
        """Top-left corner that puts the shape's box centre on a random allowed pixel."""
        row, col = divmod(int(self.positions[rng.integers(self.positions.size)]), self.width)
        return row - shape.shape[0] // 2, col - shape.shape[1] // 2

    def barred_hits(self, shape) -> np.ndarray:
        """For every top-left corner: how many shape pixels would lie on barred pixels."""
        return cv2.filter2D(
            self.barred.astype(np.float32),
            -1,
            shape.astype(np.float32),
            anchor=(0, 0),
            borderType=cv2.BORDER_CONSTANT,
        )


def _place(state, request, rng, sources, occupied, gap, max_tries, area_rule=None):
    """Choose where a creation goes: (shape, (row0, col0), source id, class), or the reason it cannot."""
    found = _source_shape(state, request, rng, sources)
    if isinstance(found, str):
        return found
    source_shape, source_id, cls = found
    shape = transform_shape(source_shape, request.angle, request.scale)
    if shape.size == 0 or not shape.any():
        return "the shape is empty after scaling"
    height, width = state.shape
    shape_h, shape_w = shape.shape
    if shape_h > height or shape_w > width:
        return f"the shape ({shape_h}x{shape_w} px) does not fit in the image ({height}x{width})"
    halo = cv2.dilate(np.pad(shape, gap).astype(np.uint8), _gap_kernel(gap)).astype(bool) if gap else shape

    def free(r0, c0):
        return not occupied[r0 : r0 + halo.shape[0], c0 : c0 + halo.shape[1]][halo].any()

    if request.centre is not None:
        rows, cols = np.nonzero(shape)
        r0 = int(round(request.centre[0] - rows.mean()))
        c0 = int(round(request.centre[1] - cols.mean()))
        if r0 < 0 or c0 < 0 or r0 + shape_h > height or c0 + shape_w > width:
            return f"centre {tuple(request.centre)} puts the object outside the image"
        if not free(r0, c0):
            return f"centre {tuple(request.centre)} overlaps an object or is closer than {gap} px to one"
        return shape, (r0, c0), source_id, cls

    if area_rule is not None and area_rule.positions.size == 0:
        return "the allowed area is empty"
    for _ in range(max_tries):
        if area_rule is None:
            r0 = int(rng.integers(0, height - shape_h + 1))
            c0 = int(rng.integers(0, width - shape_w + 1))
        else:
            r0, c0 = area_rule.random_corner(rng, shape)
            if r0 < 0 or c0 < 0 or r0 + shape_h > height or c0 + shape_w > width:
                continue
        if free(r0, c0) and (area_rule is None or area_rule.accepts(shape, r0, c0)):
            return shape, (r0, c0), source_id, cls
    # Crowded: look at every position at once before giving up.
    hits = cv2.filter2D(
        occupied.astype(np.float32),
        -1,
        halo.astype(np.float32),
        anchor=(0, 0),
        borderType=cv2.BORDER_CONSTANT,
    )
    valid = hits[: height - shape_h + 1, : width - shape_w + 1] < 0.5
    if area_rule is not None:
        valid &= area_rule.barred_hits(shape)[: height - shape_h + 1, : width - shape_w + 1] < 0.5
    positions = np.flatnonzero(valid)
    if positions.size == 0:
        where = "" if area_rule is None else " inside the allowed area"
        return f"no free place{where} for a {shape_h}x{shape_w} px object with a {gap} px gap"
    r0, c0 = divmod(int(positions[rng.integers(positions.size)]), valid.shape[1])
    return shape, (r0, c0), source_id, cls


# ---------------------------------------------------------------------------------------- series
@dataclass
class Series:
    """Frames S_0..S_T of a Markov chain of steps; `steps[t]` leads from `frames[t]` to `frames[t + 1]`."""

    frames: list[LabelState]
    steps: list[StepResult]
    seed: int | None = None
    settings: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return max(int(frame.semantic.max()) for frame in self.frames)

    def change_between(self, i: int, j: int) -> np.ndarray:
        """Pixels whose semantic class differs between frames i and j -> bool `(H, W)`."""
        return self.frames[i].semantic != self.frames[j].semantic

    def semantic_change(self, i: int, j: int, num_classes: int | None = None) -> np.ndarray:
        """From->to label between frames i and j: `from * (K + 1) + to` where changed, 0 where not -> int32.

        K = `num_classes` (default: the highest class in the series); decode with `divmod(code, K + 1)`.
        """
        base = (self.num_classes if num_classes is None else int(num_classes)) + 1
        before = self.frames[i].semantic.astype(np.int32)
        after = self.frames[j].semantic.astype(np.int32)
        return np.where(before != after, before * base + after, 0).astype(np.int32)

    def to_dict(self) -> dict:
        return series_log(self.frames[0], self.seed, self.settings, [step.to_dict() for step in self.steps])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def series_log(first: LabelState, seed: int | None, settings: dict, step_logs: list[dict]) -> dict:
    """The event log of a series (JSON-ready): seed, settings and each step's `StepResult.to_dict()`."""
    height, width = first.shape
    return {
        "seed": seed,
        "shape": [height, width],
        "settings": settings,
        "initial_instances": len(first.index),
        "steps": [dict(step=t + 1, **log) for t, log in enumerate(step_logs)],
    }


def iterate_series(
    state: LabelState,
    rng: np.random.Generator | int,
    steps: int,
    first_step: dict | None = None,
    **step_kwargs,
) -> Iterator[StepResult]:
    """The steps of a Markov chain from `state`, one at a time (for series too large to keep in memory).

    `rng` is a Generator or an int seed. Each step draws from its own Generator seeded with a number drawn from
    `rng` and stored in `StepResult.seed`, so any step replays alone:
    `simulate_step(frames[t], np.random.default_rng(steps[t].seed), **kwargs)`.
    `first_step` overrides keyword arguments of step 1 only (e.g. chosen `remove_ids` or `creations`).
    """
    if int(steps) < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(int(rng))
    current = state
    for t in range(int(steps)):
        step_seed = int(rng.integers(2**63))
        kwargs = {**step_kwargs, **(first_step or {})} if t == 0 else step_kwargs
        result = simulate_step(current, np.random.default_rng(step_seed), **kwargs)
        result.seed = step_seed
        current = result.state
        yield result


def series_settings(step_kwargs: dict, first_step: dict | None = None) -> dict:
    """Step keyword arguments as JSON-ready settings for the event log."""
    settings = {key: _jsonable(value) for key, value in step_kwargs.items()}
    if first_step:
        settings["first_step"] = {key: _jsonable(value) for key, value in first_step.items()}
    return settings


def simulate_series(
    state: LabelState,
    rng: np.random.Generator | int,
    steps: int,
    progress=None,
    first_step: dict | None = None,
    **step_kwargs,
) -> Series:
    """A Markov chain of `steps` steps from `state` with all its frames (see `iterate_series`)."""
    seed = None if isinstance(rng, np.random.Generator) else int(rng)
    frames = [state]
    results = []
    for result in iterate_series(state, rng, steps, first_step, **step_kwargs):
        frames.append(result.state)
        results.append(result)
        if progress is not None:
            progress(100.0 * len(results) / steps)
    return Series(frames, results, seed, series_settings(step_kwargs, first_step))


def simulate_unlabeled_series(
    instance: np.ndarray, rng: np.random.Generator | int, steps: int, remove: int | float, min_area: int = 64
) -> Series:
    """Changen2's unlabeled (S0) mode: objects without classes (e.g. from a segmenter), removal as the only
    event; condition = `frame.outlines()`, change label = removed objects (`series.change_between`)."""
    instance = np.asarray(instance)
    state = LabelState((instance != 0).astype(np.uint8), instance)
    return simulate_series(state, rng, steps, remove=remove, create=0, min_area=min_area)


def _jsonable(value):
    if isinstance(value, TransitionTable):
        return json.loads(value.to_json())
    if isinstance(value, Creation):
        return value.describe()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
