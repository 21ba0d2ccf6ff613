"""Exporting a generator run: the EMA weights as a shipped .safetensors model and its model card."""

import csv
from pathlib import Path

import numpy as np
import torch

from ...atomic import write_png_atomic, write_text_atomic
from ...data.buildings import building_shape_bank, generator_tiles
from ...synthesis.changen_gan import build_generator, count_parameters
from ...weights import save_weights
from .samples import evaluation_samples, fidelity_metrics, sample_grid, synthesize_samples
from .trainer import load_checkpoint

DATA_LICENCE = (
    "xBD (Harvey, Joplin) CC BY-NC-SA 4.0; IdaBD (probably Maxar Open Data, CC BY-NC) - "
    "weights are for non-commercial research use"
)


def export_generator(out: Path, target: Path) -> dict:
    """EMA generator of OUT's checkpoint → `target` (.safetensors, architecture and training metadata), plus
    `<stem>_samples.png` and the model card `<stem>.md`, both measured on held-out crops."""
    state = load_checkpoint(out)
    args = state["args"]
    config = {
        "model": "changen_generator",
        "architecture": state["architecture"],
        "training": {
            "steps": state["step"],
            "wall_hours": round(state["wall_s"] / 3600, 3),
            "batch": args["batch"],
            "crop": args["crop"],
            "lowfreq_weight": args["lowfreq_weight"],
            "data": "xbd_harvey, idabd, xbd_joplin building tiles (bottom 128 rows held out)",
            "licence": DATA_LICENCE,
        },
    }
    save_weights(target, state["ema"], config)

    generator = build_generator(state["architecture"])
    generator.load_state_dict(state["ema"])
    generator.eval()
    tiles = generator_tiles()
    samples = evaluation_samples(tiles, building_shape_bank(tiles), 128, count=None)
    synthesized = np.concatenate(
        [
            synthesize_samples(generator, samples[i : i + 8], i, torch.device("cpu"))
            for i in range(0, len(samples), 8)
        ]
    )
    metrics = fidelity_metrics(samples, synthesized)
    second_draw = np.concatenate(
        [
            synthesize_samples(generator, samples[i : i + 8], 10_000 + i, torch.device("cpu"))
            for i in range(0, len(samples), 8)
        ]
    )
    between_draws = np.abs(synthesized.astype(np.float32) - second_draw.astype(np.float32)).mean(axis=3)
    changed = np.stack([sample.change for sample in samples])
    metrics["noise_diversity_change"] = float(between_draws[changed].mean())
    metrics["noise_diversity_outside"] = float(between_draws[~changed].mean())
    samples_png = target.with_name(f"{target.stem}_samples.png")
    write_png_atomic(samples_png, sample_grid(samples[:6], synthesized[:6]))
    card = model_card(
        target, config, args, metrics, len(samples), recent_losses(out), count_parameters(generator)
    )
    write_text_atomic(target.with_suffix(".md"), card)
    return config | {"metrics": metrics}


def recent_losses(out: Path, rows: int = 20) -> dict[str, float]:
    """Mean of each loss over the last `rows` logged rows of OUT/log.csv."""
    path = out / "log.csv"
    if not path.is_file():
        return {}
    with open(path) as handle:
        logged = [row for row in csv.DictReader(handle) if row.get("g_adv")]
    recent = logged[-rows:]
    keys = ("d_real", "d_fake", "g_adv", "g_lowfreq", "steps_per_s")
    return {key: float(np.mean([float(row[key]) for row in recent])) for key in keys} if recent else {}


def model_card(target, config, args, metrics, evaluated, losses, parameters) -> str:
    training = config["training"]
    architecture = config["architecture"]
    loss_line = ", ".join(f"{key} {value:.3f}" for key, value in losses.items()) or "no log found"
    command = (
        f"cd <repo> && nohup nice -n 5 .venv/bin/python -m core train-generator --out {args['out']} "
        f"--config {args['config']} --threads {args['threads']} --resume >> {args['out']}/train.log 2>&1 &"
    )
    warm_start = (
        f"\n- Continued from the exported generator `{Path(args['init_generator']).name}` "
        "(`--init-generator`: G and its EMA from the file, a new discriminator, step count carried on)."
        if args.get("init_generator")
        else ""
    )
    return f"""# {target.stem}: Changen generator (CPU width)

`I_t+1 = G(S_t+1, I_t, S_t, z)` from Changen (Zheng et al., ICCV 2023, section 3.2), built from the paper in
`core/changen_gan.py` (the authors never released it) and trained on this project's CPU. Load it with
`core.synthesis.changen_gan.load_generator("{target.stem}")`; images in [-1, 1], masks 0 = background, 1 = building,
H and W multiples of 32 (at least 64).

## Licence and data
Trained only on the single-temporal pre-disaster tiles in `../shared/data/buildings`: xBD Hurricane Harvey (5)
and Joplin tornado (3) - CC BY-NC-SA 4.0 - and IdaBD Hurricane Ida (4, probably Maxar Open Data, CC BY-NC);
1024² RGB at ~0.5 m with building masks. The bottom 128 rows of every tile were held out (evaluation and samples
below). SpaceNet Atlanta was left out (single-band panchromatic; the generator makes RGB).
**These weights inherit the data's terms: non-commercial research use only.**

## Model
{parameters / 1e6:.2f} M parameters. Architecture (`cpu` preset): encoder U-Net with ResNet-18 layout, stem + stages
{architecture["resnet"]}, features f_t,i of widths {architecture["widths"]} (strides 32 … 1); decoder of six
SPADE-GroupNorm residual blocks (embedding width ≤ {architecture["spade_hidden"]}) fed one-hot S_t+1 +
{architecture["noise_channels"]} Gaussian noise channels per pixel; masked transition layer at every scale;
spectral norm; reflection padding; bilinear upsampling; tanh. Discriminator: OASIS U-Net, widths
{architecture["disc_widths"]}, 3 outputs (fake, background, building). Random initialisation (no ImageNet weights).

## Training
- {training["steps"]} steps, batch {training["batch"]}, random {training["crop"]}² crops (scale 0.5-1×, flips,
  rotations, transposition), events from `core.events` (remove 20-60 % of buildings, create 1-4 footprints, or both),
  {training["wall_hours"]:.2f} h wall time in total on 1 CPU thread of a shared 2-core machine.{warm_start}
- Adam β = (0, 0.999), lr G {args["lr_g"]}, D {args["lr_d"]}; {args["precision"]} autocast; EMA {args["ema"]}
  (this file holds the EMA weights).
- Losses, mean of the last logged rows: {loss_line}.
- **Deviation from the paper:** the paper trains with adversarial losses only. Here G also minimises
  {training["lowfreq_weight"]} × L1 between 4×4-average-pooled G output and I_t on pixels ≥ 3 px from any change
  (`--lowfreq-weight`, 0 restores the paper). Without it a CPU-budget run learned to ignore the pre-event image (an early
  CPU run of this project).

## Fidelity on held-out crops
{evaluated} held-out 128² crops with buildings (each with a removal, a creation or both), one noise draw each:

| mean abs(post − pre) inside removed ÷ outside the change | inside created ÷ outside | layout correlation outside the change (blurred pre vs post) |
|---|---|---|
| {metrics["removed_ratio"]:.2f} | {metrics["created_ratio"]:.2f} | {metrics["layout_corr"]:.3f} |

Noise diversity (mean abs difference between two noise draws, 0-255 scale): {metrics["noise_diversity_change"]:.1f}
inside the change, {metrics["noise_diversity_outside"]:.1f} outside.

Higher ratios mean the changed buildings really changed while the rest stayed; 1.0 would mean no change-specific
edit at all. Reference (an earlier model of this project after ~3,250 steps): 3.1-3.5, 3.4-3.9, 0.91-0.94.

## Samples
`{target.stem}_samples.png`: held-out crops; columns pre image | pre mask | post mask (red removed, green created)
| synthesized post image; rows: removal, creation, both, removal, creation, both.

## Speed
`bench/bench_generator.py` (forward pass of a 512² tile on one thread, process CPU time on the shared 2-core
machine, 2026-11-24, two runs): 32.8 GFLOP; fp32 0.69-0.91 s (36-48 GFLOP/s against a measured float32 matmul
peak of 83-88 GFLOP/s); channels-last 0.67-0.73 s; bf16 autocast + channels-last 0.46-0.51 s (64-71 GFLOP/s;
largest difference to fp32 with these weights 0.06 on the [-1, 1] scale). Peak memory ~0.8 GB.
`load_generator` returns a channels-last model.

## Limitations
- Pre-event buildings are regenerated from the mask by design (the paper's masking): unchanged buildings keep
  their footprint but not their roof colour.
- Small, slow training: expect blur and washed-out colour at a few thousand steps; sharper roofs need tens of
  thousands. Trained on ~0.5 m US suburban scenes; other sensors and regions drift toward that look.

## Continue training
```
{command}
```
then re-export (weights, samples and this card): `.venv/bin/python -m core train-generator --out {args["out"]} --export`
"""
