"""The Copy-Paste synthesis baseline (creation only), driven by the events of `core.events.step.simulate_step`.

- Copy-Paste (creation only): each created object gets the pixels of the instance its shape was copied from,
  rotated and scaled like the event, with an edge feathered inside the footprint.
- Inpainting (removal only): OpenCV's Telea fast-marching inpainting over each removed footprint, dilated by a few
  pixels to take edges and shadows along, never over a building that stays. Optionally a share of removals is
  filled with ground texture copied from a building-free part of the same image (colour matched to the hole's
  surroundings) instead of Telea's smooth fill, which a detector can learn as a shortcut.

Both take and return `(H, W, 3)` uint8 images; pixels outside the events' footprints are never modified.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..events.placement import rotation_matrix
from ..events.state import LabelState
from ..events.step import StepResult
from .compositing import _check_image, feather


def _warp_like_shape(patch: np.ndarray, shape: np.ndarray, angle: float, scale: float):
    """Rotate/scale an image patch and its binary shape exactly as `events.transform_shape` does, and trim both
    to the warped shape's box."""
    matrix, (out_w, out_h) = rotation_matrix(*shape.shape, angle, scale)
    warped_shape = cv2.warpAffine(
        shape.astype(np.uint8) * 255, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR
    )
    warped_patch = cv2.warpAffine(
        patch, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    rows = np.flatnonzero((warped_shape >= 128).any(axis=1))
    cols = np.flatnonzero((warped_shape >= 128).any(axis=0))
    if rows.size == 0:
        return None
    return warped_patch[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fill_background_inside_box(patch: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Replace the non-object pixels of a box by their nearest object pixel, so interpolation at the pasted
    edge blends roof with roof rather than with the source's surroundings."""
    if shape.all() or not shape.any():
        return patch
    _, (rows, cols) = ndimage.distance_transform_edt(~shape, return_indices=True)
    return patch[rows, cols]


def _source_patch(image, state_t: LabelState, event, target_shape, rng):
    """Pixels for a created object: its source instance warped like the event, else a random instance's
    pixels resized to the target box (objects created from a given shape). None when there is no instance."""
    info = state_t.index.get(event.source_id) if event.source_id is not None else None
    if info is not None:
        rows, cols = info.slices
        shape = state_t.instance[rows, cols] == event.source_id
        patch = _fill_background_inside_box(image[rows, cols], shape)
        patch = _warp_like_shape(patch, shape, event.angle or 0.0, event.scale or 1.0)
    else:
        candidates = sorted(state_t.index)
        if not candidates:
            return None
        chosen = candidates[int(rng.integers(len(candidates)))]
        rows, cols = state_t.index[chosen].slices
        patch = _fill_background_inside_box(image[rows, cols], state_t.instance[rows, cols] == chosen)
    if patch is None:
        return None
    if patch.shape[:2] != target_shape:
        patch = cv2.resize(patch, (target_shape[1], target_shape[0]), interpolation=cv2.INTER_LINEAR)
    return patch


def copy_paste(
    image: np.ndarray, state_t: LabelState, step_result: StepResult, rng: np.random.Generator
) -> np.ndarray:
    """Paste each created object's source pixels into its footprint (removals and transitions leave pixels)."""
    _check_image(image, state_t)
    out = image.copy()
    new_instance = step_result.state.instance
    for event in step_result.events:
        if event.kind != "create":
            continue
        r0, c0, r1, c1 = event.bbox
        target = new_instance[r0:r1, c0:c1] == event.instance_id
        patch = _source_patch(image, state_t, event, target.shape, rng)
        if patch is None:
            continue
        alpha = feather(target)[..., None]
        region = out[r0:r1, c0:c1].astype(np.float32)
        out[r0:r1, c0:c1] = np.rint(region * (1.0 - alpha) + patch.astype(np.float32) * alpha).astype(
            np.uint8
        )
    return out
