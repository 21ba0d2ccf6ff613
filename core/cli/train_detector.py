"""`python -m core train-detector`: train, resume or export (with its model card) a ChangeStar run."""

import argparse
import json
from pathlib import Path

from ..detection.changestar import ENCODERS
from ..training.detector.card import write_model_card
from ..training.detector.export import export_run, write_sample_grid, zero_shot_reports
from ..training.detector.loop import train
from ..training.run_loop import add_run_arguments
from .options import add_device_argument, add_precision_argument


# ------------------------------------------------------------------------------------------------ training
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir", required=True, type=Path, help="run folder: checkpoints, log.jsonl, validation"
    )
    parser.add_argument(
        "--pairs", action="append", type=Path, default=[], help="generated pair folder (repeatable)"
    )
    parser.add_argument(
        "--star", type=Path, help="building tiles root for STAR pairs (default: shared buildings/)"
    )
    parser.add_argument("--no-star", action="store_true", help="train only on --pairs")
    parser.add_argument(
        "--star-fraction", type=float, default=0.3, help="share of STAR pairs when --pairs is given"
    )
    parser.add_argument(
        "--no-change-fraction", type=float, default=0.1, help="share of restyled no-change pairs"
    )
    parser.add_argument(
        "--local-star",
        type=float,
        default=0.0,
        help="share of STAR pairs that change only inside one soft region (new neighbourhood beside an old one)",
    )
    parser.add_argument(
        "--balance-sources",
        action="store_true",
        help="draw STAR tiles from every building source equally often (default: every tile equally often)",
    )
    parser.add_argument("--encoder", default="efficientnet_lite0", choices=ENCODERS)
    parser.add_argument("--fpn-channels", type=int, default=256)
    parser.add_argument("--no-imagenet", action="store_true", help="start the encoder from random weights")
    parser.add_argument(
        "--freeze-stride", type=int, default=8, help="freeze encoder stages up to this stride (0 = train all)"
    )
    parser.add_argument(
        "--init",
        type=Path,
        help="new runs: a ChangeStar checkpoint (.pth or our .safetensors), or torchvision ResNet-18 ImageNet weights",
    )
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4, help="pairs per step and process")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--cosine", action="store_true", help="decay the learning rate to zero at --steps (default: constant)"
    )
    add_run_arguments(parser, steps=1_000_000, log_every=10)
    parser.add_argument(
        "--val-pairs", type=int, default=48, help="held-out synthetic pairs for the threshold"
    )
    add_precision_argument(parser)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per process (0 = torch default)"
    )
    add_device_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--export",
        type=Path,
        help="write the run's best (or --which latest) model to this .safetensors and exit",
    )
    parser.add_argument("--which", default="best", choices=["best", "latest"])
    parser.add_argument(
        "--card", action="store_true", help="with --export: zero-shot evaluation + model card"
    )
    parser.add_argument(
        "--reference-json",
        type=Path,
        help="with --card: `evaluate --json` of the untrained model (reused rows)",
    )
    parser.add_argument(
        "--comparison",
        type=Path,
        help="with --card: the table of scripts/zero_shot_comparison.py (OUT/comparison.md) to include",
    )


def run(args) -> int:
    if args.export:
        from ..guards import check_outputs

        check_outputs(list(Path(args.run_dir).glob("*.pt")), [args.export])
        config = export_run(args.run_dir, args.export, args.which)
        summary = {
            k: v for k, v in config.items() if k not in ("synthetic_validation", "train_args", "sources")
        }
        print(json.dumps(summary, indent=1))
        print(f"wrote {args.export}")
        if args.card:
            from ..detection.evaluate import format_table

            reports = zero_shot_reports(args.export, args.reference_json)
            for report in reports:
                print(format_table(report) + "\n")
            card = args.export.with_suffix(".md")
            write_sample_grid(args.export, args.export.with_name(f"{args.export.stem}_samples.png"))
            comparison = args.comparison.read_text() if args.comparison else None
            write_model_card(card, args.export.stem, config, reports, comparison)
            print(f"wrote {card}")
        return 0
    return train(args)
