"""`python -m core evaluate --pairs DIR`: zero-shot scores of a detector and the classical references."""

import argparse
import json
from pathlib import Path

from ..atomic import write_text_atomic
from ..detection.evaluate import evaluate_pairs, format_table
from ..paths import DEFAULT_DETECTOR
from .options import add_device_argument, add_precision_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", required=True, action="append", type=Path, help="pair folder (repeatable)")
    parser.add_argument("--model", default=DEFAULT_DETECTOR, help="shipped name or .safetensors/.pth path")
    parser.add_argument("--no-model", action="store_true", help="only the classical references")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    parser.add_argument(
        "--pre-dir", type=Path, help="xBD layout: folder holding <set>/images/*_pre_disaster.png"
    )
    add_device_argument(parser)
    add_precision_argument(parser)
    parser.add_argument("--no-classical", action="store_true", help="skip CVA + Otsu and PCA-KMeans")
    parser.add_argument("--json", type=Path, help="also write the scores as JSON")


def run(args) -> int:
    from ..guards import check_outputs

    check_outputs([*args.pairs, args.pre_dir, None if args.no_model else args.model], [args.json])
    reports = []
    for root in args.pairs:
        report = evaluate_pairs(
            root,
            model=None if args.no_model else args.model,
            threshold=args.threshold,
            device=args.device,
            precision=args.precision,
            classical=not args.no_classical,
            pre_dir=args.pre_dir,
        )
        print(format_table(report) + "\n", flush=True)
        reports.append(report)
    if args.json:
        write_text_atomic(args.json, json.dumps(reports, indent=1, default=float))
    return 0
