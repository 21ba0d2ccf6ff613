"""Pixel metrics: precision, recall, F1 and IoU from pooled counts; the threshold sweep with calibration bins."""

from dataclasses import dataclass

import numpy as np


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


def _counts(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    predicted = predicted.astype(bool)
    return np.array(
        [np.sum(predicted & truth), np.sum(predicted & ~truth), np.sum(~predicted & truth), truth.size],
        np.int64,
    )


THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
RELIABILITY_BINS = 10
THRESHOLD_TOLERANCE = 0.01  # synthetic-validation F1 given up for a more conservative threshold


def threshold_sweep(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Pooled F1 at each candidate threshold; the best one and the chosen (most conservative near-best) one;
    reliability bins (mean confidence vs. frequency)."""
    labels = labels.astype(bool).ravel()
    probabilities = probabilities.ravel()
    scores = {}
    for threshold in THRESHOLDS:
        predicted = probabilities >= threshold
        scores[float(threshold)] = Scores.from_counts("", *map(int, _counts(predicted, labels))).f1
    best = max(scores, key=scores.get)
    # The F1 curve is flat near its top and its argmax wanders between checkpoints; real pairs make the detector
    # more confident than synthetic ones (over-confident outputs), so take the most conservative near-best one.
    chosen = max(t for t, f1 in scores.items() if f1 >= scores[best] - THRESHOLD_TOLERANCE)
    edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
    index = np.clip(np.digitize(probabilities, edges) - 1, 0, RELIABILITY_BINS - 1)
    counts = np.bincount(index, minlength=RELIABILITY_BINS)
    confidence = np.bincount(index, weights=probabilities, minlength=RELIABILITY_BINS)
    frequency = np.bincount(index, weights=labels, minlength=RELIABILITY_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = confidence / counts
        observed = frequency / counts
    ece = float(np.nansum(np.abs(mean_confidence - observed) * counts) / max(counts.sum(), 1))
    reliability = [
        {
            "bin": f"{edges[i]:.1f}-{edges[i + 1]:.1f}",
            "pixels": int(counts[i]),
            "mean_probability": None if counts[i] == 0 else round(float(mean_confidence[i]), 4),
            "observed_change": None if counts[i] == 0 else round(float(observed[i]), 4),
        }
        for i in range(RELIABILITY_BINS)
    ]
    return {
        "threshold": chosen,
        "f1": round(scores[best], 4),
        "f1_at_threshold": round(scores[chosen], 4),
        "best_f1_threshold": best,
        "f1_at_0.5": round(scores[0.5], 4),
        "prevalence": round(float(labels.mean()), 4),
        "ece": round(ece, 4),
        "reliability": reliability,
    }
