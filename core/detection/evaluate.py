"""Zero-shot change detection scores on real labelled pairs (`python -m core evaluate`).

Pixel precision, recall, F1 and IoU pooled over all pairs of a folder, for the detector and, on the same pairs,
the classical unsupervised references (CVA + Otsu, PCA-KMeans) and "everything changed" (the score of a detector
that learned nothing but to fire everywhere). Two folder layouts:
- `A/`, `B/`, `label/` with the same file names (label 0 = no change, > 0 = change), e.g. LEVIR-CD, DSIFN;
- xBD: `images/*_post_disaster.png` + `masks/` (damage classes; ≥ 2 = damaged = change) with the pre-disaster
  images found in a `buildings/*/images/` folder (`--pre-dir`, default `<DIR>/../../buildings`).
"""

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..data.labelled_pairs import labelled_pairs
from ..errors import Canceled
from ..paths import DEFAULT_DETECTOR
from .classical import cva_otsu, pca_kmeans
from .metrics import Scores, _counts


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
    started = time.time()
    pairs = list(labelled_pairs(root, pre_dir))  # a wrong folder is named before torch and the model load
    detector = None
    if model:
        from ..device import pick_device, use_bf16
        from .inference import predict_array
        from .loading import load_detector

        torch_device = pick_device(device)
        loaded = load_detector(model, torch_device)
        detector = loaded.model
        threshold = loaded.threshold if threshold is None else threshold
        bf16 = use_bf16(precision, torch_device)
    totals: dict[str, np.ndarray] = {}
    names = []
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


ZERO_SHOT_SETS = (
    ("LEVIR-CD (levir_dev)", "levir_dev"),
    ("DSIFN", "dsifn"),
    ("xBD damage ≥ minor", "xbd_damage"),
    ("AirChange (Hungary)", "airchange"),
)
