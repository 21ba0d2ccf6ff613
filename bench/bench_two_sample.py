"""Realism decided by a classifier, not an eye (a classifier two-sample test, per synthesis method).

On the four Joplin chips (2009 imagery no generator trained on, `georef/joplin/chips/pre`) with the 2020 building
footprints rasterised on them, each method removes and creates buildings (the same events for every method). In the
same post-event image, a linear probe on masked ImageNet EfficientNet-Lite0 features (strides 4, 8, 16, average
pooled inside each region) tries to tell
- removal: removed footprints from real ground of the same shapes (the shapes moved onto building-free ground);
- creation: created buildings from real unchanged buildings;
with 5-fold cross-validated accuracy: 0.5 = indistinguishable, 1.0 = always told apart. "real" rows give the floor
(ground vs ground of the same shapes; a removal that did nothing). Usage:
`.venv/bin/python bench/bench_two_sample.py [--methods changen,changen2,copy-paste,inpainting] [--threads 2]`.
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

MIN_AREA = 64
FOLDS = 5


def chip_states():
    """(name, image, state, valid) of each Joplin chip with its footprints."""
    from core.io.labels import load_state
    from core.io.rasters import read_raster, to_uint8
    from core.paths import shared_data_dir

    data = shared_data_dir() / "georef" / "joplin"
    chips = []
    for path in sorted((data / "chips" / "pre").glob("*.tif")):
        raster = read_raster(path)
        state, _, _ = load_state(data / "footprints_2020.geojson", grid=raster.grid)
        valid = raster.valid if raster.valid.ndim == 2 else raster.valid.all(axis=-1)
        chips.append((path.stem, to_uint8(raster.array, valid=raster.valid), state, valid))
    return chips


def ground_placements(shapes, occupied: np.ndarray, rng: np.random.Generator, tries: int = 200):
    """Each (mask of a footprint's bounding box) moved to a random place where it touches no building."""
    height, width = occupied.shape
    placed = []
    for shape in shapes:
        h, w = shape.shape
        for _ in range(tries):
            top, left = rng.integers(0, height - h), rng.integers(0, width - w)
            if not (occupied[top : top + h, left : left + w] & shape).any():
                region = np.zeros((height, width), bool)
                region[top : top + h, left : left + w] = shape
                placed.append(region)
                break
    return placed


def region_features(extractor, image: np.ndarray, regions: list[np.ndarray]) -> np.ndarray:
    """Masked average of Lite0 features at strides 4, 8, 16 inside each region → (N, 176)."""
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    with torch.inference_mode():
        maps = extractor(pixels)[:3]
    rows = []
    for region in regions:
        parts = []
        for fmap in maps:
            small = cv2.resize(region.astype(np.float32), fmap.shape[-1:-3:-1], interpolation=cv2.INTER_AREA)
            weight = torch.from_numpy(small)[None, None]
            parts.append(((fmap * weight).sum(dim=(2, 3)) / weight.sum().clamp(min=1e-6))[0])
        rows.append(torch.cat(parts).numpy())
    return np.stack(rows)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-2):
    weights = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=200)

    def closure():
        optimizer.zero_grad()
        logits = x @ weights + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * weights.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach(), bias.detach()


def probe_accuracy(first: np.ndarray, second: np.ndarray, seed: int = 0) -> float:
    """5-fold CV accuracy of an L2-regularised logistic regression telling `first` rows from `second` rows."""
    count = min(len(first), len(second))
    if count < FOLDS * 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [first[rng.permutation(len(first))[:count]], second[rng.permutation(len(second))[:count]]]
    )
    y = np.concatenate([np.ones(count), np.zeros(count)])
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    correct = 0
    for fold in range(FOLDS):
        test = np.arange(len(x)) % FOLDS == fold
        mean, std = x[~test].mean(0), x[~test].std(0) + 1e-6
        train_x = torch.from_numpy((x[~test] - mean) / std).float()
        test_x = torch.from_numpy((x[test] - mean) / std).float()
        train_y = torch.from_numpy(y[~test]).float()
        weights, bias = fit_logistic(train_x, train_y)
        with torch.no_grad():
            predicted = ((test_x @ weights + bias) > 0).float().numpy()
        correct += int((predicted == y[test]).sum())
    return correct / len(x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default="changen,changen2,copy-paste,inpainting")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--remove", type=float, default=0.4)
    parser.add_argument("--create", type=int, default=25)
    parser.add_argument("--denoiser", default="rsdit_cpu", help="changen2: RS-DiT file or shipped name")
    parser.add_argument(
        "--autoencoder", default=None, help="changen2: autoencoder (default: the one it names)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from core.detection.changestar import EfficientNetLiteTrunk
    from core.events.step import simulate_step
    from core.synthesis.diffusion.change_sampler import synthesize_change
    from core.synthesis.synthesize import synthesize_step

    extractor = EfficientNetLiteTrunk("lite0", imagenet=True).eval()
    chips = chip_states()
    events = []
    for index, (_, _image, state, valid) in enumerate(chips):
        rng = np.random.default_rng(args.seed + index)
        step = simulate_step(
            state, rng, remove=args.remove, create=args.create, min_area=MIN_AREA, allowed=valid
        )
        events.append(step)
    from core.synthesis.synthesize import load_synthesis_generator

    results = {}
    methods = ["real"] + [m for m in args.methods.split(",") if m]
    for method in methods:
        removed_rows, ground_rows, created_rows, building_rows = [], [], [], []
        model = args.denoiser if method == "changen2" else None
        generator = load_synthesis_generator(method, model, "cpu", args.autoencoder)
        for index, ((_, image, state, valid), step) in enumerate(zip(chips, events, strict=True)):
            rng = np.random.default_rng(1000 + index)
            if method == "real":
                post = image
            elif method == "changen2":
                post = synthesize_change(
                    generator,
                    image,
                    project_classes(step.state.semantic),
                    step.change.astype(bool),
                    seed=index,
                )
            else:
                post = synthesize_step(
                    method, image, state, step, np.random.default_rng(index), generator, unchanged="keep"
                )
            removed = [r for r in _instances(state.instance, step.removed) if r.sum() >= MIN_AREA]
            created = [r for r in _instances(step.state.instance, step.created) if r.sum() >= MIN_AREA]
            occupied = (
                cv2.dilate((state.instance > 0).astype(np.uint8) | step.created, np.ones((9, 9), np.uint8))
                > 0
            )
            occupied |= ~valid
            ground = ground_placements([_box(r) for r in removed], occupied, rng)
            kept = [
                r
                for r in _instances(step.state.instance, (step.state.instance > 0) & ~step.created)
                if r.sum() >= MIN_AREA
            ]
            if method == "real":  # the floor: ground vs ground of the same shapes
                removed = ground_placements(
                    [_box(r) for r in removed], occupied, np.random.default_rng(5000 + index)
                )
                created = kept[::2]
                kept = kept[1::2]
            removed_rows.append(region_features(extractor, post, removed))
            ground_rows.append(region_features(extractor, post, ground))
            if created:
                created_rows.append(region_features(extractor, post, created))
            building_rows.append(region_features(extractor, post, kept))
        removal = probe_accuracy(np.concatenate(removed_rows), np.concatenate(ground_rows))
        creation = (
            probe_accuracy(np.concatenate(created_rows), np.concatenate(building_rows))
            if created_rows
            else float("nan")
        )
        results[method] = (
            removal,
            creation,
            sum(len(r) for r in removed_rows),
            sum(len(r) for r in created_rows),
        )
        print(f"{method}: removal {removal:.3f}, creation {creation:.3f}", flush=True)
    print("\n| method | removed vs ground | created vs real buildings | removed / created regions |")
    print("|---|---|---|---|")
    for method, (removal, creation, n_removed, n_created) in results.items():
        label = "real (ground vs ground; building vs building)" if method == "real" else method
        print(f"| {label} | {removal:.3f} | {creation:.3f} | {n_removed} / {n_created} |")
    return 0


def project_classes(semantic: np.ndarray) -> np.ndarray:
    from core.events.classes import BUILDING

    return np.where(semantic > 0, BUILDING, 0).astype(np.uint8)


def _instances(instance: np.ndarray, where: np.ndarray) -> list[np.ndarray]:
    ids = np.unique(instance[where.astype(bool)])
    return [instance == i for i in ids if i > 0]


def _box(region: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(region)
    return region[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


if __name__ == "__main__":
    sys.exit(main())
