"""Change synthesis by latent mixing (Changen2 §4.3, ChangeAnywhere §3.3): I_t+1 = G(S_t+1, I_t, z).

The denoiser is conditioned on the post-event class map S_t+1. At every denoising step, outside the change region
(dilated and feathered at latent resolution) the latent is replaced by the pre-event latent noised to the current
level, so the unchanged area stays the pre-event scene while the change is generated in its context.

`variation` is ChangeAnywhere's "non-change implies reasonable change": with variation v > 0 the blending stops
once the noise level falls below v·T, so the unchanged area is redrawn from a partly noised pre-event latent under
the same semantics (temporal diversity for training pairs); v = 0 keeps it. With `keep_outside=True` (previews)
the pixels outside the change are the input's own, composited over a feathered seam, because the autoencoder's
reconstruction is itself lossy.

Only the neighbourhood of the change is sampled: connected changes with `context` pixels around them are grouped
into windows of at most `max_window` pixels, each sampled on its own (seeded by its position), so an edit costs
what it changes, not what the view shows, and memory does not grow with the raster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...errors import Canceled, InputError
from ...events.classes import BUILDING, PROJECT_CLASSES, UNLABELED
from .autoencoder import LatentCodec, load_autoencoder, to_signed, to_uint8
from .process import make_sampler
from .rsdit import RSDiT, RSDiTConfig, build_rsdit, load_official_rsdit

PIXEL_MULTIPLE = 16  # latent (8×) × patch (2)
SEAM_DILATE = 3  # pixels the change is grown before compositing
SEAM_FEATHER = 4.0  # Gaussian σ of the seam, pixels


@dataclass
class LatentDiffusionGenerator:
    codec: LatentCodec
    denoiser: RSDiT
    condition: (
        str  # "classes": one-hot project classes; "building": a 1-channel building mask (official xView2)
    )
    sampler: str = "ddim"
    steps: int = 20
    name: str = "rsdit"

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def condition_map(self, classes: np.ndarray) -> torch.Tensor:
        """(H, W) project class ids → the denoiser's (1, C, H, W) condition."""
        ids = torch.from_numpy(np.ascontiguousarray(classes)).long().to(self.device)
        if self.condition == "building":
            return (ids == BUILDING).float()[None, None]
        return F.one_hot(ids, len(PROJECT_CLASSES)).permute(2, 0, 1).float()[None]


def load_latent_diffusion(
    denoiser: str | Path, autoencoder: str | Path | None = None, device: str | torch.device = "cpu"
) -> LatentDiffusionGenerator:
    """Our shipped RS-DiT (.safetensors naming its autoencoder) or an official RSDiT `.pt/.pth` (building-mask
    condition, Stable Diffusion's VAE: pass `autoencoder` as a diffusers folder or single file)."""
    from ...weights import MODELS_DIR, load_weights

    path = Path(denoiser)
    if path.suffix in (".pt", ".pth"):
        if autoencoder is None:
            raise InputError(
                f"{path.name} is an official RS-DiT file: it samples in Stable Diffusion's VAE latent space. Pass "
                "that VAE too (a diffusers AutoencoderKL folder or its .safetensors file)."
            )
        model = load_official_rsdit(path, device)
        if model.config.label_channels != 1:
            raise InputError(
                f"{path.name} is conditioned on {model.config.label_channels} label channels; only the building "
                "(1-channel, xView2) release is wired to building edits."
            )
        codec = load_autoencoder(autoencoder, device)
        return LatentDiffusionGenerator(codec, model, "building", name=path.stem)
    state, meta = load_weights(path, device)
    if meta.get("kind") != "rsdit":
        raise InputError(f"{path} is a Changen model of kind '{meta.get('kind')}', not an RS-DiT denoiser.")
    config = RSDiTConfig(**meta["rsdit"])
    model = build_rsdit(config).to(device)
    model.load_state_dict({key: value.float() for key, value in state.items()}, strict=True)
    codec = load_autoencoder(autoencoder or MODELS_DIR / f"{meta['autoencoder']}.safetensors", device)
    if codec.latent_space_digest() != meta["autoencoder_digest"]:
        raise InputError(
            f"{path.name} was trained in the latent space of autoencoder {meta['autoencoder']} "
            f"(digest {meta['autoencoder_digest']}); the given autoencoder has another latent space."
        )
    return LatentDiffusionGenerator(codec, model.eval(), "classes", name=Path(path).stem)


def change_windows(change: np.ndarray, context: int, max_window: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) windows covering every change pixel with `context` around it; sizes are
    multiples of PIXEL_MULTIPLE, shifted inside the image (a window larger than the image is padded when cut)."""
    height, width = change.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(change.astype(np.uint8), connectivity=8)
    boxes = []
    for x, y, w, h, _ in stats[1:count]:  # context stops at the image's border: no window larger than needed
        boxes.append(
            [
                max(y - context, 0),
                max(x - context, 0),
                min(y + h + context, height),
                min(x + w + context, width),
            ]
        )
    merged = True
    while merged:  # merge overlapping boxes while the union still fits one window
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                union = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                if overlap and max(union[2] - union[0], union[3] - union[1]) <= max_window:
                    boxes[i] = union
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    windows = []
    for top, left, bottom, right in boxes:
        for row in range(top, bottom, max_window):  # a change larger than one window is split
            for col in range(left, right, max_window):
                h = _round_up(min(max_window, bottom - row))
                w = _round_up(min(max_window, right - col))
                r = int(np.clip(row + (min(max_window, bottom - row) - h) // 2, 0, max(height - h, 0)))
                c = int(np.clip(col + (min(max_window, right - col) - w) // 2, 0, max(width - w, 0)))
                windows.append((r, c, h, w))
    return windows


def whole_image_windows(shape: tuple[int, int], max_window: int) -> list[tuple[int, int, int, int]]:
    """Tiles of at most `max_window` covering the whole image (for outputs that redraw everything)."""
    height, width = shape
    tile = _round_up(min(max_window, max(height, width)))
    return [
        (top, left, min(tile, _round_up(height - top)), min(tile, _round_up(width - left)))
        for top in range(0, height, tile)
        for left in range(0, width, tile)
    ]


def _round_up(value: int) -> int:
    return -(-value // PIXEL_MULTIPLE) * PIXEL_MULTIPLE


def latent_keep_mask(
    change: np.ndarray, downsampling: int, dilate: int = 1, feather: float = 1.0
) -> np.ndarray:
    """1 where the pre-event latent is kept: the complement of the change at latent resolution, grown by
    `dilate` latent pixels and feathered (σ in latent pixels)."""
    height, width = change.shape[0] // downsampling, change.shape[1] // downsampling
    cells = change[: height * downsampling, : width * downsampling].reshape(
        height, downsampling, width, downsampling
    )
    generate = cells.any(axis=(1, 3)).astype(np.uint8)
    if dilate:
        generate = cv2.dilate(generate, np.ones((2 * dilate + 1,) * 2, np.uint8))
    generate = generate.astype(np.float32)
    if feather:
        generate = np.maximum(generate, cv2.GaussianBlur(generate, (0, 0), feather))
    return 1.0 - np.clip(generate, 0.0, 1.0)


def sample_window(
    generator: LatentDiffusionGenerator,
    image: np.ndarray,
    classes: np.ndarray,
    change: np.ndarray,
    seed: int,
    variation: float = 0.0,
    on_step: Callable[[], None] | None = None,
) -> np.ndarray:
    """One window (sides multiples of PIXEL_MULTIPLE): the decoded post-event image, everywhere."""
    device = generator.device
    codec, model = generator.codec, generator.denoiser
    rng = torch.Generator().manual_seed(seed)
    sampler = make_sampler(generator.sampler, generator.steps, rng)
    bf16 = device.type == "cpu" and torch.backends.mkldnn.is_available()
    with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
        pre = codec.encode(to_signed(image[None], device)).float()
        keep = torch.from_numpy(latent_keep_mask(change, codec.downsampling)).to(device)[None, None]
        labels = generator.condition_map(classes)
        stop_blending = variation * sampler.diffusion.num_timesteps
        x = sampler.initial_noise(tuple(pre.shape), device)
        for t in sampler.timesteps:
            output = model(x, sampler.batch_timesteps(t, x), labels).float()
            x = sampler.step(output, t, x)
            following = sampler.next_timestep(t)
            if following >= stop_blending or following < 0 and variation == 0:
                x = keep * sampler.noise_to(pre, t) + (1 - keep) * x
            if on_step is not None:
                on_step()
        return to_uint8(codec.decode(x))[0]


def synthesize_change(
    generator: LatentDiffusionGenerator,
    image: np.ndarray,
    classes_after: np.ndarray,
    change: np.ndarray,
    seed: int = 0,
    *,
    variation: float = 0.0,
    keep_outside: bool = True,
    context: int = 64,
    max_window: int = 512,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """The post-event image for `image` (H, W, 3) uint8 whose class map becomes `classes_after` (H, W) project
    ids inside `change` (H, W) bool. Same seed → same output. `keep_outside`: only windows around the change are
    sampled and the input's pixels kept outside it; otherwise the whole image is redrawn (tiles of `max_window`),
    the unchanged area by latent mixing (and `variation`)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"latent diffusion synthesis needs an RGB image (H, W, 3); got shape {image.shape}.")
    if classes_after.shape != image.shape[:2] or change.shape != image.shape[:2]:
        raise InputError("the class map, the change mask and the image must have the same height and width.")
    if not 0.0 <= variation <= 1.0:
        raise InputError(f"variation must be between 0 and 1; got {variation}.")
    out = image.copy()
    change = change.astype(bool)
    if not change.any():
        return out
    windows = (
        whole_image_windows(change.shape, max_window)
        if not keep_outside
        else change_windows(change, context, max_window)
    )
    total, done = len(windows) * generator.steps, 0

    def on_step():
        nonlocal done
        done += 1
        if is_canceled is not None and is_canceled():
            raise Canceled()
        if progress is not None:
            progress(100.0 * done / total)

    for top, left, height, width in windows:
        region = (slice(top, top + height), slice(left, left + width))
        crop, labels, mask = _padded(image[region], height, width), classes_after[region], change[region]
        labels, mask = _padded(labels, height, width), _padded(mask, height, width)
        drawn = sample_window(
            generator, crop, labels, mask, seed * 1_000_003 + top * 7919 + left, variation, on_step
        )
        drawn = drawn[: image[region].shape[0], : image[region].shape[1]]
        if keep_outside:
            grown = cv2.dilate(change[region].astype(np.uint8), np.ones((2 * SEAM_DILATE + 1,) * 2, np.uint8))
            alpha = np.maximum(
                grown.astype(np.float32), cv2.GaussianBlur(grown.astype(np.float32), (0, 0), SEAM_FEATHER)
            )
            alpha = np.clip(alpha, 0, 1)[..., None]
            out[region] = np.round(alpha * drawn + (1 - alpha) * out[region]).astype(np.uint8)
        else:
            out[region] = drawn
    return out


REGENERATE_VARIATION = 0.25  # the unchanged area's freedom in whole-image outputs (training pairs)


def unchanged_options(unchanged: str) -> dict:
    """`synthesize_change` keywords for an `unchanged` mode: "keep" edits the input in place (only windows around
    the change are sampled), "regenerate" redraws the whole image (ChangeAnywhere's varied unchanged area)."""
    if unchanged == "keep":
        return {"variation": 0.0, "keep_outside": True}
    if unchanged == "regenerate":
        return {"variation": REGENERATE_VARIATION, "keep_outside": False}
    raise InputError(f"unchanged must be 'keep' or 'regenerate', got {unchanged!r}")


def synthesize_building_edit(
    generator: LatentDiffusionGenerator,
    image: np.ndarray,
    semantic_after: np.ndarray,
    change: np.ndarray,
    seed: int,
    unchanged: str = "keep",
    is_canceled: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """A building event (0/1 semantic map after it) the way `synthesize` asks (`unchanged_options`)."""
    classes = np.where(semantic_after > 0, BUILDING, UNLABELED).astype(np.uint8)
    return synthesize_change(
        generator,
        image,
        classes,
        change,
        seed,
        **unchanged_options(unchanged),
        progress=progress,
        is_canceled=is_canceled,
    )


def check_class_condition(generator: LatentDiffusionGenerator) -> None:
    """Land-cover synthesis needs a denoiser conditioned on the project classes, not a building mask."""
    if generator.condition != "classes":
        raise InputError(
            f"{generator.name} is conditioned on a building mask only; land-cover change needs an RS-DiT trained "
            "on the project classes (the shipped rsdit_cpu, or one exported by train-denoiser)."
        )


def _padded(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad a window cut at the image border back to its planned size."""
    pad_h, pad_w = height - array.shape[0], width - array.shape[1]
    if pad_h <= 0 and pad_w <= 0:
        return array
    pads = [(0, max(pad_h, 0)), (0, max(pad_w, 0))] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pads, mode="reflect" if array.ndim == 3 else "edge")
