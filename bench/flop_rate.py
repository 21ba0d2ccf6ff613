"""What the benchmarks compare a model's speed with: its FLOPs (torch's counter) and the matmul peak of this
machine, measured in the same process with the same thread count."""

import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MatmulPeak:
    gflops: float  # over all repeats, by wall time
    best_gflops: float  # the fastest single product
    cpu_gflops: float  # by process CPU time ÷ torch threads (what the threads could do when not shared)


def matmul_peak(dtype: torch.dtype = torch.float32, size: int = 1024, repeats: int = 10) -> MatmulPeak:
    """GFLOP/s of a size² matmul in `dtype` (after one warm-up product)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    walls, cpu = [], time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        walls.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu) / torch.get_num_threads()
    flops = 2 * size**3
    return MatmulPeak(
        flops * repeats / sum(walls) / 1e9, flops / min(walls) / 1e9, flops * repeats / cpu / 1e9
    )


def count_flops(call) -> int:
    """FLOPs of `call()` (no gradients) by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()
