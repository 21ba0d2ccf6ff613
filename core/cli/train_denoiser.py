"""`python -m core train-denoiser`: Changen2's RS-DiT in a frozen autoencoder's latent space (resumable)."""

import argparse
from pathlib import Path

import numpy as np

from ..synthesis.diffusion.rsdit import PRESETS
from ..training.diffusion.autoencoder import random_crops
from ..training.diffusion.checkpoints import (
    add_device_arguments,
    load_checkpoint,
    run_training,
    training_device,
)
from ..training.diffusion.denoiser import (
    LABELLED_FIELDS,
    DenoiserTrainer,
    export_denoiser,
    load_labelled_images,
)
from ..training.run_loop import add_run_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, type=Path, help="checkpoint.pt, log.jsonl, eval.jsonl")
    parser.add_argument(
        "--autoencoder",
        required=True,
        type=Path,
        help="the frozen autoencoder (.safetensors) of the latent space",
    )
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay of the exported weights")
    add_run_arguments(parser, steps=10_000_000, log_every=20)
    add_device_arguments(parser)
    parser.add_argument(
        "--init", type=Path, help="new runs: start from exported denoiser weights (.safetensors of --export)"
    )
    parser.add_argument(
        "--export", type=Path, help="write the run's EMA denoiser to this .safetensors and exit"
    )
    parser.add_argument("--card", action="store_true", help="with --export: sample grid and model card")


def run(args) -> int:
    device = training_device(args)
    if args.export:
        config = export_denoiser(args.run_dir, args.export, args.autoencoder)
        print(f"wrote {args.export} (step {config['step']})")
        if args.card:
            from ..training.diffusion.cards import write_denoiser_card

            write_denoiser_card(args, config, device)
        return 0
    args.run_dir.mkdir(parents=True, exist_ok=True)
    train, held_out = load_labelled_images()
    eval_pixels, eval_classes = random_crops(
        held_out, np.random.default_rng(7), 16, args.crop, LABELLED_FIELDS
    )
    trainer = DenoiserTrainer(args, device)
    state = load_checkpoint(args.run_dir)
    if state is not None:
        trainer.load(state)
        print(f"resumed at step {trainer.step}", flush=True)
    elif args.init:
        trainer.start_from(args.init)
        print(f"started from {args.init}", flush=True)

    def train_step() -> dict[str, float]:
        return trainer.train_step(*random_crops(train, trainer.rng, args.batch, args.crop, LABELLED_FIELDS))

    def speed(steps: int, seconds: float) -> dict:
        return {"s_per_step": round(seconds / steps, 3)}

    return run_training(
        args,
        trainer,
        train_step,
        lambda: trainer.held_out_losses(eval_pixels, eval_classes),
        lambda scores: f"step {trainer.step}: held-out {scores}",
        speed,
    )
