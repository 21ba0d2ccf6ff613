"""Compositing synthesized pixels into the input: the `keep` mode (input outside the change, colour-harmonised
generator output inside), feathering and the shared input check."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..events.state import LabelState
from ..io.tiling import TileGrid, window_slices
from .methods import UNCHANGED_MODES

KEEP_DILATION = 3  # px the change grows before compositing: footprints miss roof edges and shadows
KEEP_FEATHER = 6  # px over which the generated pixels fade into the input beyond the dilated change
# px: scale of the low-frequency colour correction of the generator's output (6, 12 and 24 measured alike)
HARMONISE_SIGMA = 12.0
HARMONISE_RADIUS = int(3 * HARMONISE_SIGMA)
KEEP_REACH = KEEP_DILATION + KEEP_FEATHER + HARMONISE_RADIUS  # farthest a change influences or reads a pixel
COMPOSITE_TILE = 512  # px per work tile of `keep_unchanged` (the result does not depend on it)


def check_unchanged_mode(unchanged: str) -> None:
    if unchanged not in UNCHANGED_MODES:
        raise InputError(f"Unknown mode unchanged='{unchanged}': use one of {', '.join(UNCHANGED_MODES)}.")


def _gaussian(values: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(values, HARMONISE_SIGMA, truncate=HARMONISE_RADIUS / HARMONISE_SIGMA)


def _harmonised_composite(original: np.ndarray, generated: np.ndarray, change: np.ndarray) -> np.ndarray:
    """`original` with the dilated, feathered `change` region taken from `generated`, after a low-frequency
    colour correction: the generated pixels get `blur(original - generated)`, the blur a Gaussian weighted over
    the unchanged pixels only (the pixels being replaced do not leak back in)."""
    distance = ndimage.distance_transform_edt(~change)
    alpha = np.clip((KEEP_DILATION + KEEP_FEATHER - distance) / KEEP_FEATHER, 0.0, 1.0)
    alpha = alpha * alpha * (3 - 2 * alpha)
    unchanged = (distance > KEEP_DILATION).astype(np.float64)
    weight_sum = _gaussian(unchanged)
    # a weighted mean, faded out far inside a large change where almost no unchanged pixel is in reach
    to_weighted_mean = np.clip(weight_sum / 0.05, 0.0, 1.0) / np.maximum(weight_sum, 1e-6)
    difference = original.astype(np.float64) - generated.astype(np.float64)
    out = original.astype(np.float64)
    for channel in range(3):
        correction = _gaussian(difference[..., channel] * unchanged) * to_weighted_mean
        harmonised = generated[..., channel] + correction
        out[..., channel] = alpha * harmonised + (1 - alpha) * original[..., channel]
    composite = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return np.where((alpha > 0)[..., None], composite, original)


def keep_unchanged(
    original: np.ndarray, generated: np.ndarray, change: np.ndarray, tile: int = COMPOSITE_TILE
) -> np.ndarray:
    """`original` outside the change; inside the change grown by `KEEP_DILATION` (and fading out over
    `KEEP_FEATHER` px) the generated image, its colours corrected towards `original` so that the seam does not
    show.

    Works tile by tile with `KEEP_REACH` px of context: every pixel depends only on pixels within that reach, so the
    result does not depend on `tile` and memory does not grow with the image beyond the images themselves."""
    height, width = change.shape
    out = original.copy()
    for tile_ in TileGrid(height, width, max(tile, 4 * KEEP_REACH), KEEP_REACH):
        owned_rows, owned_cols = tile_.owned_slices
        reach_rows, reach_cols = window_slices(tile_.owned, KEEP_REACH, (height, width))
        near = np.nonzero(change[reach_rows, reach_cols])
        if len(near[0]) == 0:
            continue
        # everything an owned pixel depends on lies within KEEP_REACH of a change pixel: work on that box only
        top = max(reach_rows.start + int(near[0].min()) - KEEP_REACH, reach_rows.start)
        bottom = min(reach_rows.start + int(near[0].max()) + KEEP_REACH + 1, reach_rows.stop)
        left = max(reach_cols.start + int(near[1].min()) - KEEP_REACH, reach_cols.start)
        right = min(reach_cols.start + int(near[1].max()) + KEEP_REACH + 1, reach_cols.stop)
        box = (slice(top, bottom), slice(left, right))
        composite = _harmonised_composite(original[box], generated[box], change[box])
        rows = slice(max(owned_rows.start, top), min(owned_rows.stop, bottom))
        cols = slice(max(owned_cols.start, left), min(owned_cols.stop, right))
        if rows.start < rows.stop and cols.start < cols.stop:
            out[rows, cols] = composite[
                rows.start - top : rows.stop - top, cols.start - left : cols.stop - left
            ]
    return out


FEATHER_PIXELS = 2.0


def _check_image(image: np.ndarray, state: LabelState) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if image.shape[:2] != state.shape:
        raise ValueError(f"image {image.shape[:2]} and label state {state.shape} differ in size")


def feather(mask: np.ndarray, width: float = FEATHER_PIXELS) -> np.ndarray:
    """Opacity rising from the mask's edge inwards over `width` pixels; 0 outside the mask -> float32."""
    inside = np.pad(mask.astype(np.uint8), 1)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(distance / max(width, 1e-6), 0.0, 1.0).astype(np.float32)
