"""RS-DiT latent diffusion speed, beside the matmul peak measured in the same run.

- Denoiser forward per sampler step at 512² and 1024² images (64² / 128² latents), fp32 and bf16 autocast:
  ms per step, FLOPs (torch's counter), achieved GFLOP/s and its share of the peak of that dtype.
- The autoencoder's encode + decode at the same sizes.
- One 512² edit preview end to end (`synthesize_change`, 5 building footprints changed, 20 DDIM steps): only the
  windows around the edits are sampled.
- Peak resident memory of the process.

Usage: `.venv/bin/python bench/bench_rsdit.py [--threads 1] [--denoiser FILE --autoencoder FILE]` (default: the
shipped files if present, else random weights of the same architecture: the same cost).
"""

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from flop_rate import count_flops, matmul_peak  # noqa: E402


def median_seconds(call, repeats: int, bf16: bool) -> float:
    times = []
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        call()
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_generator(args):
    from core.events.classes import PROJECT_CLASSES
    from core.paths import MODELS_DIR
    from core.synthesis.diffusion.autoencoder import AUTOENCODER_PRESETS, LatentCodec, build_autoencoder
    from core.synthesis.diffusion.change_sampler import LatentDiffusionGenerator, load_latent_diffusion
    from core.synthesis.diffusion.rsdit import RSDiTConfig, build_rsdit

    denoiser = args.denoiser or MODELS_DIR / "rsdit_cpu.safetensors"
    if Path(denoiser).is_file():
        return load_latent_diffusion(denoiser, args.autoencoder), "shipped weights"
    codec = LatentCodec(build_autoencoder("cpu"), AUTOENCODER_PRESETS["cpu"]).eval()
    model = build_rsdit(RSDiTConfig.preset("cpu", label_channels=len(PROJECT_CLASSES))).eval()
    return LatentDiffusionGenerator(codec, model, "classes"), "random weights (same cost)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--denoiser", type=Path)
    parser.add_argument("--autoencoder", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(torch.float32).gflops, "bf16": matmul_peak(torch.bfloat16).gflops}
    print(
        f"threads {args.threads}; matmul peak fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s"
    )
    generator, origin = load_generator(args)
    model, codec = generator.denoiser, generator.codec
    params = sum(p.numel() for p in model.parameters())
    print(
        f"denoiser {params / 1e6:.1f} M parameters ({origin}); autoencoder {sum(p.numel() for p in codec.parameters()) / 1e6:.1f} M"
    )
    print("| part | image | precision | ms | GFLOP | GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|")
    for size in (512, 1024):
        latent = torch.randn(1, codec.latent_channels, size // 8, size // 8)
        labels = generator.condition_map(np.zeros((size, size), np.uint8))
        t = torch.tensor([500])
        image = torch.rand(1, 3, size, size) * 2 - 1
        parts = {
            "denoiser step": lambda latent=latent, labels=labels, t=t: model(latent, t, labels),
            "encode": lambda image=image: codec.encode(image),
            "decode": lambda latent=latent: codec.decode(latent),
        }
        for name, call in parts.items():
            flops = count_flops(call)
            for precision in ("fp32", "bf16"):
                seconds = median_seconds(call, args.repeats, precision == "bf16")
                rate = flops / seconds / 1e9
                print(
                    f"| {name} | {size}² | {precision} | {seconds * 1000:.0f} | {flops / 1e9:.1f} | {rate:.0f} | "
                    f"{100 * rate / peaks[precision]:.0f} |"
                )
    from core.events.classes import BUILDING
    from core.synthesis.diffusion.change_sampler import synthesize_change

    rng = np.random.default_rng(0)
    view = rng.integers(60, 200, (512, 512, 3), dtype=np.uint8)
    change = np.zeros((512, 512), bool)
    for row, col in [(60, 80), (200, 300), (400, 120), (420, 420), (100, 400)]:
        change[row : row + 24, col : col + 30] = True
    classes = np.where(change, BUILDING, 0).astype(np.uint8)
    times = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        synthesize_change(generator, view, classes, change, seed=repeat)
        times.append(time.perf_counter() - start)
    print(
        f"512² preview, 5 edits, {generator.steps} {generator.sampler} steps: median {statistics.median(times):.2f} s "
        f"(windows around the edits only)"
    )
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
