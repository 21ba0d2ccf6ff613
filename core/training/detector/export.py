"""Exporting a detector run: weights with their synthetic-validation threshold, zero-shot reports and the
sample grid of the model card."""

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ...atomic import atomic_path
from ...detection.evaluate import ZERO_SHOT_SETS
from ...errors import InputError
from ...paths import shared_data_dir
from ...weights import save_weights


def export_run(run: Path, out: Path, which: str = "best") -> dict:
    name = "best.pt" if which == "best" and (run / "best.pt").is_file() else "checkpoint.pt"
    path = run / name
    if not path.is_file():
        raise InputError(
            f"No checkpoint in {run}: train first with `python -m core train-detector --run {run}`."
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    validation = checkpoint.get("validation") or {}
    config = {
        **checkpoint["model_config"],
        "architecture": "changestar_1x96",
        "threshold": validation.get("threshold", 0.5),
        "steps": checkpoint["step"],
        "pairs_seen": checkpoint["pairs_seen"],
        "train_seconds": round(checkpoint["elapsed"], 1),
        "synthetic_validation": validation,
        "checkpoint": name,
        "sources": checkpoint.get("sources"),
        "train_args": checkpoint.get("args"),
    }
    save_weights(out, checkpoint["model"], config)
    return config


def zero_shot_reports(model_path: Path, reference_json: Path | None) -> list[dict]:
    """The detector on the shared real dev sets; classical references and the ImageNet-only detector come from
    `reference_json` (an `evaluate --json` file made with the untrained model) or are computed here."""
    from ...detection.evaluate import evaluate_pairs

    references = {}
    if reference_json is not None:
        for report in json.loads(Path(reference_json).read_text()):
            references[Path(report["pairs_folder"]).name] = report
    reports = []
    for title, folder in ZERO_SHOT_SETS:
        reference = references.get(folder)
        report = evaluate_pairs(
            shared_data_dir() / "change" / folder, model=str(model_path), classical=reference is None
        )
        report["title"] = title
        if reference is not None:
            for score in reference["scores"]:
                if score["method"].startswith("ChangeStar"):
                    score = {**score, "method": "ImageNet encoder, no change training"}
                if score["method"] != "everything changed":
                    report["scores"].append(score)
            report["scores"].sort(key=lambda score: score["method"] == "everything changed")
        reports.append(report)
    return reports


SAMPLE_CELL = 192  # pixels per image in the sample grid
SAMPLES_PER_SET = 2


def write_sample_grid(model_path: Path, out: Path) -> None:
    """Rows of t1 | t2 | true change | predicted change (green hit, red false alarm, blue miss) for the first pairs
    of each real dev set, at the model's threshold."""
    from ...data.labelled_pairs import labelled_pairs
    from ...detection.inference import predict_array
    from ...detection.loading import load_detector

    loaded = load_detector(str(model_path))
    rows = []
    for _, folder in ZERO_SHOT_SETS:
        pairs = labelled_pairs(shared_data_dir() / "change" / folder)
        for pair in itertools.islice(pairs, SAMPLES_PER_SET):
            predicted = predict_array(loaded.model, pair.t1, pair.t2, torch.device("cpu")) >= loaded.threshold
            truth = pair.change.astype(bool)
            overlay = np.zeros(truth.shape + (3,), np.uint8)
            overlay[predicted & truth] = (0, 200, 0)
            overlay[predicted & ~truth] = (230, 0, 0)
            overlay[~predicted & truth] = (0, 90, 255)
            cells = [pair.t1, pair.t2, np.repeat(truth[..., None], 3, axis=2).astype(np.uint8) * 255, overlay]
            rows.append(
                np.concatenate(
                    [
                        cv2.resize(
                            np.ascontiguousarray(c), (SAMPLE_CELL, SAMPLE_CELL), interpolation=cv2.INTER_AREA
                        )
                        for c in cells
                    ],
                    axis=1,
                )
            )
    with atomic_path(out) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
