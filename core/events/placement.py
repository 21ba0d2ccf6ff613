"""Creating objects (Changen §3.2.1): a copied or given shape, rotated and scaled, placed where it overlaps
nothing (50 random tries, then an exhaustive search)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from ..errors import InputError
from .state import EIGHT_CONNECTED

MAX_PLACEMENT_TRIES = 50


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
