"""The label state `S_t`: semantic classes plus object instances, with a per-instance index."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from ..errors import InputError

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


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
