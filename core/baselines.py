"""The paper's learning-free synthesis baselines, driven by the events of `core.events.simulate_step`.

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

from .events import LabelState, StepResult, rotation_matrix

FEATHER_PIXELS = 2.0
INPAINT_DILATION = 3
INPAINT_RADIUS = 5
TEXTURE_TRIES = 40
LARGE_HOLE = 1500  # pixels: Telea smears these most visibly, so they get texture twice as often


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
