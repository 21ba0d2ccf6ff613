"""Model cards and sample grids of the latent autoencoder and the RS-DiT denoiser (written at export)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ...atomic import atomic_path, write_text_atomic

LICENCE = (
    "Trained on research-licensed imagery (xBD CC BY-NC-SA 4.0, CrowdAI CC BY-SA 4.0, LoveDA CC BY-NC-SA 4.0, "
    "ISPRS research terms, MBRSC Dubai CC0, IdaBD probably CC BY-NC): for non-commercial research use."
)


def save_grid(path: Path, rows: list[list[np.ndarray]], gap: int = 4) -> None:
    """Rows of equally sized (H, W, 3) uint8 tiles into one PNG, written atomically."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    canvas = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            canvas[
                r * (height + gap) : r * (height + gap) + height,
                c * (width + gap) : c * (width + gap) + width,
            ] = tile
    with atomic_path(path) as tmp:
        Image.fromarray(canvas).save(tmp, format="PNG")


def curve(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_autoencoder_card(args, codec, provenance: dict, device) -> None:
    from .autoencoder import evaluation_crops, load_training_images, psnr_ssim, reconstruct

    train, held_out = load_training_images()
    crops = evaluation_crops(held_out)
    recon = reconstruct(codec, crops, device)
    psnr, ssim = psnr_ssim(crops, recon)
    target = Path(args.export)
    grid_path = target.with_name(f"{target.stem}_samples.png")
    save_grid(grid_path, [list(crops[i : i + 6]) for i in (0, 6)] + [list(recon[i : i + 6]) for i in (0, 6)])
    evals = curve(args.run_dir / "eval.jsonl")
    history = "\n".join(
        f"| {row['step']} | {row['hours']:.2f} | {row['psnr']:.2f} | {row['ssim']:.3f} |"
        for row in evals[:: max(1, len(evals) // 12)]
    )
    parameters = sum(p.numel() for p in codec.vae.parameters())
    config = codec.config
    text = f"""# {target.stem}: the latent autoencoder of the RS-DiT generator

Stable Diffusion's KL autoencoder layout (diffusers `AutoencoderKL`), preset `cpu`: blocks
{list(config.block_out_channels)}, {config.layers_per_block} layer per block, {config.latent_channels} latent
channels, {config.downsampling}× downsampling; {parameters / 1e6:.2f} M parameters. Latents are normalised as
`(z - {config.shift_factor:.4f}) × {config.scaling_factor:.4f}` (measured on 64 training crops).

## Data
RGB images of `../shared/data/buildings` (xBD Harvey, Joplin, Guatemala, IdaBD, CrowdAI), `landcover` (Dubai
MBRSC, LoveDA, Potsdam) and `unlabeled/levir_extra`: {len(train)} training images, {len(held_out)} held out
(one in ten, a stable hash of the path). Never `change/` or `georef/`. Random 128² crops, 0.5–1× scale, the eight
flips/rotations, sources drawn evenly. {LICENCE}

## Training
L1 + 0.1 × perceptual (unit-normalised ImageNet EfficientNet-Lite0 features, strides 4–32) + 1e-6 × KL, and from
step 2000 a light spectral-norm PatchGAN hinge term (0.05). Adam 2e-4 (β 0.5, 0.9), batch 4, bf16 autocast, one
CPU thread. At step 2034 the encoder was frozen (`--freeze-encoder`): the latent space of the shipped RS-DiT is
fixed from there on, and only the decoder kept training. Step {provenance['step']}, {provenance['hours']:.2f} h
of training.

## Held-out reconstruction ({len(crops)} fixed 256² crops)
PSNR {psnr:.2f} dB, SSIM {ssim:.3f} (per RGB channel, Gaussian σ 1.5). Not compared with Stable Diffusion's
VAE: its weights are not reachable here. Reconstructions are blurry: fine roof texture, cars and thin lines are
lost (see the grid). Previews therefore keep the input's own pixels outside the change (`keep_outside`).

| step | hours | PSNR (dB) | SSIM |
|---|---|---|---|
{history}

Grid (`{grid_path.name}`): rows 1–2 held-out crops, rows 3–4 their reconstructions.

## Reproduce, continue, export
```bash
nohup nice -n 10 python -m core train-autoencoder --run-dir runs/vae --threads 1 &      # steps 0-2034
nohup nice -n 10 python -m core train-autoencoder --run-dir runs/vae --freeze-encoder --threads 1 &   # resumes
python -m core train-autoencoder --run-dir runs/vae --export {target} --card
```
"""
    write_text_atomic(target.with_suffix(".md"), text)


# OpenEarthMap's colours where it has them; unlabeled black
CLASS_COLOURS = np.array(
    [
        [0, 0, 0],
        [128, 0, 0],
        [0, 255, 36],
        [148, 148, 148],
        [255, 255, 255],
        [34, 97, 38],
        [0, 69, 255],
        [75, 181, 73],
        [222, 31, 7],
    ],
    np.uint8,
)


def edited_classes(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A change event for the grid: the largest building becomes unlabeled ground, or (no building) the largest
    region of another class becomes building."""
    import cv2

    from ...events.classes import BUILDING, UNLABELED

    after = classes.copy()
    source, target = (
        (BUILDING, UNLABELED)
        if (classes == BUILDING).any()
        else (int(np.bincount(classes.ravel()).argmax()), BUILDING)
    )
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (classes == source).astype(np.uint8), connectivity=8
    )
    if count > 1:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        region = labels == largest
        if target == BUILDING:  # a building-sized block inside the region, not the whole region
            rows, cols = np.nonzero(region)
            r, c = rows[len(rows) // 2], cols[len(cols) // 2]
            block = np.zeros_like(region)
            block[max(r - 20, 0) : r + 20, max(c - 28, 0) : c + 28] = True
            region &= block
        after[region] = target
    return after


def write_denoiser_card(args, config: dict, device) -> None:
    from ...synthesis.diffusion.change_sampler import load_latent_diffusion, synthesize_change
    from .autoencoder import random_crops
    from .denoiser import LABELLED_FIELDS, load_labelled_images

    target = Path(args.export)
    generator = load_latent_diffusion(target, args.autoencoder, device)
    _, held_out = load_labelled_images()
    pixels, classes = random_crops(held_out, np.random.default_rng(11), 6, 256, LABELLED_FIELDS)
    rows = []
    rng = np.random.default_rng(0)
    for index in range(len(pixels)):
        after = edited_classes(classes[index], rng)
        post = synthesize_change(generator, pixels[index], after, after != classes[index], seed=index)
        rows.append([pixels[index], CLASS_COLOURS[classes[index]], CLASS_COLOURS[after], post])
    grid_path = target.with_name(f"{target.stem}_samples.png")
    save_grid(grid_path, rows)
    evals = curve(args.run_dir / "eval.jsonl")
    logs = curve(args.run_dir / "log.jsonl")
    history = "\n".join(
        f"| {row['step']} | {row['hours']:.2f} | "
        + " | ".join(f"{row[key]:.3f}" for key in row if key.startswith("mse_t"))
        + " |"
        for row in evals[:: max(1, len(evals) // 12)]
    )
    speed = np.median([row["s_per_step"] for row in logs if "s_per_step" in row]) if logs else float("nan")
    rsdit = config["rsdit"]
    text = f"""# {target.stem}: Changen2's RS-DiT, trained here on one CPU thread

RS-DiT (`core/synthesis/diffusion/rsdit.py`, the official module layout), preset `cpu`: depth {rsdit['depth']},
hidden {rsdit['hidden_size']}, {rsdit['num_heads']} heads, patch {rsdit['patch_size']}, window 8×8 tokens in three of
four blocks; condition: one-hot of the {len(config['classes'])} project classes ({', '.join(config['classes'])}),
see `core/events/classes.py`. Latent space: `{config['autoencoder']}` (digest {config['autoencoder_digest']}).
EMA weights (decay {args.ema}) stored in bf16.

## Data
Building tiles (xBD Harvey, Joplin, Guatemala, IdaBD, CrowdAI: {{building, unlabeled}}) and land-cover maps (Dubai
MBRSC, LoveDA, Potsdam, mapped onto the project classes), one image in ten held out; 128² crops (16² latents)
with 0.5–1× scale jitter and the eight dihedral transforms; sources drawn evenly. {LICENCE}

## Training
iDDPM objective with learned-range variance (MSE on ε + the variational bound, 1000 linear-β steps, as DiT),
AdamW 2e-4, batch 8, gradient clip 1, bf16 autocast. Step {config['step']}, {config['hours']:.2f} h at a median
{speed:.2f} s per step (one thread, sharing the machine). The paper trains at 256² on GPUs for
hundreds of thousands of steps: this is a very early checkpoint. Sampled at any size (windows of up to 512²
around the change) with 20 DDIM steps and latent mixing (`core/synthesis/diffusion/change_sampler.py`).

Held-out ε-MSE of the EMA model at fixed timesteps (fixed noise; 1.0 = predicting nothing):

| step | hours | t=50 | t=250 | t=500 | t=750 |
|---|---|---|---|---|---|
{history}

Grid (`{grid_path.name}`), one held-out crop a row: t1, S_t, S_t+1, t2 (latent mixing, the input kept outside
the change).

## Reproduce, continue, export
```bash
nohup nice -n 10 python -m core train-denoiser --run-dir runs/rsdit --autoencoder runs/vae_latent_space.safetensors --crop 128 --batch 8 --threads 1 &   # resumes
python -m core train-denoiser --run-dir runs/rsdit --autoencoder resources/models/{config['autoencoder']}.safetensors --export {target} --card
```
"""
    write_text_atomic(target.with_suffix(".md"), text)
