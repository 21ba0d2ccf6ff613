"""Benchmark of the ChangeStar detector: start-up, model throughput and large-raster detection.

Run: `.venv/bin/python bench/bench_detector.py [--threads 1] [--size 512] [--raster 8192] [--model changestar_lite0]`.
0. Start-up: median wall time of `python -m core --help`, `python -m core detect --help` and a bad-input error
   (`detect` on missing files), each in a fresh process (target < 0.5 s: torch is imported only when needed).
1. Pairs/s at `--size`² for fp32 and bf16 autocast + channels-last, the forward's FLOPs (torch's counter), the
   achieved GFLOP/s against fp32 and bf16 matmul peaks measured in the same process, and how far bf16 moves the
   probabilities (mean |Δp|, share of pixels whose decision flips) on real LEVIR-CD pairs; then the official
   Changen ChangeStar(1×96) R-18 (the architecture a released .pth loads into, equal to the public code within
   1e-5: tests/test_changestar.py) timed in bf16 interleaved with ours, with the bf16 matmul peak beside each round.
2. `python -m core detect` on a synthetic `--raster`² GeoTIFF pair made in a temporary folder (written window by
   window), in a child process: wall time, peak resident memory, the share of the wall time spent inside the model,
   and the end-to-end rate (raster pixels per second) against both bare models' rates at `--size`² from part 1.
   `--raster 0` skips it; run it at two sizes to see that memory stays flat (e.g. 2048 and 8192).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from flop_rate import count_flops, matmul_peak  # noqa: E402

from core.detection.changestar import build_changestar  # noqa: E402
from core.detection.loading import load_detector  # noqa: E402


def time_forward(model, pair, bf16: bool, repeats: int) -> float:
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        pair = pair.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(pair)
        for _ in range(repeats):
            start = time.perf_counter()
            model(pair)
            times.append(time.perf_counter() - start)
    model.to(memory_format=torch.contiguous_format)
    return float(np.median(times))


def bf16_agreement(model, threshold: float) -> dict:
    from core.data.labelled_pairs import labelled_pairs
    from core.detection.inference import predict_array
    from core.paths import shared_data_dir

    differences, flips, pixels = [], 0, 0
    for pair in labelled_pairs(shared_data_dir() / "change" / "levir_dev"):
        exact = predict_array(model, pair.t1, pair.t2, torch.device("cpu"), bf16=False)
        fast = predict_array(model, pair.t1, pair.t2, torch.device("cpu"), bf16=True)
        differences.append(np.abs(exact - fast).mean())
        flips += int(np.sum((exact >= threshold) != (fast >= threshold)))
        pixels += exact.size
    return {"mean_abs_dp": float(np.mean(differences)), "decision_flips": flips / pixels}


def make_raster_pair(folder: Path, size: int, block: int = 1024) -> tuple[Path, Path]:
    """Two uint8 RGB GeoTIFFs (UTM, 0.5 m) with textured ground and bright new "buildings" in T2, written by
    windows so that even 16k² rasters need little memory."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8", "crs": "EPSG:32615",
        "transform": Affine(0.5, 0, 400000, 0, -0.5, 4100000), "tiled": True, "compress": "deflate",
        "blockxsize": 256, "blockysize": 256,
    }  # fmt: skip
    paths = folder / "t1.tif", folder / "t2.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(paths[0], "w", **profile) as first, rasterio.open(paths[1], "w", **profile) as second:
        for row in range(0, size, block):
            for col in range(0, size, block):
                height, width = min(block, size - row), min(block, size - col)
                ground = rng.normal(110, 25, size=(3, height, width)).clip(0, 255).astype(np.uint8)
                later = ground.copy()
                for _ in range(8):
                    r, c = int(rng.integers(0, height - 40)), int(rng.integers(0, width - 40))
                    later[:, r : r + 30, c : c + 30] = 230
                window = Window(col, row, width, height)
                first.write(ground, window=window)
                second.write(later, window=window)
    return paths


def startup_seconds(repeats: int = 5) -> dict:
    """Median wall and CPU (user + system) seconds of fresh `python -m core …` processes (help, a command's
    help, a bad-input error); on a loaded machine the CPU time is the figure to compare with the target."""
    commands = {
        "help": ["--help"],
        "detect_help": ["detect", "--help"],
        "bad_input_error": ["detect", "missing_t1.tif", "missing_t2.tif", "-o", "unused.tif"],
    }
    report = {}
    for name, command in commands.items():
        walls, cpus = [], []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "core", *command], cwd=REPO_ROOT, capture_output=True)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        report[name] = {"wall": round(float(np.median(walls)), 3), "cpu": round(float(np.median(cpus)), 3)}
    return report


def interleaved_bf16(models: dict, pair, repeats: int) -> dict:
    """bf16 + channels-last seconds per forward (median), the models taking turns; the bf16 matmul peak is
    measured after every round, so each rate can be set against the peak of the same moment."""
    pair = pair.contiguous(memory_format=torch.channels_last)
    for model in models.values():
        model.to(memory_format=torch.channels_last)
    times, peaks = {name: [] for name in models}, []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for model in models.values():
            model(pair)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(pair)
                times[name].append(time.perf_counter() - start)
            peaks.append(matmul_peak(torch.bfloat16).gflops)
    for model in models.values():
        model.to(memory_format=torch.contiguous_format)
    return {"seconds": {name: float(np.median(values)) for name, values in times.items()}, "peaks": peaks}


def detect_child(args) -> None:
    """Runs inside the child process: detection with the model's time accounted separately."""
    import core.detection.inference as detect

    torch.set_num_threads(args.threads)
    model_seconds = [0.0]
    original = detect.predict_tile

    def timed(*call_args, **kwargs):
        start = time.perf_counter()
        result = original(*call_args, **kwargs)
        model_seconds[0] += time.perf_counter() - start
        return result

    detect.predict_tile = timed
    model = args.model if args.model else build_changestar("efficientnet_lite0", imagenet=True)
    start = time.perf_counter()
    result = detect.detect_change(
        args.t1, args.t2, args.out, probability_path=args.out.with_name("p.tif"), model=model,
        precision=args.precision, device="cpu",
    )  # fmt: skip
    wall = time.perf_counter() - start
    print(
        json.dumps(
            {
                "wall_s": round(wall, 2),
                "model_s": round(model_seconds[0], 2),
                "model_share_of_wall": round(model_seconds[0] / wall, 3),
                "tiles": result.tiles,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--raster", type=int, default=8192, help="large-raster side in pixels (0 = skip)")
    parser.add_argument(
        "--model", default="", help="shipped model name or path (default: ImageNet-initialised)"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--child-detect", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--t1", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--t2", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_detect:
        detect_child(args)
        return

    print(json.dumps({"startup_s": startup_seconds()}), flush=True)
    torch.set_num_threads(args.threads)
    if args.model:
        loaded = load_detector(args.model)
        model, threshold = loaded.model, loaded.threshold
    else:
        model, threshold = build_changestar("efficientnet_lite0", imagenet=True).eval(), 0.5
    pair = torch.rand(1, 6, args.size, args.size) * 255
    flops = count_flops(lambda: model(pair))
    peaks = {"fp32": matmul_peak(torch.float32).gflops, "bf16": matmul_peak(torch.bfloat16).gflops}
    report = {
        "threads": args.threads,
        "size": args.size,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "gflops_per_pair": round(flops / 1e9, 1),
        "matmul_peak_gflops": {key: round(value, 1) for key, value in peaks.items()},
    }
    for name, bf16 in (("fp32", False), ("bf16+channels_last", True)):
        seconds = time_forward(model, pair, bf16, args.repeats)
        peak = peaks["bf16" if bf16 else "fp32"]
        report[name] = {
            "pairs_per_s": round(1 / seconds, 3),
            "achieved_gflops": round(flops / seconds / 1e9, 1),
            "share_of_matmul_peak": round(flops / seconds / 1e9 / peak, 3),
        }
    report["bf16_vs_fp32_on_levir_dev"] = bf16_agreement(model, threshold)
    official = build_changestar("resnet18", temporal_symmetric=False).eval()
    rounds = interleaved_bf16({"ours": model, "official_r18": official}, pair, args.repeats)
    bare_rate = {name: args.size**2 / seconds for name, seconds in rounds["seconds"].items()}
    report["bf16_interleaved"] = {
        "ms_per_pair": {name: round(1000 * seconds, 1) for name, seconds in rounds["seconds"].items()},
        "bf16_matmul_peak_gflops_per_round": [round(peak, 1) for peak in rounds["peaks"]],
        "official_r18_share_of_peak": round(
            count_flops(lambda: official(pair))
            / rounds["seconds"]["official_r18"]
            / 1e9
            / np.median(rounds["peaks"]),
            3,
        ),
        "ours_vs_official_r18": round(bare_rate["ours"] / bare_rate["official_r18"], 3),
    }
    print(json.dumps(report, indent=1), flush=True)

    if args.raster:
        with tempfile.TemporaryDirectory(prefix="bench-detector-") as folder:
            folder = Path(folder)
            start = time.perf_counter()
            t1, t2 = make_raster_pair(folder, args.raster)
            print(f"made a {args.raster}² pair in {time.perf_counter() - start:.1f} s", flush=True)
            command = [
                sys.executable, __file__, "--child-detect", "--t1", str(t1), "--t2", str(t2),
                "--out", str(folder / "change.tif"), "--threads", str(args.threads), "--precision", args.precision,
            ] + (["--model", args.model] if args.model else [])  # fmt: skip
            child = subprocess.run(command, capture_output=True, text=True, check=True)
            large = json.loads(child.stdout.strip().splitlines()[-1])
            rate = args.raster**2 / large["wall_s"]
            large["end_to_end_vs_bare"] = {name: round(rate / bare, 3) for name, bare in bare_rate.items()}
            print(json.dumps({"raster": f"{args.raster}x{args.raster}", **large}, indent=1))


if __name__ == "__main__":
    main()
