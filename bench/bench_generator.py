"""Benchmark of the Changen generator's forward pass (the `cpu` config) on a 512² tile.

Run: `.venv/bin/python bench/bench_generator.py [--size 512] [--threads 1] [--repeats 5] [--weights changen_gan_cpu]`.
Each variant (fp32, bf16 autocast, each with and without channels-last) runs in its own process, so its peak
resident memory is its own. Reports the median forward time, peak RSS, the forward's FLOPs (torch's counter) and
the achieved GFLOP/s against a float32 matmul peak measured in the same process with the same thread count, by
wall time and by process CPU time per thread (the latter stays meaningful when other jobs share the cores).
Target: interactive preview of a 512² tile well under a second.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from flop_rate import count_flops, matmul_peak  # noqa: E402

from core.synthesis.changen_gan import build_generator, load_generator  # noqa: E402

VARIANTS = {
    "fp32": (None, False),
    "fp32+channels_last": (None, True),
    "bf16": (torch.bfloat16, False),
    "bf16+channels_last": (torch.bfloat16, True),
}


def measure(variant: str, size: int, threads: int, repeats: int, weights: str | None) -> dict:
    torch.set_num_threads(threads)
    dtype, channels_last = VARIANTS[variant]
    generator = load_generator(weights) if weights else build_generator("cpu").eval()
    image = torch.rand(1, 3, size, size) * 2 - 1
    semantic_t = torch.zeros(1, size, size, dtype=torch.long)
    semantic_t[:, size // 4 : size // 2, size // 4 : size // 2] = 1
    semantic_t1 = torch.zeros_like(semantic_t)
    semantic_t1[:, size // 2 :, size // 2 :] = 1
    noise = generator.sample_noise(1, size, size, torch.Generator().manual_seed(0))
    if channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    inputs = (image, semantic_t, semantic_t1, noise)
    flops = count_flops(lambda: generator(*inputs))
    times, cpu_times = [], []
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        for index in range(repeats + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            out = generator(*inputs)
            if index:  # the first call warms up oneDNN
                times.append(time.perf_counter() - start)
                cpu_times.append((time.process_time() - cpu_start) / threads)
    with torch.no_grad():
        fp32_out = generator(*inputs)
    median, cpu_median = statistics.median(times), statistics.median(cpu_times)
    peak = matmul_peak()
    return {
        "variant": variant,
        "size": size,
        "threads": threads,
        "median_s": round(median, 4),
        "median_cpu_s_per_thread": round(cpu_median, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "gflop": round(flops / 1e9, 2),
        "achieved_gflops": round(flops / median / 1e9, 2),
        "matmul_peak_gflops": round(peak.gflops, 2),
        "achieved_gflops_cpu_time": round(flops / cpu_median / 1e9, 2),
        "matmul_peak_gflops_cpu_time": round(peak.cpu_gflops, 2),
        "max_abs_diff_vs_fp32": round(float((out.float() - fp32_out).abs().max()), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--weights", default=None, help="a shipped model name or .safetensors path (default: random)"
    )
    parser.add_argument("--variant", choices=list(VARIANTS), help="measure one variant in this process")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure(args.variant, args.size, args.threads, args.repeats, args.weights)))
        return 0
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--variant", variant, "--size", str(args.size)]
        command += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
        if args.weights:
            command += ["--weights", args.weights]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(result.stdout)
        row["fraction_of_peak"] = round(row["achieved_gflops"] / row["matmul_peak_gflops"], 3)
        row["fraction_of_peak_cpu_time"] = round(
            row["achieved_gflops_cpu_time"] / row["matmul_peak_gflops_cpu_time"], 3
        )
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
