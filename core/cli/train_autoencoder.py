"""`python -m core train-autoencoder`: the latent autoencoder of the diffusion generators (resumable)."""

import argparse
import json
import signal
import time
from pathlib import Path

import torch

from ..synthesis.diffusion.autoencoder import AUTOENCODER_PRESETS, LatentCodec, to_signed
from ..training.diffusion.autoencoder import (
    EVAL_CROPS,
    Trainer,
    evaluate,
    evaluation_crops,
    export_autoencoder,
    load_training_images,
    random_crops,
)
from ..training.diffusion.checkpoints import load_checkpoint, save_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, type=Path, help="checkpoint.pt, log.jsonl, eval.jsonl")
    parser.add_argument("--preset", default="cpu", choices=sorted(AUTOENCODER_PRESETS))
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--perceptual-weight", type=float, default=0.1)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--adv-weight", type=float, default=0.05)
    parser.add_argument("--adv-start", type=int, default=2000, help="step at which the patch GAN term starts")
    parser.add_argument(
        "--freeze-encoder", action="store_true", help="train the decoder only (keeps the latent space)"
    )
    parser.add_argument("--steps", type=int, default=1_000_000, help="stop after this many steps in total")
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes (0 = none)")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument(
        "--eval-crops", type=int, default=EVAL_CROPS, help="held-out 256² crops scored per checkpoint"
    )
    parser.add_argument(
        "--export", type=Path, help="write the run's autoencoder to this .safetensors and exit"
    )
    parser.add_argument("--card", action="store_true", help="with --export: PSNR/SSIM, grid and model card")
    parser.add_argument(
        "--latent-space",
        type=Path,
        help="with --export: reuse the latent normalisation of this earlier export (same frozen encoder)",
    )


def run(args) -> int:
    from ..device import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    if args.export:
        codec, provenance = export_autoencoder(
            args.run_dir, args.export, device, args.crop, args.latent_space
        )
        print(f"wrote {args.export} (step {provenance['step']})")
        if args.card:
            from ..training.diffusion.cards import write_autoencoder_card

            write_autoencoder_card(args, codec, provenance, device)
        return 0
    train, held_out = load_training_images()
    eval_crops = evaluation_crops(held_out, count=args.eval_crops)
    trainer = Trainer(args, device)
    state = load_checkpoint(args.run_dir)
    if state is not None:
        trainer.load(state)
        print(f"resumed at step {trainer.step}")
    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started, last_checkpoint = time.time(), time.time()
    log_path = args.run_dir / "log.jsonl"

    def checkpoint() -> None:
        trainer.elapsed += time.time() - checkpoint.mark
        checkpoint.mark = time.time()
        save_checkpoint(args.run_dir, trainer.state())
        codec = LatentCodec(trainer.vae.eval(), AUTOENCODER_PRESETS[args.preset])
        scores = evaluate(codec, eval_crops, device)
        trainer.vae.train()
        with open(args.run_dir / "eval.jsonl", "a") as handle:
            handle.write(json.dumps({"step": trainer.step, "hours": trainer.elapsed / 3600, **scores}) + "\n")
        print(
            f"step {trainer.step}: held-out PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}",
            flush=True,
        )

    checkpoint.mark = time.time()
    sums: dict[str, float] = {}
    while trainer.step < args.steps and not stop["requested"]:
        if args.minutes and time.time() - started > args.minutes * 60:
            break
        (pixels,) = random_crops(train, trainer.rng, args.batch, args.crop)
        images = to_signed(pixels, device)
        for key, value in trainer.train_step(images).items():
            sums[key] = sums.get(key, 0.0) + value
        if trainer.step % args.log_every == 0:
            row = {"step": trainer.step, **{k: round(v / args.log_every, 5) for k, v in sums.items()}}
            with open(log_path, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            sums = {}
        if time.time() - last_checkpoint > args.checkpoint_minutes * 60:
            checkpoint()
            last_checkpoint = time.time()
    checkpoint()
    if stop["requested"]:
        print("stopped: checkpoint saved; the same command resumes")
    return 0
