"""`python -m core evaluate --pairs DIR`: zero-shot change detection scores on real labelled pairs.

Pixel precision, recall, F1 and IoU pooled over all pairs of a folder, for the detector and, on the same pairs,
the classical unsupervised references (CVA + Otsu, PCA-KMeans) and "everything changed" (the score of a detector
that learned nothing but to fire everywhere). Two folder layouts:
- `A/`, `B/`, `label/` with the same file names (label 0 = no change, > 0 = change), e.g. LEVIR-CD, DSIFN;
- xBD: `images/*_post_disaster.png` + `masks/` (damage classes; ≥ 2 = damaged = change) with the pre-disaster
  images found in a `buildings/*/images/` folder (`--pre-dir`, default `<DIR>/../../buildings`).
"""

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import write_text_atomic
from .classical import cva_otsu, pca_kmeans
from .errors import Canceled, InputError
from .paths import DEFAULT_DETECTOR

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
XBD_DAMAGED_FROM = 2


@dataclass
class Scores:
    method: str
    precision: float
    recall: float
    f1: float
    iou: float
    tp: int
    fp: int
    fn: int
    pixels: int

    @classmethod
    def from_counts(cls, method: str, tp: int, fp: int, fn: int, pixels: int) -> "Scores":
        return cls(
            method=method,
            precision=tp / max(tp + fp, 1),
            recall=tp / max(tp + fn, 1),
            f1=2 * tp / max(2 * tp + fp + fn, 1),
            iou=tp / max(tp + fp + fn, 1),
            tp=tp,
            fp=fp,
            fn=fn,
            pixels=pixels,
        )


@dataclass
class LabelledPair:
    name: str
    t1: np.ndarray  # (H, W, 3) uint8
    t2: np.ndarray
    change: np.ndarray  # (H, W) bool


def _read_rgb(path: Path) -> np.ndarray:
    image = np.asarray(Image.open(path))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        raise InputError(f"{path} is {image.dtype}; evaluation pairs must be 8-bit images.")
    return image[..., :3]


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {path.stem: path for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES}


def _ab_label_pairs(root: Path) -> Iterator[LabelledPair]:
    first, second, labels = (_images_by_stem(root / sub) for sub in ("A", "B", "label"))
    names = sorted(set(first) & set(second) & set(labels))
    if not names:
        raise InputError(f"{root} has no pairs: A/, B/ and label/ need images with the same names.")
    for name in names:
        t1, t2 = _read_rgb(first[name]), _read_rgb(second[name])
        label = np.asarray(Image.open(labels[name]))
        if label.ndim == 3:
            label = label[..., 0]
        if t1.shape != t2.shape or t1.shape[:2] != label.shape:
            raise InputError(
                f"Pair {name} in {root}: A, B and label differ in size ({t1.shape}, {t2.shape}, {label.shape})."
            )
        yield LabelledPair(name, t1, t2, label > 0)


def _xbd_pairs(root: Path, pre_dir: Path | None) -> Iterator[LabelledPair]:
    pre_dir = pre_dir or root.parent.parent / "buildings"
    pre_images = {path.name: path for path in pre_dir.glob("*/images/*_pre_disaster.png")}
    posts = sorted((root / "images").glob("*_post_disaster.png"))
    for post in posts:
        pre_name = post.name.replace("_post_disaster", "_pre_disaster")
        if pre_name not in pre_images:
            raise InputError(f"No pre-disaster image {pre_name} under {pre_dir}/*/images: pass --pre-dir.")
        damage = np.asarray(Image.open(root / "masks" / post.name))
        yield LabelledPair(
            post.stem, _read_rgb(pre_images[pre_name]), _read_rgb(post), damage >= XBD_DAMAGED_FROM
        )


def labelled_pairs(
    root: str | os.PathLike, pre_dir: str | os.PathLike | None = None
) -> Iterator[LabelledPair]:
    root = Path(root)
    if (root / "A").is_dir() and (root / "B").is_dir() and (root / "label").is_dir():
        return _ab_label_pairs(root)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return _xbd_pairs(root, Path(pre_dir) if pre_dir else None)
    raise InputError(
        f"{root} is not a pair folder: expected A/, B/ and label/ sub-folders (or xBD images/ + masks/)."
    )


def _counts(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    predicted = predicted.astype(bool)
    return np.array(
        [np.sum(predicted & truth), np.sum(predicted & ~truth), np.sum(~predicted & truth), truth.size],
        np.int64,
    )


def evaluate_pairs(
    root: str | os.PathLike,
    model: str | None = DEFAULT_DETECTOR,
    threshold: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    classical: bool = True,
    pre_dir: str | os.PathLike | None = None,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> dict:
    """Pooled scores per method and the list of evaluated pairs."""
    detector = None
    if model:
        from .changestar import load_detector
        from .detect import _use_bf16, predict_array
        from .device import pick_device

        torch_device = pick_device(device)
        loaded = load_detector(model, torch_device)
        detector = loaded.model
        threshold = loaded.threshold if threshold is None else threshold
        bf16 = _use_bf16(precision, torch_device)
    totals: dict[str, np.ndarray] = {}
    names = []
    started = time.time()
    pairs = list(labelled_pairs(root, pre_dir))
    for index, pair in enumerate(pairs):
        if is_canceled is not None and is_canceled():
            raise Canceled("evaluation canceled")
        predictions = {}
        if detector is not None:
            probability = predict_array(detector, pair.t1, pair.t2, torch_device, bf16)
            predictions[f"ChangeStar ({Path(str(model)).stem})"] = probability >= threshold
        if classical:
            predictions["CVA + Otsu"] = cva_otsu(pair.t1, pair.t2)
            predictions["PCA-KMeans"] = pca_kmeans(pair.t1, pair.t2)
        predictions["everything changed"] = np.ones_like(pair.change)
        for method, predicted in predictions.items():
            totals[method] = totals.get(method, 0) + _counts(predicted, pair.change)
        names.append(pair.name)
        if progress is not None:
            progress(100.0 * (index + 1) / len(pairs))
    scores = [Scores.from_counts(method, *map(int, counts)) for method, counts in totals.items()]
    return {
        "pairs_folder": str(root),
        "pairs": names,
        "threshold": threshold,
        "change_prevalence": totals["everything changed"][0] / max(totals["everything changed"][3], 1),
        "seconds": round(time.time() - started, 1),
        "scores": [asdict(score) for score in scores],
    }


def format_table(report: dict) -> str:
    lines = [
        f"{report['pairs_folder']}: {len(report['pairs'])} pairs, change prevalence "
        f"{100 * report['change_prevalence']:.1f}%"
        + (f", detector threshold {report['threshold']:.2f}" if report["threshold"] is not None else ""),
        f"{'method':<36} {'P':>6} {'R':>6} {'F1':>6} {'IoU':>6}",
    ]
    for score in report["scores"]:
        lines.append(
            f"{score['method']:<36} {100 * score['precision']:6.1f} {100 * score['recall']:6.1f} "
            f"{100 * score['f1']:6.1f} {100 * score['iou']:6.1f}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", required=True, action="append", type=Path, help="pair folder (repeatable)")
    parser.add_argument("--model", default=DEFAULT_DETECTOR, help="shipped name or .safetensors/.pth path")
    parser.add_argument("--no-model", action="store_true", help="only the classical references")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: the model's)")
    parser.add_argument(
        "--pre-dir", type=Path, help="xBD layout: folder holding <set>/images/*_pre_disaster.png"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--no-classical", action="store_true", help="skip CVA + Otsu and PCA-KMeans")
    parser.add_argument("--json", type=Path, help="also write the scores as JSON")


def run(args) -> int:
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
