"""The Changen generator on images of any size: tiles with overlap, centre-crop stitching and noise drawn per
32-px block of the whole raster, so stitched tiles agree."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..device import pick_device
from ..errors import Canceled, InputError
from ..io.tiling import TileGrid, pad_to_multiple, window_slices
from .compositing import KEEP_REACH, check_unchanged_mode, keep_unchanged

GENERATOR_TILE = 512
GENERATOR_OVERLAP = 48
NOISE_BLOCK = 32


def _tile_noise(seed: int, channels: int, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The generator's noise map for a window, drawn per 32×32 block of the whole raster from (seed, block
    position): overlapping tiles see the same noise where they overlap, so stitched tiles agree."""
    block_rows = range(top // NOISE_BLOCK, -(-(top + height) // NOISE_BLOCK))
    block_cols = range(left // NOISE_BLOCK, -(-(left + width) // NOISE_BLOCK))
    canvas = np.empty((channels, len(block_rows) * NOISE_BLOCK, len(block_cols) * NOISE_BLOCK), np.float32)
    for i, block_row in enumerate(block_rows):
        for j, block_col in enumerate(block_cols):
            rng = np.random.default_rng([seed, block_row, block_col])
            canvas[:, i * NOISE_BLOCK : (i + 1) * NOISE_BLOCK, j * NOISE_BLOCK : (j + 1) * NOISE_BLOCK] = (
                rng.standard_normal((channels, NOISE_BLOCK, NOISE_BLOCK), dtype=np.float32)
            )
    row0 = top - block_rows.start * NOISE_BLOCK
    col0 = left - block_cols.start * NOISE_BLOCK
    return canvas[:, row0 : row0 + height, col0 : col0 + width]


def _pad_for_generator(array: np.ndarray, minimum: int) -> np.ndarray:
    padded, _ = pad_to_multiple(array, NOISE_BLOCK)
    rows, cols = max(minimum - padded.shape[0], 0), max(minimum - padded.shape[1], 0)
    if rows or cols:
        widths = [(0, rows), (0, cols)] + [(0, 0)] * (array.ndim - 2)
        padded = np.pad(padded, widths, mode="symmetric")
    return padded


def changen_synthesize(
    generator: torch.nn.Module,
    image_hwc_uint8: np.ndarray,
    semantic_t: np.ndarray,
    semantic_t1: np.ndarray,
    seed: int,
    device: str | torch.device = "cpu",
    tile: int = GENERATOR_TILE,
    overlap: int = GENERATOR_OVERLAP,
    is_canceled: Callable[[], bool] | None = None,
    unchanged: str = "regenerate",
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """One generator step on an image of any size -> `(H, W, 3)` uint8; `progress` (0–100) after every tile.

    Tiles of `tile` px with `overlap` px of context are padded (mirror) to multiples of 32, run one at a time and
    centre-cropped, so peak memory depends on `tile`, not on the image. Same seed -> same output.
    `unchanged="keep"` composites the output into the input around the pixels whose class changed
    (`keep_unchanged`) and runs the generator only on tiles that reach a change."""
    if image_hwc_uint8.dtype != np.uint8 or image_hwc_uint8.ndim != 3 or image_hwc_uint8.shape[2] != 3:
        raise InputError(f"the generator needs an (H, W, 3) uint8 image, got {image_hwc_uint8.shape}")
    check_unchanged_mode(unchanged)
    num_classes = getattr(generator, "config", {}).get("num_classes")
    highest = int(max(semantic_t.max(initial=0), semantic_t1.max(initial=0)))
    if num_classes is not None and highest >= num_classes:
        raise InputError(
            f"the masks use class {highest} but the generator knows classes 0..{num_classes - 1}: use a "
            "building mask (0 = background, 1 = building) or a generator trained for these classes"
        )
    device = pick_device(device) if isinstance(device, str) else device
    minimum = max(64, NOISE_BLOCK)
    height, width = semantic_t.shape
    keep = unchanged == "keep"
    change = semantic_t != semantic_t1
    out = image_hwc_uint8.copy() if keep else np.empty((height, width, 3), np.uint8)
    channels = generator.noise_channels
    tiles = TileGrid(height, width, tile, overlap)
    with torch.inference_mode():
        for done, tile_ in enumerate(tiles):
            if is_canceled is not None and is_canceled():
                raise Canceled()
            if progress is not None:
                progress(100.0 * done / len(tiles))
            if keep and not change[window_slices(tile_.owned, KEEP_REACH, (height, width))].any():
                continue
            rows, cols = tile_.read_slices
            image = _pad_for_generator(image_hwc_uint8[rows, cols], minimum)
            before = _pad_for_generator(semantic_t[rows, cols], minimum)
            after = _pad_for_generator(semantic_t1[rows, cols], minimum)
            noise = _tile_noise(seed, channels, rows.start, cols.start, *before.shape)
            image_t = (
                torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(127.5).sub(1)
            )
            result = generator(
                image_t[None].to(device),
                torch.from_numpy(before.astype(np.int64))[None].to(device),
                torch.from_numpy(after.astype(np.int64))[None].to(device),
                noise=torch.from_numpy(noise)[None].to(device),
            )
            pixels = (
                ((result[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
            )
            crop_rows, crop_cols = tile_.crop
            out[tile_.owned_slices] = pixels[crop_rows, crop_cols]
    if progress is not None:
        progress(100.0)
    return keep_unchanged(image_hwc_uint8, out, change, tile) if keep else out
