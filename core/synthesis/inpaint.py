"""The Inpainting baseline (removal only): removed objects filled by Telea inpainting or nearby ground texture."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from ..events.state import LabelState
from ..events.step import StepResult
from .compositing import _check_image, feather

INPAINT_DILATION = 3
INPAINT_RADIUS = 5
TEXTURE_TRIES = 40
LARGE_HOLE = 1500  # pixels: Telea smears these most visibly, so they get texture twice as often


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def removal_holes(
    state_t: LabelState, step_result: StepResult, dilation: int = INPAINT_DILATION
) -> np.ndarray:
    """The pixels inpainting rewrites: removed footprints dilated by `dilation` px, minus buildings that stay."""
    removed = step_result.removed
    if dilation > 0:
        removed = cv2.dilate(removed.astype(np.uint8), _disk(dilation)).astype(bool)
    staying = state_t.foreground() & ~step_result.removed
    return removed & ~staying


def _ground_texture(image, hole_box, occupied, rng):
    """A building-free block of the image the size of `hole_box` (with its offset), or None."""
    height, width = occupied.shape
    box_h, box_w = hole_box.shape
    if box_h >= height or box_w >= width:
        return None
    for _ in range(TEXTURE_TRIES):
        r0 = int(rng.integers(0, height - box_h + 1))
        c0 = int(rng.integers(0, width - box_w + 1))
        if not occupied[r0 : r0 + box_h, c0 : c0 + box_w][hole_box].any():
            return image[r0 : r0 + box_h, c0 : c0 + box_w]
    return None


def inpaint(
    image: np.ndarray,
    state_t: LabelState,
    step_result: StepResult,
    rng: np.random.Generator,
    ground_texture: float = 0.0,
    dilation: int = INPAINT_DILATION,
    radius: int = INPAINT_RADIUS,
) -> np.ndarray:
    """Fill each removed footprint (see `removal_holes`) by Telea inpainting; with probability `ground_texture`
    per hole (doubled for holes over `LARGE_HOLE` px), by colour-matched building-free texture from elsewhere in
    the image, feathered into Telea's fill.
    Creations are not supported (their footprints keep their pixels)."""
    _check_image(image, state_t)
    holes = removal_holes(state_t, step_result, dilation)
    out = image.copy()
    if not holes.any():
        return out
    margin = radius + 2
    labels, _ = ndimage.label(holes, structure=np.ones((3, 3), bool))
    occupied = None
    for number, box in enumerate(ndimage.find_objects(labels), start=1):
        rows = slice(max(box[0].start - margin, 0), min(box[0].stop + margin, image.shape[0]))
        cols = slice(max(box[1].start - margin, 0), min(box[1].stop + margin, image.shape[1]))
        hole = labels[rows, cols] == number
        filled = cv2.inpaint(out[rows, cols], hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)
        share = min(1.0, 2.0 * ground_texture) if hole.sum() > LARGE_HOLE else ground_texture
        if share > 0 and rng.random() < share:
            if occupied is None:
                occupied = cv2.dilate(state_t.foreground().astype(np.uint8), _disk(dilation + 2)).astype(bool)
            texture = _ground_texture(image, hole, occupied, rng)
            if texture is not None:
                ring = cv2.dilate(hole.astype(np.uint8), _disk(3)).astype(bool) & ~hole
                reference = out[rows, cols][ring] if ring.any() else filled[hole]
                shift = reference.mean(axis=0) - texture[hole].mean(axis=0)
                alpha = feather(hole, 3.0)[..., None]
                blended = filled * (1.0 - alpha) + (texture.astype(np.float32) + shift) * alpha
                filled = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        out[rows, cols][hole] = filled[hole]
    return out
