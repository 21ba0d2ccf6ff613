"""`python -m core train-autoencoder`: the latent autoencoder of the diffusion generators (resumable)."""

import argparse
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
from ..training.run_loop import Cadence, append_jsonl, run_loop


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
    mark = time.time()

    def checkpoint() -> None:
        nonlocal mark
        trainer.elapsed += time.time() - mark
        mark = time.time()
        save_checkpoint(args.run_dir, trainer.state())
        codec = LatentCodec(trainer.vae.eval(), AUTOENCODER_PRESETS[args.preset])
        scores = evaluate(codec, eval_crops, device)
        trainer.vae.train()
        append_jsonl(
            args.run_dir / "eval.jsonl", {"step": trainer.step, "hours": trainer.elapsed / 3600, **scores}
        )
        print(
            f"step {trainer.step}: held-out PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}",
            flush=True,
        )

    def train_step() -> dict[str, float]:
        (pixels,) = random_crops(train, trainer.rng, args.batch, args.crop)
        return trainer.train_step(to_signed(pixels, device))

    def log(row: dict) -> None:
        append_jsonl(args.run_dir / "log.jsonl", row)

    if run_loop(train_step, lambda: trainer.step, Cadence.from_args(args), checkpoint, log):
        print("stopped: checkpoint saved; the same command resumes")
    return 0
