"""The paper's zero-shot comparison at our scale: one detector recipe pre-trained on pairs from each synthesis
method, scored on the real LEVIR-CD, DSIFN and xBD dev pairs in ../shared/data (never used for training or for
the threshold). Only the pair source differs: same events, realism tricks, pair count, steps, seed and threshold
rule (best F1 on each run's own held-out synthetic pairs).

    .venv/bin/python scripts/zero_shot_comparison.py --out runs/cmp [--pairs 800] [--steps 300]

Every stage resumes (pair folders, detector checkpoints, exported models, scores), so the script can be stopped and
run again. Writes OUT/comparison.json and OUT/comparison.md.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.atomic import write_text_atomic  # noqa: E402
from core.data.recipes import DATASET_METHODS  # noqa: E402
from core.detection.changestar import build_changestar  # noqa: E402
from core.detection.evaluate import ZERO_SHOT_SETS, evaluate_pairs  # noqa: E402
from core.paths import shared_data_dir  # noqa: E402
from core.weights import save_weights  # noqa: E402

BUILDING_SETS = ("xbd_harvey", "idabd", "xbd_joplin")


def core_command(*arguments: str, threads: int) -> None:
    environment = {"OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "core", *arguments]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, **environment})


def pretrained_model(args, method: str) -> Path:
    """Generate the method's pairs, train the detector on them, export its final checkpoint."""
    model = args.out / f"changestar_{method}.safetensors"
    if model.is_file():
        return model
    pairs = args.out / f"pairs_{method}"
    sources = [f"--source={shared_data_dir() / 'buildings' / name}" for name in BUILDING_SETS]
    core_command(
        "generate-dataset", *sources, f"--method={method}", f"--pairs={args.pairs}", "--crop=256",
        "--star=0", f"--seed={args.seed}", f"--out={pairs}", threads=args.threads,
    )  # fmt: skip
    run = args.out / f"detector_{method}"
    core_command(
        "train-detector", f"--run-dir={run}", f"--pairs={pairs}", "--star-fraction=0",
        "--no-change-fraction=0.1", f"--steps={args.steps}", f"--threads={args.threads}",
        f"--seed={args.seed}", threads=args.threads,
    )  # fmt: skip
    core_command(
        "train-detector", f"--run-dir={run}", f"--export={model}", "--which=latest", threads=args.threads
    )
    return model


def untrained_model(args) -> Path:
    """The 'none' row: the ImageNet encoder with a randomly initialised change head, threshold 0.5."""
    model = args.out / "changestar_none.safetensors"
    if not model.is_file():
        detector = build_changestar("efficientnet_lite0", imagenet=True)
        config = {**detector.config.__dict__, "architecture": "changestar_1x96", "threshold": 0.5, "steps": 0}
        save_weights(model, detector.state_dict(), config)
    return model


def scores(args, name: str, model: Path | None) -> dict:
    """F1/P/R/IoU per real set (cached in OUT/scores_<name>.json); model None = classical references."""
    cache = args.out / f"scores_{name}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    result = {}
    for title, folder in ZERO_SHOT_SETS:
        report = evaluate_pairs(
            shared_data_dir() / "change" / folder,
            model=str(model) if model else None,
            classical=model is None,
        )
        result[title] = {score["method"]: score for score in report["scores"]}
        result[title]["threshold"] = report["threshold"]
    write_text_atomic(cache, json.dumps(result, indent=1, default=float))
    return result


def table(rows: dict[str, dict]) -> str:
    titles = [title for title, _ in ZERO_SHOT_SETS]
    lines = [
        "| pre-trained on | " + " | ".join(f"{title} F1 (P / R)" for title in titles) + " |",
        "|---|" + "---|" * len(titles),
    ]
    for label, (result, method) in rows.items():
        cells = []
        for title in titles:
            score = result[title][method]
            cells.append(
                f"{100 * score['f1']:.1f} ({100 * score['precision']:.0f} / {100 * score['recall']:.0f})"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=800, help="pairs generated per method")
    parser.add_argument("--steps", type=int, default=300, help="detector steps per method (batch 4)")
    parser.add_argument("--methods", nargs="+", choices=DATASET_METHODS, default=list(DATASET_METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    rows = {}
    for method in args.methods:
        model = pretrained_model(args, method)
        rows[f"{method} pairs"] = (scores(args, method, model), f"ChangeStar ({model.stem})")
    none = untrained_model(args)
    rows["none (ImageNet encoder only)"] = (scores(args, "none", none), f"ChangeStar ({none.stem})")
    classical = scores(args, "classical", None)
    for method in ("CVA + Otsu", "PCA-KMeans", "everything changed"):
        rows[f"no training: {method}"] = (classical, method)

    markdown = table(rows)
    write_text_atomic(args.out / "comparison.md", markdown + "\n")
    write_text_atomic(
        args.out / "comparison.json",
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": list(rows)}, indent=1),
    )
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
