"""`python -m core train-denoiser`: Changen2's RS-DiT in a frozen autoencoder's latent space (resumable)."""

import argparse
import json
import signal
import time
from pathlib import Path

import numpy as np
import torch

from ..synthesis.diffusion.rsdit import PRESETS
from ..training.diffusion.autoencoder import random_crops
from ..training.diffusion.checkpoints import load_checkpoint, save_checkpoint
from ..training.diffusion.denoiser import (
    LABELLED_FIELDS,
    DenoiserTrainer,
    export_denoiser,
    load_labelled_images,
)


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
    parser.add_argument("--steps", type=int, default=10_000_000, help="stop after this many steps in total")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes (0 = none)")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument(
        "--init", type=Path, help="new runs: start from exported denoiser weights (.safetensors of --export)"
    )
    parser.add_argument(
        "--export", type=Path, help="write the run's EMA denoiser to this .safetensors and exit"
    )
    parser.add_argument("--card", action="store_true", help="with --export: sample grid and model card")


def run(args) -> int:
    from ..device import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
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
    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = last_checkpoint = mark = time.time()

    def checkpoint() -> None:
        nonlocal mark
        trainer.elapsed += time.time() - mark
        mark = time.time()
        save_checkpoint(args.run_dir, trainer.state())
        scores = trainer.held_out_losses(eval_pixels, eval_classes)
        with open(args.run_dir / "eval.jsonl", "a") as handle:
            handle.write(json.dumps({"step": trainer.step, "hours": trainer.elapsed / 3600, **scores}) + "\n")
        print(f"step {trainer.step}: held-out {scores}", flush=True)

    sums: dict[str, float] = {}
    last_log = time.time()
    while trainer.step < args.steps and not stop["requested"]:
        if args.minutes and time.time() - started > args.minutes * 60:
            break
        pixels, classes = random_crops(train, trainer.rng, args.batch, args.crop, LABELLED_FIELDS)
        for key, value in trainer.train_step(pixels, classes).items():
            sums[key] = sums.get(key, 0.0) + value
        if trainer.step % args.log_every == 0:
            seconds = (time.time() - last_log) / args.log_every
            last_log = time.time()
            row = {"step": trainer.step, "s_per_step": round(seconds, 3)}
            row.update({k: round(v / args.log_every, 5) for k, v in sums.items()})
            with open(args.run_dir / "log.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")
            sums = {}
        if time.time() - last_checkpoint > args.checkpoint_minutes * 60:
            checkpoint()
            last_checkpoint = time.time()
    checkpoint()
    if stop["requested"]:
        print("stopped: checkpoint saved; the same command resumes")
    return 0
