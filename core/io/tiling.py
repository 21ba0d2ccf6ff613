"""Overlapping tiles whose centre regions partition the raster exactly, so centre-crop stitching has no seams.

Each tile owns a centre region and is read with at least `overlap` pixels of context on every side that is not
the raster border; read windows keep the full tile size (or the raster size, when smaller). Writing back only the owned
region of every tile covers each pixel exactly once, always with context from its tile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from ..errors import InputError


def window_slices(
    window: Window, margin: int = 0, shape: tuple[int, int] | None = None
) -> tuple[slice, slice]:
    """Row and column slices of `window` grown by `margin` px on every side, clipped to `shape` (rows, columns)
    when given."""
    top, left = int(window.row_off) - margin, int(window.col_off) - margin
    bottom = int(window.row_off + window.height) + margin
    right = int(window.col_off + window.width) + margin
    if shape is not None:
        top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, shape[0]), min(right, shape[1])
    return slice(top, bottom), slice(left, right)


@dataclass(frozen=True)
class Tile:
    index: int
    read: Window  # pixels to read (context included), inside the raster
    owned: Window  # the centre region this tile writes, inside `read`

    @property
    def read_slices(self) -> tuple[slice, slice]:
        return window_slices(self.read)

    @property
    def owned_slices(self) -> tuple[slice, slice]:
        return window_slices(self.owned)

    @property
    def crop(self) -> tuple[slice, slice]:
        """Slices that cut the owned region out of an array covering `read`."""
        top = int(self.owned.row_off - self.read.row_off)
        left = int(self.owned.col_off - self.read.col_off)
        return slice(top, top + int(self.owned.height)), slice(left, left + int(self.owned.width))


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Along one axis: (read_start, read_end, owned_start, owned_end) for each tile.

    Read windows are spread evenly so that neighbours share at least `2 * overlap` pixels; the owned border
    between two neighbours is the middle of what they share, leaving each at least `overlap` context."""
    if length <= tile:
        return [(0, length, 0, length)]
    core = tile - 2 * overlap
    count = -(-(length - tile) // core) + 1
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    borders = [0] + [(starts[i + 1] + starts[i] + tile) // 2 for i in range(count - 1)] + [length]
    return [(start, start + tile, borders[i], borders[i + 1]) for i, start in enumerate(starts)]


class TileGrid:
    """Tiles of at most `tile` × `tile` pixels with `overlap` context pixels around each owned centre."""

    def __init__(self, height: int, width: int, tile: int, overlap: int):
        if height <= 0 or width <= 0:
            raise InputError(
                f"The raster is {width}×{height} pixels: give a raster (or window) with at least one row and column."
            )
        if overlap < 0 or tile - 2 * overlap <= 0:
            raise InputError(
                f"The tile size ({tile}) must be larger than twice the overlap ({overlap}), which must not be negative: choose "
                "a larger tile or a smaller overlap."
            )
        self.height, self.width, self.tile, self.overlap = height, width, tile, overlap
        self._rows = _spans(height, tile, overlap)
        self._cols = _spans(width, tile, overlap)

    def __len__(self) -> int:
        return len(self._rows) * len(self._cols)

    def __iter__(self) -> Iterator[Tile]:
        index = 0
        for r0, r1, o_r0, o_r1 in self._rows:
            for c0, c1, o_c0, o_c1 in self._cols:
                yield Tile(
                    index=index,
                    read=Window(c0, r0, c1 - c0, r1 - r0),
                    owned=Window(o_c0, o_r0, o_c1 - o_c0, o_r1 - o_r0),
                )
                index += 1


def pad_to_multiple(array: np.ndarray, multiple: int = 32) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad the first two axes at the bottom/right by mirroring, up to multiples of `multiple`.

    Returns the padded array and the original (height, width) to crop the result back with `[:h, :w]`."""
    height, width = array.shape[:2]
    pad_rows = (-height) % multiple
    pad_cols = (-width) % multiple
    if pad_rows == 0 and pad_cols == 0:
        return array, (height, width)
    widths = [(0, pad_rows), (0, pad_cols)] + [(0, 0)] * (array.ndim - 2)
    mode = "reflect" if height > 1 and width > 1 else "edge"
    return np.pad(array, widths, mode=mode), (height, width)
