"""Benchmark of one change-event step (core.events): a 1024² mask, 300 instances, 20 events a step.

Run: `OMP_NUM_THREADS=1 .venv/bin/python bench/bench_events.py [--steps 100] [--real]`. Target: <= 20 ms a step.
Reports the median and 95th-percentile wall time, the CPU time of `simulate_step` (10 removals + 10 random creations with random
rotation and scale, chained like a series) and the step's peak extra memory (tracemalloc).
"""

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.events.state import LabelState  # noqa: E402
from core.events.step import simulate_step  # noqa: E402

SIZE = 1024
INSTANCES = 300


def synthetic_mask(seed: int = 0) -> np.ndarray:
    """300 separate rotated rectangles (footprints of 8-40 px a side) on a 1024² mask."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cell = SIZE // 18  # an 18 x 18 grid of cells, one building in most of them
    cells = rng.permutation(18 * 18)[:INSTANCES]
    for index in cells:
        row, col = divmod(int(index), 18)
        centre = ((col + 0.5) * cell, (row + 0.5) * cell)
        size = tuple(float(v) for v in rng.uniform(8, 40, 2))
        corners = cv2.boxPoints((centre, size, float(rng.uniform(0, 90))))
        cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 255)
    return mask


def real_mask() -> np.ndarray:
    from core.paths import shared_data_dir

    path = sorted((shared_data_dir() / "buildings" / "xbd_joplin" / "masks").glob("*.png"))[1]
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


def bench(mask: np.ndarray, steps: int, label: str) -> None:
    state = LabelState.from_mask(mask)
    rng = np.random.default_rng(0)
    kwargs = dict(
        remove=10, create=10, min_area=64, scale_range=(0.8, 1.2), angle_range=(0.0, 360.0), min_gap=2
    )
    simulate_step(state, rng, **kwargs)  # warm-up (imports, caches)
    times, peaks, events, unplaced = [], [], 0, 0
    for _ in range(steps):
        tracemalloc.start()
        start = time.perf_counter()
        result = simulate_step(state, rng, **kwargs)
        times.append(time.perf_counter() - start)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        events += len(result.events)
        unplaced += len(result.unplaced)
        state = result.state
    # tracemalloc slows numpy's allocations a little: time again without it
    state = LabelState.from_mask(mask)
    plain, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        state = simulate_step(state, rng, **kwargs).state
        plain.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    ms = np.array(plain) * 1000
    cpu_ms = np.array(cpu) * 1000
    print(
        f"{label}: {mask.shape[0]}x{mask.shape[1]}, {len(LabelState.from_mask(mask).index)} instances, "
        f"{events / steps:.1f} events/step ({unplaced} unplaced in {steps} steps)\n"
        f"  time/step: median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, max {ms.max():.2f} ms; "
        f"CPU time/step: median {np.median(cpu_ms):.2f} ms (wall time includes waiting for a busy CPU)\n"
        f"  peak extra memory/step: {np.median(peaks) / 2**20:.1f} MiB (max {max(peaks) / 2**20:.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--real", action="store_true", help="also run on a real xBD Joplin mask")
    args = parser.parse_args()
    bench(synthetic_mask(), args.steps, "synthetic")
    if args.real:
        bench(real_mask(), args.steps, "xBD Joplin")


if __name__ == "__main__":
    main()
