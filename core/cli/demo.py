"""`python -m core demo -o OUT`: run each part of the project on real shared data and say what was written.

`DEMO_STEPS` is a list of small functions `step(out: Path) -> list[str]` (written paths); each part adds its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..events.series import simulate_series
from ..paths import DEFAULT_DETECTOR, shared_data_dir

DEMO_MASK = "buildings/xbd_harvey/masks/hurricane-harvey_00000001_pre_disaster.png"
DEMO_SEED = 3
# Joplin 2011 tornado: a georeferenced pre-event chip, the post-event chip on the same grid, building footprints.
JOPLIN_PRE = "georef/joplin/chips/pre/0_pre.tif"
JOPLIN_POST = "georef/joplin/chips/post/0_post.tif"
JOPLIN_FOOTPRINTS = "georef/joplin/footprints_2020.geojson"


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--out", default="demo_out", help="output folder")


def events_step(out: Path) -> list[str]:
    """A 5-step change-event series on a real xBD Harvey building mask."""
    from ..io.labels import load_state
    from ..io.series import write_series

    mask = shared_data_dir() / DEMO_MASK
    state, grid, _ = load_state(mask)
    series = simulate_series(
        state, DEMO_SEED, steps=5, remove=3, create=3, scale_range=(0.8, 1.2), angle_range=(0.0, 360.0)
    )
    target = out / "events"
    written = write_series(series, target, grid, extra={"input": str(mask)})
    return [str(target / name) for name in written["files"]]


def synthesize_step(
    out: Path,
    method: str = "changen",
    folder: str = "synthesize",
    steps: int = 2,
    remove: float | int = 0.15,
    create: int = 4,
) -> list[str]:
    """Changen synthesis of a 2-step series on a real georeferenced Joplin chip (buildings from footprints)."""
    from ..io.labels import load_state
    from ..io.rasters import read_raster
    from ..synthesis.synthesize import synthesize, write_result

    data = shared_data_dir()
    image = read_raster(data / JOPLIN_PRE)
    state, _, _ = load_state(data / JOPLIN_FOOTPRINTS, grid=image.grid)
    series = simulate_series(state, DEMO_SEED, steps=steps, remove=remove, create=create, min_area=64)
    result = synthesize(image, state, series, method=method, rng=np.random.default_rng([DEMO_SEED, 1]))
    print(f"  synthesized on {result.log['device']}")
    written = write_result(result, image.grid, out / folder)
    return [str(path) for path in written] + [str(_save_strip(result, out / folder / "preview.png"))]


def rsdit_step(out: Path) -> list[str]:
    """One step by Changen2's RS-DiT latent diffusion (`changen2`), sampled only around the change: 4 removals and
    2 creations (each edit costs ~20 denoiser steps on its window, a few seconds on a CPU thread)."""
    return synthesize_step(out, "changen2", "synthesize_rsdit", steps=1, remove=4, create=2)


def _save_strip(result, path: Path) -> Path:
    """t0 | t1 | … side by side, each post-event frame with the change of its step outlined in red."""
    from PIL import Image
    from scipy.ndimage import binary_dilation

    frames = [result.images[0]]
    for image, change in zip(result.images[1:], result.changes, strict=True):
        framed = image.copy()
        edge = binary_dilation(change > 0, iterations=2) & ~(change > 0)
        framed[edge] = (255, 0, 0)
        frames.append(framed)
    Image.fromarray(np.concatenate(frames, axis=1)).save(path)
    return path


def detect_step(out: Path) -> list[str]:
    """Zero-shot change detection on the real Joplin pre/post chips (tornado damage), with polygons."""
    from ..detection.inference import detect_change

    data, target = shared_data_dir(), out / "detect"
    target.mkdir(parents=True, exist_ok=True)
    result = detect_change(
        data / JOPLIN_PRE,
        data / JOPLIN_POST,
        target / "change.tif",
        probability_path=target / "change_probability.tif",
        vector_path=target / "change_polygons.gpkg",
    )
    print(
        f"  {result.polygons} change polygons, {result.changed_area_m2:.0f} m² changed, threshold "
        f"{result.threshold:.2f}, {result.seconds:.1f} s on {result.device}"
    )
    return [str(result.change_path), str(result.probability_path), str(result.vector_path)]


def evaluate_step(out: Path) -> list[str]:
    """Zero-shot scores of the shipped detector on the real LEVIR-CD dev pairs, against classical methods."""
    from ..detection.evaluate import evaluate_pairs, format_table

    report = evaluate_pairs(shared_data_dir() / "change" / "levir_dev", model=DEFAULT_DETECTOR)
    table = format_table(report)
    print(table)
    target = out / "evaluate_levir_dev.txt"
    target.write_text(table + "\n")
    return [str(target)]


DEMO_STEPS = [events_step, synthesize_step, rsdit_step, detect_step, evaluate_step]


def run(args) -> int:
    out = Path(args.out)
    for step in DEMO_STEPS:
        print(f"== {step.__name__}: {(step.__doc__ or '').strip()}")
        for path in step(out):
            print(f"  wrote {path}")
    return 0
