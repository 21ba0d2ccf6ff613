"""Land-cover change evidence: a sample grid (t1, S_t, S_t+1, t2) per class pair on real held-out maps, and
per-class realism measures of the RS-DiT's land-cover edits.

Maps: the images the RS-DiT held out (`core.data.sampling`): Dubai MBRSC (CC0), LoveDA (CC BY-NC-SA 4.0) and the
Potsdam sample (ISPRS research terms, the only source of "rangeland"). Each row is one connected region of class A
picked at random and turned into class B with `ClassChange(at=...)` (what an analyst picks in the dock), drawn by
`synthesize_landcover` with latent mixing; land → building instead copies building shapes of the same crop onto
bareland (Changen2's object creation), since a whole bareland region is the city's background.

Realism, per target class (the classifier two-sample test of `bench_two_sample.py`, per class): 16² cells fully
inside the generated class-B area against 16² cells of real class B in the same held-out crops, masked
EfficientNet-Lite0 features, 5-fold linear probe: 0.5 = indistinguishable, 1.0 = always told apart. Plus
`change_fidelity` per pair (difference inside the change against outside; SSIM outside the change).

Usage: `.venv/bin/python bench/bench_landcover.py [--out landcover_samples.png] [--examples 2] [--threads 2]`.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import ndimage

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

# (label, from class, to class, source)
CLASS_PAIRS = (
    ("tree → bareland", "tree", "bareland", "dubai_mbrsc"),
    ("rangeland → bareland", "rangeland", "bareland", "potsdam"),
    ("agriculture → bareland", "agriculture", "bareland", "loveda"),
    ("bareland → building", "bareland", "building", "dubai_mbrsc"),
    ("building → bareland", "building", "bareland", "dubai_mbrsc"),
    ("water → bareland", "water", "bareland", "dubai_mbrsc"),
)
CROP = 256
REGION_AREA = (600, 25_000)  # pixels of a picked region
CELL = 16
PANEL = 192


def candidate_regions(classes: np.ndarray, cls: int) -> list[tuple[int, int, int]]:
    """(area, row, col) of a pixel inside each 4-connected region of `cls` whose size suits a 256² crop."""
    from core.events.state import FOUR_CONNECTED

    labels, count = ndimage.label(classes == cls, structure=FOUR_CONNECTED)
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    found = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = box
        if not REGION_AREA[0] <= areas[index] <= REGION_AREA[1] or rows.stop - rows.start > CROP - 32:
            continue
        if cols.stop - cols.start > CROP - 32:
            continue
        inside = np.argwhere(labels[box] == index)
        row, col = inside[len(inside) // 2]
        found.append((int(areas[index]), rows.start + int(row), cols.start + int(col)))
    return found


def crop_around(shape, row: int, col: int) -> tuple[slice, slice]:
    top = int(np.clip(row - CROP // 2, 0, shape[0] - CROP))
    left = int(np.clip(col - CROP // 2, 0, shape[1] - CROP))
    return slice(top, top + CROP), slice(left, left + CROP)


def samples_for(pair, maps, generator, rng, examples: int) -> list[dict]:
    from core.data.landcover import read_landcover_map
    from core.events.classes import BUILDING, PROJECT_CLASSES
    from core.events.step import simulate_step
    from core.events.transitions import ClassChange
    from core.io.labels import state_from_labels
    from core.synthesis.diffusion.change_sampler import synthesize_change
    from core.synthesis.landcover import LandcoverParameters, synthesize_landcover

    label, source_name, target_name, source = pair
    from_cls, to_cls = PROJECT_CLASSES.index(source_name), PROJECT_CLASSES.index(target_name)
    options = []
    for item in (m for m in maps if m.source == source):
        image, classes = read_landcover_map(item)
        if from_cls == PROJECT_CLASSES.index("bareland") and to_cls == BUILDING:
            picks = candidate_regions(classes, BUILDING)  # crops with buildings to copy, bareland to build on
        else:
            picks = candidate_regions(classes, from_cls)
        options += [(item, image, classes, pick) for pick in picks]
    if not options:
        print(f"{label}: no region of the right size in the held-out {source} maps", file=sys.stderr)
        return []
    samples = []
    for choice in rng.permutation(len(options)):
        if len(samples) == examples:
            break
        item, image, classes, (area, row, col) = options[choice]
        crop = crop_around(classes.shape, row, col)
        pixels, before = np.ascontiguousarray(image[crop]), classes[crop]
        started = time.perf_counter()
        if to_cls == BUILDING:
            state = state_from_labels(before, object_classes=[BUILDING])
            open_ground = ndimage.binary_erosion(before == from_cls, iterations=2)
            step = simulate_step(state, rng, create=4, min_area=200, allowed=open_ground, min_gap=4)
            if not step.change.any():
                continue  # no building of this crop fits its open ground: another crop
            after, change = step.state.semantic, step.change
            seed = int(rng.integers(2**31))
            t2 = synthesize_change(generator, pixels, after, change, seed)
        else:
            at = (row - crop[0].start, col - crop[1].start)
            parameters = LandcoverParameters(
                transition=0.0,
                class_changes=(ClassChange(to_cls, from_cls, at=at),),
                seed=int(rng.integers(2**31)),
            )
            result = synthesize_landcover(generator, pixels, before, parameters)
            after, change, t2 = result.masks[1], result.changes[0].astype(bool), result.images[1]
        samples.append(
            {
                "label": label,
                "map": item.name,
                "to_cls": to_cls,
                "t1": pixels,
                "s_t": before,
                "s_t1": after,
                "t2": t2,
                "change": change,
                "seconds": time.perf_counter() - started,
            }
        )
        print(
            f"{label}: {item.name} {int(change.sum())} px changed, {samples[-1]['seconds']:.1f} s", flush=True
        )
    return samples


def draw_grid(samples: list[dict]) -> np.ndarray:
    from core.synthesis.landcover import colour_classes

    rows = []
    header = np.full((28, 4 * PANEL + 3 * 4, 3), 255, np.uint8)
    for index, title in enumerate(("t1 (real)", "S_t", "S_t+1", "t2 (RS-DiT)")):
        cv2.putText(
            header, title, (index * (PANEL + 4) + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1
        )
    rows.append(header)
    for sample in samples:
        panels = [
            sample["t1"],
            colour_classes(sample["s_t"]),
            colour_classes(sample["s_t1"]),
            sample["t2"],
        ]
        panels = [cv2.resize(p, (PANEL, PANEL), interpolation=cv2.INTER_AREA) for p in panels]
        outline = cv2.resize(
            sample["change"].astype(np.uint8), (PANEL, PANEL), interpolation=cv2.INTER_NEAREST
        )
        edge = (outline - cv2.erode(outline, np.ones((3, 3), np.uint8))).astype(bool)
        panels[2] = panels[2].copy()
        panels[2][edge] = (255, 255, 0)
        gap = np.full((PANEL, 4, 3), 255, np.uint8)
        row = np.concatenate([panels[0], gap, panels[1], gap, panels[2], gap, panels[3]], axis=1)
        band = np.full((22, row.shape[1], 3), 255, np.uint8)
        where = f"{Path(sample['map']).parent.parent.name}/{Path(sample['map']).name}"
        text = f"{sample['label'].replace('→', '->')}   ({where})"  # OpenCV draws ASCII only
        cv2.putText(band, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.48, (0, 0, 0), 1, cv2.LINE_AA)
        rows += [band, row]
    legend = np.full((26, rows[0].shape[1], 3), 255, np.uint8)
    from core.events.classes import PROJECT_CLASSES, PROJECT_COLOURS

    x = 6
    for name, colour in zip(PROJECT_CLASSES, PROJECT_COLOURS, strict=True):
        cv2.rectangle(legend, (x, 7), (x + 12, 19), colour, -1)
        cv2.rectangle(legend, (x, 7), (x + 12, 19), (0, 0, 0), 1)
        cv2.putText(legend, name, (x + 16, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 24 + 8 * len(name)
    return np.concatenate(rows + [legend], axis=0)


def cells(mask: np.ndarray) -> list[np.ndarray]:
    """16² cells lying fully inside `mask`, as full-size masks."""
    found = []
    for top in range(0, mask.shape[0] - CELL + 1, CELL):
        for left in range(0, mask.shape[1] - CELL + 1, CELL):
            if mask[top : top + CELL, left : left + CELL].all():
                cell = np.zeros(mask.shape, bool)
                cell[top : top + CELL, left : left + CELL] = True
                found.append(cell)
    return found


def realism(samples: list[dict]) -> dict:
    from bench_two_sample import probe_accuracy, region_features

    from core.detection.changestar import EfficientNetLiteTrunk
    from core.events.classes import PROJECT_CLASSES
    from core.synthesis.realism import change_fidelity

    extractor = EfficientNetLiteTrunk("lite0", imagenet=True).eval()
    by_class: dict[int, dict[str, list]] = {}
    fidelity = {}
    for sample in samples:
        to_cls, change = sample["to_cls"], sample["change"]
        generated = cells(change & (sample["s_t1"] == to_cls))
        real = cells((sample["s_t"] == to_cls) & ~ndimage.binary_dilation(change, iterations=8))
        entry = by_class.setdefault(to_cls, {"generated": [], "real": []})
        if generated:
            entry["generated"].append(region_features(extractor, sample["t2"], generated))
        if real:
            entry["real"].append(region_features(extractor, sample["t1"], real))
        scores = change_fidelity(sample["t1"], sample["t2"], np.zeros_like(change), change)
        fidelity.setdefault(sample["label"], []).append(
            {key: round(scores[key], 3) for key in ("mad_created", "mad_outside", "ssim_outside")}
        )
    probes = {}
    for to_cls, entry in by_class.items():
        generated = np.concatenate(entry["generated"]) if entry["generated"] else np.zeros((0, 1))
        real = np.concatenate(entry["real"]) if entry["real"] else np.zeros((0, 1))
        accuracy = probe_accuracy(generated, real) if len(generated) and len(real) else float("nan")
        probes[PROJECT_CLASSES[to_cls]] = {
            "generated_cells": len(generated),
            "real_cells": len(real),
            "probe_accuracy": round(accuracy, 3),
        }
    return {"two_sample_per_target_class": probes, "change_fidelity": fidelity}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="landcover_samples.png", help="the sample grid (PNG)")
    parser.add_argument("--examples", type=int, default=2, help="rows per class pair")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="RS-DiT file or shipped name (default rsdit_cpu)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from core.atomic import write_png_atomic, write_text_atomic
    from core.data.landcover import find_landcover_maps
    from core.paths import shared_data_dir
    from core.synthesis.synthesize import load_synthesis_generator

    generator = load_synthesis_generator("changen2", args.model, "cpu")
    sources = sorted({pair[3] for pair in CLASS_PAIRS})
    maps = find_landcover_maps(shared_data_dir(), sources, "held-out")
    rng = np.random.default_rng(args.seed)
    samples = [s for pair in CLASS_PAIRS for s in samples_for(pair, maps, generator, rng, args.examples)]
    out = Path(args.out)
    write_png_atomic(out, draw_grid(samples))
    report = {
        "model": generator.name,
        "maps": sorted({s["map"] for s in samples}),
        "seconds_per_sample": [round(s["seconds"], 1) for s in samples],
        **realism(samples),
    }
    write_text_atomic(out.with_suffix(".json"), json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
