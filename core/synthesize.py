"""Change synthesis `I_t+1 = G(S_t+1, I_t, S_t, z)` over an event series, and `python -m core synthesize`.

Methods: `changen` (the trained generator, tiled with overlap and centre-crop stitching so memory does not grow
with the raster), `copy-paste` (creation only) and `inpainting` (removal only), the paper's baselines. Outputs are
GeoTIFFs on the input image's grid (CRS, transform and nodata kept) plus a JSON event log.

`unchanged`: "regenerate" (the paper's design: the generator redraws the whole image, which gives temporal
diversity for training data) or "keep" (an analyst's edit: the input stays as it was outside the change; inside a
slightly dilated, feathered change region the generator's output is colour-harmonised to the input, see
`keep_unchanged`). User-facing paths default to "keep"; `synthesize_step` (used by `generate-dataset`) to
"regenerate".

Memory: the generator's activations (hundreds of bytes per pixel) exist for one 512² tile at a time; what grows
with the raster are the images, masks and instance rasters themselves (about 12 bytes per pixel per frame:
image, classes, instance ids, change masks).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from .atomic import write_text_atomic
from .baselines import copy_paste, inpaint
from .device import describe_device, pick_device
from .errors import Canceled, InputError
from .events import LabelState, Series, StepResult, simulate_series
from .raster_io import RasterData, raster_grid, read_raster, to_uint8, write_geotiff
from .tiling import TileGrid, pad_to_multiple, window_slices

METHODS = ("changen", "copy-paste", "inpainting")
GENERATOR_TILE = 512
GENERATOR_OVERLAP = 48
NOISE_BLOCK = 32
DEFAULT_GENERATOR = "changen_gan_cpu"
UNCHANGED_MODES = ("keep", "regenerate")
KEEP_DILATION = 3  # px the change grows before compositing: footprints miss roof edges and shadows
KEEP_FEATHER = 6  # px over which the generated pixels fade into the input beyond the dilated change
# px: scale of the low-frequency colour correction of the generator's output (6, 12 and 24 measured alike)
HARMONISE_SIGMA = 12.0
HARMONISE_RADIUS = int(3 * HARMONISE_SIGMA)
KEEP_REACH = KEEP_DILATION + KEEP_FEATHER + HARMONISE_RADIUS  # farthest a change influences or reads a pixel


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
    original: np.ndarray, generated: np.ndarray, change: np.ndarray, tile: int = GENERATOR_TILE
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
) -> np.ndarray:
    """One generator step on an image of any size -> `(H, W, 3)` uint8.

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
    with torch.inference_mode():
        for tile_ in TileGrid(height, width, tile, overlap):
            if is_canceled is not None and is_canceled():
                raise Canceled()
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
    return keep_unchanged(image_hwc_uint8, out, change, tile) if keep else out


def synthesize_step(
    method: str,
    image: np.ndarray,
    state_t: LabelState,
    step: StepResult,
    rng: np.random.Generator,
    generator: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
    ground_texture: float = 0.0,
    is_canceled: Callable[[], bool] | None = None,
    unchanged: str = "regenerate",
) -> np.ndarray:
    """The image after one event step, by `method` (see `METHODS`). `unchanged` applies to `changen` only (the
    baselines always keep the unchanged pixels); its default here is the paper's whole-image synthesis."""
    if method == "copy-paste":
        return copy_paste(image, state_t, step, rng)
    if method == "inpainting":
        return inpaint(image, state_t, step, rng, ground_texture=ground_texture)
    if method == "changen":
        if generator is None:
            raise ValueError("method 'changen' needs a generator (core.changen_gan.load_generator)")
        seed = int(rng.integers(2**63))
        return changen_synthesize(
            generator,
            image,
            state_t.semantic,
            step.state.semantic,
            seed,
            device,
            is_canceled=is_canceled,
            unchanged=unchanged,
        )
    raise InputError(f"Unknown synthesis method '{method}': use one of {', '.join(METHODS)}.")


@dataclass
class SynthesisResult:
    """`images[t]` (H, W, 3) uint8 for t = 0..T; `masks[t]` semantic maps (H, W) uint8; `changes[t - 1]` the
    pixels whose class changed from t - 1 to t (H, W) uint8 1/0; `log` the events, seeds, method and device."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    changes: list[np.ndarray]
    log: dict


def synthesize(
    image: RasterData,
    state: LabelState,
    series: Series,
    method: str = "changen",
    device: str | torch.device = "auto",
    rng: np.random.Generator | None = None,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
    generator: torch.nn.Module | str | None = None,
    unchanged: str = "keep",
) -> SynthesisResult:
    """Images for every frame of `series` (whose first frame is `state`, on `image`'s grid).

    16-bit images are stretched to 8 bits first (`to_uint8`); nodata pixels stay nodata in every frame.
    `generator`: a module or a model name/path for `changen` (default: the shipped `changen_gan_cpu`).
    `unchanged`: for `changen`, "keep" the input outside the change (an edit) or "regenerate" the whole image."""
    if method not in METHODS:
        raise InputError(f"Unknown synthesis method '{method}': use one of {', '.join(METHODS)}.")
    check_unchanged_mode(unchanged)
    if state.shape != image.grid.shape or series.frames[0].shape != state.shape:
        raise InputError(
            f"the buildings ({state.shape[1]}×{state.shape[0]} px) are not on the image's grid "
            f"({image.grid.width}×{image.grid.height} px): rasterise them onto the image first"
        )
    rng = rng if rng is not None else np.random.default_rng(0)
    torch_device = pick_device(device) if isinstance(device, str) else device
    if method == "changen" and not isinstance(generator, torch.nn.Module):
        from .changen_gan import load_generator

        generator = load_generator(generator or DEFAULT_GENERATOR, torch_device)
    pixels = to_uint8(image.array, valid=image.valid)
    if pixels.shape[2] != 3:
        raise InputError(f"synthesis needs 3 bands, the image has {pixels.shape[2]}: choose three bands")
    invalid = ~image.valid
    images, masks, changes = [pixels], [state.semantic.copy()], []
    timings = []
    current_state = state
    for t, step in enumerate(series.steps):
        if is_canceled is not None and is_canceled():
            raise Canceled()
        started = time.perf_counter()
        following = synthesize_step(
            method,
            images[-1],
            current_state,
            step,
            rng,
            generator,
            torch_device,
            is_canceled=is_canceled,
            unchanged=unchanged,
        )
        following[invalid] = images[0][invalid]
        timings.append(round(time.perf_counter() - started, 3))
        images.append(following)
        masks.append(step.state.semantic.copy())
        changes.append(step.change.astype(np.uint8))
        current_state = step.state
        if progress is not None:
            progress(100.0 * (t + 1) / max(len(series.steps), 1))
    log = {
        "method": method,
        "unchanged": unchanged if method == "changen" else "keep",
        "device": describe_device(torch_device),
        "seconds_per_step": timings,
        "series": series.to_dict(),
    }
    return SynthesisResult(images, masks, changes, log)


# ------------------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("image", help="pre-event image: GeoTIFF (any CRS, 8/16-bit) or PNG/JPEG")
    parser.add_argument(
        "buildings", help="building mask raster on the image's grid, or polygons (.gpkg/.geojson)"
    )
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument(
        "--remove", default="0.3", help="instances removed per step: a count (3) or fraction (0.3)"
    )
    parser.add_argument(
        "--create", type=int, default=3, help="objects created per step (copies of instances)"
    )
    parser.add_argument("--steps", type=int, default=1, help="number of steps T (images t0..tT)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed gives the same output"
    )
    parser.add_argument("--method", choices=METHODS, default="changen")
    parser.add_argument(
        "--unchanged",
        choices=UNCHANGED_MODES,
        default="keep",
        help="changen: keep the input outside the change (default) or regenerate the whole image (the paper's "
        "synthesis, more diverse training data); the baselines always keep it",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--model", default=DEFAULT_GENERATOR, help="generator name or .safetensors path")
    parser.add_argument("--bands", type=int, nargs=3, metavar=("R", "G", "B"), help="band numbers (1-based)")
    parser.add_argument(
        "--min-area", type=int, default=64, help="smallest instance (pixels) to remove or copy"
    )
    parser.add_argument("--scale", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"))
    parser.add_argument("--angle", type=float, nargs=2, default=(-15.0, 15.0), metavar=("LOW", "HIGH"))


def write_result(result: SynthesisResult, grid, out: Path) -> list[Path]:
    """t0…tT images (`image_t{t}.tif`), masks (`mask_t{t}.tif`, class ids), change masks (`change_t{t}.tif`,
    1 = changed since t - 1) as GeoTIFFs on `grid`, and `events.json`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for t, image in enumerate(result.images):
        written.append(out / f"image_t{t}.tif")
        write_geotiff(written[-1], image, grid, nodata=grid.nodata)
        written.append(out / f"mask_t{t}.tif")
        write_geotiff(written[-1], result.masks[t], grid)
        if t > 0:
            written.append(out / f"change_t{t}.tif")
            write_geotiff(written[-1], result.changes[t - 1], grid)
    log_path = out / "events.json"
    write_text_atomic(log_path, json.dumps(result.log, indent=1))
    written.append(log_path)
    return written


def run(args) -> int:
    from .cli_events import parse_amount
    from .instances import load_state

    grid = raster_grid(args.image)
    image = read_raster(args.image, bands=args.bands)
    state, _, _ = load_state(args.buildings, grid=grid)
    series = simulate_series(
        state,
        args.seed,
        args.steps,
        remove=parse_amount(args.remove),
        create=args.create,
        min_area=args.min_area,
        scale_range=tuple(args.scale),
        angle_range=tuple(args.angle),
    )
    started = time.perf_counter()
    result = synthesize(
        image,
        state,
        series,
        method=args.method,
        device=args.device,
        rng=np.random.default_rng([args.seed, 1]),
        generator=args.model,
        unchanged=args.unchanged,
    )
    written = write_result(result, grid, Path(args.out))
    events = [event for step in series.steps for event in step.events]
    removed = sum(event.kind == "remove" for event in events)
    created = sum(event.kind == "create" for event in events)
    mode = f" ({args.unchanged} unchanged)" if args.method == "changen" else ""
    print(
        f"{args.method}{mode} on {result.log['device']}: {args.steps} step(s), {removed} removed, {created} created, "
        f"{time.perf_counter() - started:.1f} s; wrote {len(written)} files to {args.out}"
    )
    return 0
