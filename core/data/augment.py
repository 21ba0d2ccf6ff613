"""Augmentation: misregistration (and labels that follow t2), appearance change, roof lean, sensor degradation,
crops (with scale jitter) and the eight dihedral transforms, and restyling (one date's photometric look)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def misregister(
    image: np.ndarray,
    rng: np.random.Generator,
    max_shift: float,
    rotation_sigma: float = 0.0,
    scale_sigma: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One date moved as between two acquisitions: a sub-pixel shift of up to `max_shift` px along each axis and,
    when the sigmas are above 0, a small rotation (degrees) and scale about the centre; mirrored border. Returns
    the image and the 2×3 matrix, so that what this date shows (e.g. created buildings) can move with it
    (`follow_t2`)."""
    height, width = image.shape[:2]
    angle = float(rng.normal(0.0, rotation_sigma)) if rotation_sigma > 0 else 0.0
    scale = float(1.0 + rng.normal(0.0, scale_sigma)) if scale_sigma > 0 else 1.0
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-max_shift, max_shift, size=2)
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    ), matrix


def warp_mask(mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """A boolean mask moved by the same sub-pixel warp as its image (area-weighted, cut at one half)."""
    height, width = mask.shape
    moved = cv2.warpAffine(
        mask.astype(np.float32),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    return moved >= 0.5


def follow_t2(change: np.ndarray, mask_t1: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The change label after t2 moved by `matrix`: removed buildings stay where t1 shows them, created ones
    move with t2. Without this the label sits up to a few pixels off what t2 shows and the detector learns to
    paint a halo around every new building."""
    return (change & mask_t1) | warp_mask(change & ~mask_t1, matrix)


def soft_blob(shape, rng, radius_range) -> np.ndarray:
    """A random soft-edged ellipse (opacity 0–1) -> float32."""
    height, width = shape
    blob = np.zeros(shape, np.uint8)
    centre = (int(rng.integers(width)), int(rng.integers(height)))
    axes = tuple(int(v) for v in rng.uniform(*radius_range, size=2))
    cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, thickness=-1)
    return cv2.GaussianBlur(blob.astype(np.float32) / 255.0, (0, 0), float(rng.uniform(2.0, 6.0)))


def appearance_changes(image, kept_buildings, change, rng, count) -> np.ndarray:
    """Unlabelled appearance change, the negatives a detector must learn to ignore: soft patches of ground
    recoloured (season, soil, vegetation), cast shadows, and re-coloured roofs of buildings that stay; all kept
    at least 4 px away from the labelled change."""
    height, width = change.shape
    allowed = ~cv2.dilate(change.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    rgb = image.astype(np.float32)
    roofs = None
    for _ in range(count):
        kind = ("ground", "shadow", "roof")[int(rng.choice(3, p=(0.5, 0.25, 0.25)))]
        if kind == "roof":
            if roofs is None:
                roofs, _ = ndimage.label(kept_buildings & allowed, structure=np.ones((3, 3), bool))
            if roofs.max() == 0:
                continue
            region = roofs == int(rng.integers(1, roofs.max() + 1))
            opacity = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 0.7) * region
            target = rgb * rng.uniform(0.6, 1.4, size=3).astype(np.float32) + np.float32(rng.uniform(-25, 25))
        else:
            side = min(height, width)
            opacity = soft_blob((height, width), rng, (0.04 * side, 0.25 * side)) * allowed
            if kind == "shadow":
                target = rgb * np.float32(rng.uniform(0.45, 0.8))
            else:  # the colour of another part of the scene, keeping this patch's texture
                row, col = int(rng.integers(height - 15)), int(rng.integers(width - 15))
                palette = rgb[row : row + 16, col : col + 16].reshape(-1, 3).mean(axis=0)
                core = opacity > 0.5
                target = rgb - rgb[core].mean(axis=0) + palette if core.any() else rgb
        opacity = opacity[..., None] * np.float32(rng.uniform(0.5, 1.0))
        rgb = rgb * (1.0 - opacity) + target * opacity
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def building_lean(image, kept_buildings, change, rng, max_shift: float = 3.0) -> np.ndarray:
    """Unlabelled off-nadir lean: the roofs of buildings that stay move by one random sub-pixel offset of up to
    `max_shift` px (parallax from another view angle); uncovered ground is inpainted. The labelled change and
    its 4-px surroundings keep their pixels."""
    if not kept_buildings.any():
        return image
    dy, dx = rng.uniform(-max_shift, max_shift, size=2)
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    height, width = kept_buildings.shape
    moved = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    roofs = cv2.warpAffine(kept_buildings.astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR)
    uncovered = (kept_buildings & (roofs < 0.5)).astype(np.uint8)
    out = cv2.inpaint(image, uncovered, 3, cv2.INPAINT_TELEA) if uncovered.any() else image.copy()
    alpha = roofs[..., None]
    out = np.clip(np.rint(out * (1.0 - alpha) + moved * alpha), 0, 255).astype(np.uint8)
    protected = cv2.dilate(change.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    out[protected] = image[protected]
    return out


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One date's sensor look: sometimes a slight blur (or sharpening) and sensor noise."""
    out = image.astype(np.float32)
    roll = rng.random()
    if roll < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, 1.2)))
    elif roll < 0.4:
        out = out + (out - cv2.GaussianBlur(out, (0, 0), 1.0)) * np.float32(rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        out = out + rng.normal(0.0, rng.uniform(1.0, 4.0), size=out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------- crops and dihedral
def dihedral(array: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 rotations and flips (code 0..7) of an (H, W, …) array: `code & 3` quarter turns, then a
    left-right flip when `code & 4`."""
    array = np.rot90(array, code & 3)
    return np.ascontiguousarray(array[:, ::-1] if code & 4 else array)


def random_dihedral_code(rng: np.random.Generator) -> int:
    """A uniform draw of `dihedral`'s code: the quarter turns, then the flip."""
    turns = int(rng.integers(0, 4))
    return turns | (4 if rng.integers(0, 2) else 0)


def random_dihedral(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random one of the 8 dihedral transforms of each array."""
    code = random_dihedral_code(rng)
    return [dihedral(array, code) for array in arrays]


def random_window(
    shape: tuple[int, ...],
    size: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] | None = None,
) -> tuple[int, int, int]:
    """(top, left, side) of a random square window in an image of `shape` (H, W, …): side `size` at 1×, or
    size/scale with the scale drawn in `scale_range` (its low end raised so that the window fits)."""
    height, width = shape[:2]
    side = size
    if scale_range is not None:
        low = max(scale_range[0], size / min(height, width))
        side = int(np.ceil(size / rng.uniform(low, max(low, scale_range[1]))))
    return int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1)), side


def random_crop(
    arrays: list[np.ndarray],
    size: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] | None = None,
) -> list[np.ndarray]:
    """The same random size² crop of each (H, W, …) array. At 1× without `scale_range` (arrays smaller than
    `size` are mirrored out first); with it, a window of size/scale pixels (`random_window`) resized to size²:
    (H, W, C) images by area, (H, W) label maps by nearest neighbour."""
    height, width = arrays[0].shape[:2]
    if scale_range is None and (height < size or width < size):
        pad = ((0, max(size - height, 0)), (0, max(size - width, 0)))
        arrays = [np.pad(a, pad + ((0, 0),) * (a.ndim - 2), mode="reflect") for a in arrays]
    top, left, side = random_window(arrays[0].shape, size, rng, scale_range)
    crops = [a[top : top + side, left : left + side] for a in arrays]
    if side != size:
        crops = [
            cv2.resize(c, (size, size), interpolation=cv2.INTER_NEAREST if c.ndim == 2 else cv2.INTER_AREA)
            for c in crops
        ]
    return crops


def restyle(
    image: np.ndarray, rng: np.random.Generator, strength: float = 1.0, haze: bool = True, sensor: bool = True
) -> np.ndarray:
    """Appearance change without content change (one date's look): gamma, saturation, contrast, colour balance
    and brightness, each drawn independently with spreads scaled by `strength`; then, when asked, `haze` and the
    `sensor` look (blur, noise)."""
    x = image.astype(np.float32) / 255.0
    s = strength
    x = x ** float(np.exp(rng.normal(0.0, 0.18 * s)))
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * float(np.exp(rng.normal(0.0, 0.25 * s)))
    x = (x - x.mean()) * float(np.exp(rng.normal(0.0, 0.2 * s))) + x.mean()
    x = x * np.exp(rng.normal(0.0, 0.06 * s, size=3)).astype(np.float32) + rng.normal(0.0, 0.06 * s)
    if haze and rng.random() < 0.25 * s:
        amount = rng.uniform(0.05, 0.3)
        x = x * (1 - amount) + amount * rng.uniform(0.6, 0.9)
    if sensor and rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.4, 1.2)))
    if sensor and rng.random() < 0.3:
        x = x + rng.normal(0.0, rng.uniform(0.005, 0.025), size=x.shape).astype(np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
