"""`python -m core train-generator`: bitemporal adversarial training of the Changen generator (Algorithm 1).

Each step: crops I_t, S_t from the real building tiles, S_t+1 = F(S_t) from `core.events`, fake = G(S_t+1, I_t,
S_t, z); the OASIS discriminator learns real = (I_t, S_t) and fake = (fake, S_t+1) with class-balanced
cross-entropy over N + 1 classes; G learns to make D label its output as S_t+1.

Deviation from the paper (switch: `--lowfreq-weight`, 0 = the paper's adversarial-only objective): λ · L1 between
blurred G output and blurred I_t on pixels at least 3 px away from any change. On this small CPU budget the
adversarial-only objective first learns to ignore the pre-event image (see ../shared/notes/findings.md); the
low-frequency term keeps the layout while texture stays free.

Resumable (`--resume`; checkpoints every few minutes, atomically, with optimisers, EMA and step; the data and
noise of step n come from generators seeded by (seed, rank, n), so a resumed run continues the same stream),
logs losses to `log.csv`, writes sample grids to `samples/`, and runs under `torchrun` (gloo on CPU, NCCL on CUDA).
`--export [PATH]` writes the EMA generator of the latest checkpoint as a shipped safetensors model.
"""

import argparse
import copy
import csv
import json
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from .atomic import atomic_path, write_png_atomic, write_text_atomic
from .buildings_data import (
    ChangeSample,
    building_shape_bank,
    held_out_crops,
    load_building_tiles,
    random_training_crop,
    simulate_change,
)
from .changen_gan import OasisDiscriminator, build_generator, count_parameters, resolve_config
from .device import describe_device, pick_device
from .errors import InputError
from .paths import MODELS_DIR
from .weights import load_weights, save_weights

CHECKPOINT = "checkpoint.pt"
CHANGE_MARGIN = 3  # pixels around a change excluded from the low-frequency loss
LOWFREQ_POOL = 4  # blur = 4×4 average pooling
LOG_FIELDS = [
    "step",
    "wall_s",
    "steps_per_s",
    "d_real",
    "d_fake",
    "g_adv",
    "g_lowfreq",
    "removed_ratio",
    "created_ratio",
    "layout_corr",
]
DATA_LICENCE = (
    "xBD (Harvey, Joplin) CC BY-NC-SA 4.0; IdaBD (probably Maxar Open Data, CC BY-NC) - "
    "weights are for non-commercial research use"
)


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="run folder: checkpoint, log.csv, samples/")
    parser.add_argument("--config", default="cpu", help="generator widths: 'cpu' (shipped) or 'paper'")
    parser.add_argument(
        "--steps", type=int, default=200_000, help="total steps (a resumed run continues to it)"
    )
    parser.add_argument("--batch", type=int, default=4, help="crops per step and process")
    parser.add_argument("--crop", type=int, default=128, help="training crop size (multiple of 32)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument(
        "--init-generator",
        metavar="MODEL",
        help="start a new run from a shipped/exported generator (G and its EMA; D and optimisers start fresh; "
        "step and wall time continue from the file's training record)",
    )
    parser.add_argument("--lr-g", type=float, default=1e-4)
    parser.add_argument("--lr-d", type=float, default=4e-4)
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay of the generator weights")
    parser.add_argument(
        "--lowfreq-weight",
        type=float,
        default=10.0,
        help="λ of the low-frequency loss (0 = paper's objective)",
    )
    parser.add_argument(
        "--precision", choices=["bf16", "fp32"], default="bf16", help="autocast dtype for forward passes"
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="channels-last memory format (measured 16%% less CPU per step with bf16 here)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--sample-every", type=int, default=500, help="steps between sample grids + metrics")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument(
        "--export",
        nargs="?",
        const=str(MODELS_DIR / "changen_gan_cpu.safetensors"),
        help="write the EMA generator of OUT's checkpoint to this .safetensors file and exit",
    )


# ------------------------------------------------------------------------------------------------------ losses
def class_balanced_ce(logits: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
    """OASIS real-class loss: targets 1 + class, each class weighted by the inverse of its pixel share."""
    num_classes = logits.shape[1] - 1
    counts = torch.bincount(semantic.flatten(), minlength=num_classes).float()
    present = (counts > 0).sum()
    weights = torch.where(
        counts > 0, semantic.numel() / (present * counts.clamp(min=1)), torch.zeros_like(counts)
    )
    loss = F.cross_entropy(logits.float(), semantic + 1, reduction="none")
    return (loss * weights[semantic]).mean()


def fake_ce(logits: torch.Tensor) -> torch.Tensor:
    target = torch.zeros(logits.shape[0], *logits.shape[2:], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), target)


def unchanged_low_res(change: torch.Tensor) -> torch.Tensor:
    """(B, 1, H/4, W/4): 1 where a 4×4 cell is at least CHANGE_MARGIN px from every changed pixel."""
    near_change = F.max_pool2d(change.float().unsqueeze(1), 2 * CHANGE_MARGIN + 1, 1, CHANGE_MARGIN)
    return 1 - F.max_pool2d(near_change, LOWFREQ_POOL)


def lowfreq_loss(fake: torch.Tensor, real: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    keep = unchanged_low_res(change)
    diff = (F.avg_pool2d(fake.float(), LOWFREQ_POOL) - F.avg_pool2d(real.float(), LOWFREQ_POOL)).abs()
    return (diff * keep).sum() / (keep.sum() * 3).clamp(min=1)


# -------------------------------------------------------------------------------------------------- batches
def to_tensors(samples: list[ChangeSample], device) -> dict[str, torch.Tensor]:
    images = np.stack([s.image for s in samples]).astype(np.float32) / 127.5 - 1
    return {
        "image": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
        "semantic_t": torch.from_numpy(np.stack([s.semantic_t for s in samples]).astype(np.int64)).to(device),
        "semantic_t1": torch.from_numpy(np.stack([s.semantic_t1 for s in samples]).astype(np.int64)).to(
            device
        ),
        "change": torch.from_numpy(np.stack([s.change for s in samples])).to(device),
    }


def training_batch(tiles, shape_bank, rng, batch: int, crop: int) -> list[ChangeSample]:
    samples = []
    for _ in range(batch):
        image, mask, scale = random_training_crop(tiles, rng, crop)
        samples.append(simulate_change(image, mask, rng, shape_bank, scale=scale))
    return samples


def evaluation_samples(
    tiles, shape_bank, crop: int, count: int | None = 12, seed: int = 1234
) -> list[ChangeSample]:
    """Fixed held-out examples: held-out crops with buildings (`count` of them, all when None), taking turns
    with a removal, a creation and both."""
    rng = np.random.default_rng(seed)
    crops = [c for c in held_out_crops(tiles, crop) if c[2].sum() > 0.03 * crop * crop]
    count = len(crops) if count is None else min(count, len(crops))
    picked = [crops[i] for i in rng.choice(len(crops), size=count, replace=False)]
    samples = []
    for index, (_, image, mask) in enumerate(picked):
        samples.append(
            simulate_change(image, mask, rng, shape_bank, mode=("remove", "create", "both")[index % 3])
        )
    return samples


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def synthesize(generator, samples: list[ChangeSample], seed: int, device) -> np.ndarray:
    batch = to_tensors(samples, device)
    noise = torch.Generator(device="cpu").manual_seed(seed)
    out = generator(batch["image"], batch["semantic_t"], batch["semantic_t1"], noise)
    return to_uint8(out)


def fidelity_metrics(samples: list[ChangeSample], synthesized: np.ndarray) -> dict[str, float]:
    """|post − pre| inside removed (created) buildings ÷ outside the change, and the layout correlation of
    blurred pre and post images outside the change (findings.md's three numbers)."""
    inside_removed, inside_created, outside, correlations = [], [], [], []
    for sample, post in zip(samples, synthesized, strict=True):
        difference = np.abs(post.astype(np.float32) - sample.image.astype(np.float32)).mean(axis=2)
        far = ~cv2.dilate(sample.change.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        outside.append(difference[far])
        inside_removed.append(difference[sample.removed])
        inside_created.append(difference[sample.created])
        pre_blur = cv2.blur(sample.image.astype(np.float32).mean(axis=2), (9, 9))[far]
        post_blur = cv2.blur(post.astype(np.float32).mean(axis=2), (9, 9))[far]
        if pre_blur.size > 100 and pre_blur.std() > 0 and post_blur.std() > 0:
            correlations.append(float(np.corrcoef(pre_blur, post_blur)[0, 1]))
    outside_mean = float(np.concatenate(outside).mean()) + 1e-6

    def ratio(parts):
        values = np.concatenate(parts)
        return float(values.mean() / outside_mean) if values.size else float("nan")

    return {
        "removed_ratio": ratio(inside_removed),
        "created_ratio": ratio(inside_created),
        "layout_corr": float(np.mean(correlations)) if correlations else float("nan"),
    }


def mask_to_rgb(mask: np.ndarray, change: np.ndarray | None = None) -> np.ndarray:
    """White buildings on black; changed pixels red (removed) or green (created) when `change` is given."""
    rgb = np.repeat((mask > 0)[..., None] * 255, 3, axis=2).astype(np.uint8)
    if change is not None:
        rgb[change & (mask > 0)] = (40, 200, 40)
        rgb[change & (mask == 0)] = (200, 40, 40)
    return rgb


def sample_grid(samples: list[ChangeSample], synthesized: np.ndarray, gap: int = 4) -> np.ndarray:
    """Rows: pre image | pre mask | post mask (change coloured) | post image."""
    rows = []
    for sample, post in zip(samples, synthesized, strict=True):
        cells = [
            sample.image,
            mask_to_rgb(sample.semantic_t),
            mask_to_rgb(sample.semantic_t1, sample.change),
            post,
        ]
        row = np.full((post.shape[0], 4 * post.shape[1] + 3 * gap, 3), 255, np.uint8)
        for index, cell in enumerate(cells):
            left = index * (post.shape[1] + gap)
            row[:, left : left + post.shape[1]] = cell
        rows.append(row)
    spacer = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([part for row in rows for part in (row, spacer)][:-1])


# ------------------------------------------------------------------------------------------------ training
class Trainer:
    def __init__(self, args, device, rank: int, world_size: int):
        self.args, self.device, self.rank, self.world_size = args, device, rank, world_size
        self.architecture = resolve_config(args.config)
        self.generator = build_generator(self.architecture).to(device)
        self.discriminator = OasisDiscriminator(self.architecture).to(device)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=args.lr_g, betas=(0.0, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=args.lr_d, betas=(0.0, 0.999))
        self.memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
        for module in (self.generator, self.discriminator, self.ema):
            module.to(memory_format=self.memory_format)
        self.step, self.wall_s = 0, 0.0
        self.g_train, self.d_train = self.generator, self.discriminator
        if world_size > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.generator, device_ids=ids)
            self.d_train = DistributedDataParallel(self.discriminator, device_ids=ids)
        self.autocast_dtype = torch.bfloat16 if args.precision == "bf16" else None

    def autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        )

    def state(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "wall_s": self.wall_s,
            "architecture": self.architecture,
            "args": {k: v for k, v in vars(self.args).items() if k != "export"},
            "torch_rng": torch.get_rng_state(),
        }

    def load(self, state: dict) -> None:
        if state["architecture"] != self.architecture:
            raise InputError(
                f"The checkpoint was trained with architecture {state['architecture']}, not {self.architecture}: "
                "pass the same --config or a new --out."
            )
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.wall_s = state["step"], state["wall_s"]
        torch.set_rng_state(state["torch_rng"])

    def init_generator(self, model: str) -> None:
        """Warm start: G and EMA from an exported generator; the discriminator re-learns quickly."""
        state_dict, config = load_weights(model)
        if config.get("model") != "changen_generator" or config["architecture"] != self.architecture:
            raise InputError(
                f"'{model}' is not a Changen generator with architecture {self.architecture}: "
                "pick a model exported with the same --config."
            )
        self.generator.load_state_dict(state_dict)
        self.ema.load_state_dict(state_dict)
        self.step = config["training"]["steps"]
        self.wall_s = config["training"]["wall_hours"] * 3600

    def train_step(self, batch: dict, noise: torch.Tensor) -> dict[str, float]:
        real = batch["image"].contiguous(memory_format=self.memory_format)
        semantic_t, semantic_t1 = batch["semantic_t"], batch["semantic_t1"]
        with self.autocast():
            fake = self.g_train(real, semantic_t, semantic_t1, noise)

        # Discriminator: real = (I_t, S_t), fake = (G, S_t+1 → "fake" class).
        with self.autocast():
            logits = self.d_train(torch.cat([real, fake.detach()]))
        d_real = class_balanced_ce(logits[: len(real)], semantic_t)
        d_fake = fake_ce(logits[len(real) :])
        self.opt_d.zero_grad(set_to_none=True)
        (d_real + d_fake).backward()
        self.opt_d.step()

        # Generator: D should read the fake as S_t+1 (plain module: no DDP gradient sync for D here).
        self.discriminator.requires_grad_(False)
        with self.autocast():
            fake_logits = self.discriminator(fake)
        self.discriminator.requires_grad_(True)
        g_adv = class_balanced_ce(fake_logits, semantic_t1)
        g_lowfreq = lowfreq_loss(fake, real, batch["change"])
        self.opt_g.zero_grad(set_to_none=True)
        (g_adv + self.args.lowfreq_weight * g_lowfreq).backward()
        self.opt_g.step()
        self.update_ema()
        self.step += 1
        return {
            "d_real": d_real.item(),
            "d_fake": d_fake.item(),
            "g_adv": g_adv.item(),
            "g_lowfreq": g_lowfreq.item(),
        }

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = min(self.args.ema, (1 + self.step) / (10 + self.step))  # short warm-up
        for ema_p, p in zip(self.ema.parameters(), self.generator.parameters(), strict=True):
            ema_p.lerp_(p, 1 - decay)
        for ema_b, b in zip(self.ema.buffers(), self.generator.buffers(), strict=True):
            ema_b.copy_(b)


def save_checkpoint(out: Path, state: dict) -> None:
    with atomic_path(out / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def load_checkpoint(out: Path) -> dict:
    path = out / CHECKPOINT
    if not path.is_file():
        raise InputError(f"No checkpoint at {path}: train first (without --resume) or point --out at a run.")
    return torch.load(path, map_location="cpu", weights_only=False)


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
    tiles = load_building_tiles()
    samples = evaluation_samples(tiles, building_shape_bank(tiles), 128, count=None)
    synthesized = np.concatenate(
        [synthesize(generator, samples[i : i + 8], i, torch.device("cpu")) for i in range(0, len(samples), 8)]
    )
    metrics = fidelity_metrics(samples, synthesized)
    second_draw = np.concatenate(
        [
            synthesize(generator, samples[i : i + 8], 10_000 + i, torch.device("cpu"))
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
`core.changen_gan.load_generator("{target.stem}")`; images in [-1, 1], masks 0 = background, 1 = building,
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
  (`--lowfreq-weight`, 0 restores the paper). Without it a CPU-budget run learned to ignore the pre-event image
  (see `../shared/notes/findings.md`).

## Fidelity on held-out crops
{evaluated} held-out 128² crops with buildings (each with a removal, a creation or both), one noise draw each:

| mean abs(post − pre) inside removed ÷ outside the change | inside created ÷ outside | layout correlation outside the change (blurred pre vs post) |
|---|---|---|
| {metrics["removed_ratio"]:.2f} | {metrics["created_ratio"]:.2f} | {metrics["layout_corr"]:.3f} |

Noise diversity (mean abs difference between two noise draws, 0-255 scale): {metrics["noise_diversity_change"]:.1f}
inside the change, {metrics["noise_diversity_outside"]:.1f} outside.

Higher ratios mean the changed buildings really changed while the rest stayed; 1.0 would mean no change-specific
edit at all. Reference (findings.md, a similar model after ~3,250 steps): 3.1-3.5, 3.4-3.9, 0.91-0.94.

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


def distributed_setup(choice: str) -> tuple[torch.device, int, int]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return pick_device(choice), 0, 1
    device = pick_device(choice)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank(), world_size


def run(args) -> int:
    out = Path(args.out)
    if args.export:
        config = export_generator(out, Path(args.export))
        print(f"exported EMA generator at step {config['training']['steps']} to {args.export}")
        return 0
    if args.crop % 32 or args.crop < 64:
        raise InputError(f"--crop must be a multiple of 32 and at least 64, got {args.crop}.")
    torch.set_num_threads(args.threads)
    device, rank, world_size = distributed_setup(args.device)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(args, device, rank, world_size)
    if args.resume and (out / CHECKPOINT).is_file():
        trainer.load(load_checkpoint(out))
    elif (out / CHECKPOINT).is_file():
        raise InputError(
            f"{out} already holds a checkpoint: add --resume to continue it, or choose a new --out."
        )
    elif args.init_generator:
        trainer.init_generator(args.init_generator)

    tiles = load_building_tiles()
    shape_bank = building_shape_bank(tiles)
    eval_samples = evaluation_samples(tiles, shape_bank, args.crop)
    if rank == 0:
        (out / "samples").mkdir(exist_ok=True)
        print(
            f"train-generator: {describe_device(device)}, {world_size} process(es), step {trainer.step} → "
            f"{args.steps}; G {count_parameters(trainer.generator) / 1e6:.2f} M, "
            f"D {count_parameters(trainer.discriminator) / 1e6:.2f} M; {len(tiles)} tiles, "
            f"{len(shape_bank)} building shapes",
            flush=True,
        )

    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    log_path = out / "log.csv"
    new_log = not log_path.exists()
    log_file = open(log_path, "a", newline="") if rank == 0 else None  # noqa: SIM115 (open for the whole run)
    writer = csv.DictWriter(log_file, LOG_FIELDS) if log_file else None
    if writer and new_log:
        writer.writeheader()
    running = {}
    last_checkpoint = last_log = time.monotonic()
    steps_at_last_log = trainer.step
    try:
        while trainer.step < args.steps and not stop["requested"]:
            step_start = time.monotonic()
            rng = np.random.default_rng([args.seed, rank, trainer.step])
            noise_generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            batch = to_tensors(training_batch(tiles, shape_bank, rng, args.batch, args.crop), device)
            noise = trainer.generator.sample_noise(args.batch, args.crop, args.crop, noise_generator)
            losses = trainer.train_step(batch, noise)
            trainer.wall_s += time.monotonic() - step_start
            for key, value in losses.items():
                running[key] = running.get(key, 0.0) + value
            if rank != 0:
                continue
            row = None
            if trainer.step % args.log_every == 0:
                now = time.monotonic()
                count = trainer.step - steps_at_last_log
                row = {key: round(value / max(count, 1), 5) for key, value in running.items()}
                row.update(step=trainer.step, wall_s=round(trainer.wall_s, 1))
                row["steps_per_s"] = round(count / (now - last_log), 3)
                running, last_log, steps_at_last_log = {}, now, trainer.step
            if trainer.step % args.sample_every == 0 or trainer.step == args.steps:
                sample_start = time.monotonic()
                synthesized = synthesize(trainer.ema, eval_samples, args.seed, device)
                metrics = fidelity_metrics(eval_samples, synthesized)
                grid = sample_grid(eval_samples, synthesized)
                write_png_atomic(out / "samples" / f"step_{trainer.step:07d}.png", grid)
                write_png_atomic(out / "samples" / "latest.png", grid)
                row = row or {"step": trainer.step, "wall_s": round(trainer.wall_s, 1)}
                row.update({key: round(value, 4) for key, value in metrics.items()})
                trainer.wall_s += time.monotonic() - sample_start
            if row:
                writer.writerow(row)
                log_file.flush()
                print(json.dumps(row), flush=True)
            if time.monotonic() - last_checkpoint > 60 * args.checkpoint_minutes:
                save_checkpoint(out, trainer.state())
                last_checkpoint = time.monotonic()
        if rank == 0:
            save_checkpoint(out, trainer.state())
            print(f"checkpoint at step {trainer.step} in {out / CHECKPOINT}", flush=True)
    finally:
        if log_file:
            log_file.close()
        if world_size > 1:
            dist.destroy_process_group()
    return 0
