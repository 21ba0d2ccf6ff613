"""Change synthesis `I_t+1 = G(S_t+1, I_t, S_t, z)` over an event series (`python -m core synthesize`).

Methods: `changen` (the trained generator, tiled with overlap and centre-crop stitching so memory does not grow
with the raster), `changen2` (Changen2's RS-DiT latent diffusion with latent mixing, sampled only around the
change, `core.synthesis.diffusion`), `copy-paste` (creation only) and `inpainting` (removal only), the paper's baselines. Outputs are
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

from ..atomic import write_text_atomic
from ..device import describe_device, pick_device
from ..errors import Canceled, InputError
from ..events.series import Series
from ..events.state import LabelState
from ..events.step import StepResult
from ..io.rasters import RasterData, to_uint8, write_geotiff
from .changen import changen_synthesize
from .compositing import check_unchanged_mode
from .copy_paste import copy_paste
from .inpaint import inpaint
from .methods import DEFAULT_GENERATOR, DEFAULT_MODELS, METHODS


def load_synthesis_generator(
    method: str, model: str | None = None, device="cpu", autoencoder: str | None = None
):
    """The model a method needs (None for the baselines): the Changen GAN, or Changen2's RS-DiT with its
    autoencoder (`autoencoder` only for an official RS-DiT file). `model`: a shipped name or a file path."""
    if method == "changen":
        from .changen_gan import load_generator

        return load_generator(model or DEFAULT_GENERATOR, device)
    if method == "changen2":
        from .diffusion.change_sampler import load_latent_diffusion

        return load_latent_diffusion(model or DEFAULT_MODELS["changen2"], autoencoder, device)
    return None


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
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """The image after one event step, by `method` (see `METHODS`). `unchanged` applies to `changen` only (the
    baselines always keep the unchanged pixels); its default here is the paper's whole-image synthesis.
    `progress` (0–100) follows the generator's tiles (`changen`) or sampler steps (`changen2`)."""
    if method == "copy-paste":
        return copy_paste(image, state_t, step, rng)
    if method == "inpainting":
        return inpaint(image, state_t, step, rng, ground_texture=ground_texture)
    if method == "changen2":
        from .diffusion.change_sampler import synthesize_building_edit

        if generator is None:
            raise InputError("method 'changen2' needs a generator (load_synthesis_generator('changen2'))")
        seed = int(rng.integers(2**31))
        return synthesize_building_edit(
            generator,
            image,
            step.state.semantic,
            step.change.astype(bool),
            seed,
            unchanged,
            is_canceled,
            progress,
        )
    if method == "changen":
        if generator is None:
            raise ValueError("method 'changen' needs a generator (core.synthesis.changen_gan.load_generator)")
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
            progress=progress,
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
    `generator`: a loaded model or a model name/path for `changen`/`changen2` (default: `DEFAULT_MODELS`).
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
    if method in DEFAULT_MODELS and (generator is None or isinstance(generator, str | Path)):
        generator = load_synthesis_generator(method, generator, torch_device)
    pixels = to_uint8(image.array, valid=image.valid)
    if pixels.shape[2] != 3:
        raise InputError(f"synthesis needs 3 bands, the image has {pixels.shape[2]}: choose three bands")
    invalid = ~image.valid
    images, masks, changes = [pixels], [state.semantic.copy()], []
    timings = []
    current_state = state
    steps = max(len(series.steps), 1)
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
            progress=None
            if progress is None
            else lambda value, t=t: progress(100.0 * (t + value / 100) / steps),
        )
        following[invalid] = images[0][invalid]
        timings.append(round(time.perf_counter() - started, 3))
        images.append(following)
        masks.append(step.state.semantic.copy())
        changes.append(step.change.astype(np.uint8))
        current_state = step.state
        if progress is not None:
            progress(100.0 * (t + 1) / steps)
    log = {
        "method": method,
        "unchanged": unchanged if method in DEFAULT_MODELS else "keep",
        "device": describe_device(torch_device),
        "seconds_per_step": timings,
        "series": series.to_dict(),
    }
    return SynthesisResult(images, masks, changes, log)


def write_result(result: SynthesisResult, grid, out: Path, colormap: dict | None = None) -> list[Path]:
    """t0…tT images (`image_t{t}.tif`), masks (`mask_t{t}.tif`, class ids; with `colormap` {id: RGB} a colour
    table), change masks (`change_t{t}.tif`, 1 = changed since t - 1) as GeoTIFFs on `grid`, and `events.json`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for t, image in enumerate(result.images):
        written.append(out / f"image_t{t}.tif")
        write_geotiff(written[-1], image, grid, nodata=grid.nodata)
        written.append(out / f"mask_t{t}.tif")
        write_geotiff(written[-1], result.masks[t], grid, colormap=colormap)
        if t > 0:
            written.append(out / f"change_t{t}.tif")
            write_geotiff(written[-1], result.changes[t - 1], grid)
    log_path = out / "events.json"
    write_text_atomic(log_path, json.dumps(result.log, indent=1))
    written.append(log_path)
    return written
