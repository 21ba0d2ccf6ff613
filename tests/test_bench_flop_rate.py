"""The benchmarks' shared reference: FLOP counting and the matmul peak (bench/flop_rate.py)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from flop_rate import count_flops, matmul_peak  # noqa: E402


def test_flops_of_a_matmul_are_counted_and_the_peak_is_consistent():
    a, b = torch.randn(32, 48), torch.randn(48, 16)
    assert count_flops(lambda: a @ b) == 2 * 32 * 48 * 16
    peak = matmul_peak(size=128, repeats=3)
    assert 0 < peak.gflops <= peak.best_gflops
    assert peak.cpu_gflops > 0
