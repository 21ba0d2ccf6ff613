"""Benchmark of one synthesis step on a real 512² tile: copy-paste, inpainting and the Changen generator.

Run: `.venv/bin/python bench/bench_synthesize.py [--model changen_gan_cpu|PATH] [--threads N] [--repeats 5]`.
Without a shipped model the generator is a randomly initialised `cpu` configuration (same cost as trained weights).

Each method runs in its own spawned process so that its peak resident memory (`ru_maxrss`, minus the process's
resident size once inputs and model are loaded) is its own; Python/numpy peaks come from tracemalloc. For the generator,
FLOPs are counted with torch's FlopCounterMode and compared with a float32 matmul peak measured in the same run.
"""

import argparse
import json
import multiprocessing
import queue
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flop_rate import count_flops, matmul_peak  # noqa: E402

TILE = 512
PREVIEW = 256


def _real_tile(size: int):
    from PIL import Image

    from core.paths import shared_data_dir

    folder = shared_data_dir() / "buildings" / "xbd_harvey"
    name = "hurricane-harvey_00000001_pre_disaster.png"
    image = np.asarray(Image.open(folder / "images" / name).convert("RGB"))[:size, :size].copy()
    mask = np.asarray(Image.open(folder / "masks" / name))[:size, :size]
    return image, mask


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _measure(method: str, size: int, model: str | None, threads: int, repeats: int, results) -> None:
    import torch

    from core.events.state import LabelState
    from core.events.step import simulate_step
    from core.synthesis.synthesize import synthesize_step

    torch.set_num_threads(threads)
    image, mask = _real_tile(size)
    state = LabelState.from_mask(mask)
    step = simulate_step(state, np.random.default_rng(0), remove=0.3, create=5)
    generator, flops = None, None
    if method == "changen":
        from core.synthesis.changen_gan import build_generator, load_generator

        try:
            generator = load_generator(model or "changen_gan_cpu", "cpu")
            source = model or "changen_gan_cpu"
        except Exception:  # no shipped weights yet: the same architecture, random weights
            generator = build_generator("cpu").eval()
            source = "random-init cpu config"
        pixels = torch.zeros(1, 3, size, size)
        labels = torch.zeros(1, size, size, dtype=torch.long)
        noise = torch.zeros(1, generator.noise_channels, size, size)
        flops = count_flops(
            lambda: generator(pixels, labels, labels, noise=noise)
        )  # not inference_mode: spectral norm
    else:
        source = "baseline"

    def once():
        return synthesize_step(method, image, state, step, np.random.default_rng(1), generator=generator)

    rss_before = _rss_mb()  # inputs and model loaded; what the step itself adds is measured from here
    once()  # warm-up (lazy initialisation, caches)
    tracemalloc.start()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = float(np.median(times))
    results.put(
        {
            "method": method,
            "size": size,
            "model": source,
            "median_s": round(seconds, 4),
            "min_s": round(min(times), 4),
            "peak_rss_growth_mb": round(_rss_mb() - rss_before, 1),
            "peak_rss_mb": round(_rss_mb(), 1),
            "tracemalloc_peak_mb": round(traced_peak / 2**20, 1),
            "gflop": None if flops is None else round(flops / 1e9, 2),
            "gflops_per_s": None if flops is None else round(flops / 1e9 / seconds, 2),
        }
    )


def _in_child(method, size, model, threads, repeats):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_measure, args=(method, size, model, threads, repeats, results))
    process.start()
    while True:
        try:
            result = results.get(timeout=5)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"the {method} benchmark process failed (exit code {process.exitcode})"
                ) from None
    process.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="generator name or .safetensors path (default: shipped changen_gan_cpu)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    peak = matmul_peak().best_gflops  # the best single product: the reference for the generator's efficiency
    rows = [
        _in_child(method, TILE, args.model, args.threads, args.repeats)
        for method in ("copy-paste", "inpainting")
    ]
    for size in (TILE, PREVIEW):
        rows.append(_in_child("changen", size, args.model, args.threads, args.repeats))
    for row in rows:
        if row["gflops_per_s"] is not None:
            row["share_of_matmul_peak"] = round(row["gflops_per_s"] / peak, 3)
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s with {args.threads} thread(s)")
    print(
        f"{'method':<11} {'size':>5} {'median s':>9} {'RSS +MB':>8} {'traced MB':>9} {'GFLOP':>7} {'GFLOP/s':>8} {'of peak':>7}"
    )
    for row in rows:
        print(
            f"{row['method']:<11} {row['size']:>5} {row['median_s']:>9.3f} {row['peak_rss_growth_mb']:>8.1f} "
            f"{row['tracemalloc_peak_mb']:>9.1f} {row['gflop'] or '':>7} {row['gflops_per_s'] or '':>8} "
            f"{row.get('share_of_matmul_peak', ''):>7}"
        )
    print(f"generator weights: {rows[-1]['model']}")
    if args.out:
        Path(args.out).write_text(
            json.dumps({"matmul_peak_gflops": round(peak, 1), "results": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
