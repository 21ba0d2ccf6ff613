"""`python -m core train-autoencoder`: the latent autoencoder of the diffusion generators (resumable)."""

import argparse
from pathlib import Path

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
from ..training.diffusion.checkpoints import (
    add_device_arguments,
    load_checkpoint,
    run_training,
    training_device,
)
from ..training.run_loop import add_run_arguments


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
    add_run_arguments(parser, steps=1_000_000, log_every=20)
    add_device_arguments(parser)
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
    device = training_device(args)
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

    def evaluate_codec() -> dict:
        codec = LatentCodec(trainer.vae.eval(), AUTOENCODER_PRESETS[args.preset])
        scores = evaluate(codec, eval_crops, device)
        trainer.vae.train()
        return scores

    def train_step() -> dict[str, float]:
        (pixels,) = random_crops(train, trainer.rng, args.batch, args.crop)
        return trainer.train_step(to_signed(pixels, device))

    return run_training(
        args,
        trainer,
        train_step,
        evaluate_codec,
        lambda scores: f"step {trainer.step}: held-out PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}",
    )
