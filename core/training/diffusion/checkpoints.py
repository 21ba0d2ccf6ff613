"""The run folder and flags both diffusion trainers share: `checkpoint.pt` (tensors and plain values only, written
atomically and read with `weights_only=True`, so a checkpoint from elsewhere cannot run code), the checkpoint step
with its held-out scores in `eval.jsonl`, the run in the shared loop, the device flags and the autocast rule."""

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from ...atomic import atomic_path
from ..run_loop import Cadence, append_jsonl, run_loop

PRECISIONS = ("auto", "bf16", "fp32")


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict) -> None:
    with atomic_path(checkpoint_path(run_dir)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(run_dir: Path) -> dict | None:
    path = checkpoint_path(run_dir)
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def run_training(
    args,
    trainer,
    train_step: Callable[[], dict[str, float]],
    evaluate: Callable[[], dict],
    describe: Callable[[dict], str],
    speed: Callable[[int, float], dict] = lambda steps, seconds: {},
) -> int:
    """A diffusion trainer's run in the shared loop, logging to `log.jsonl`. `trainer` has `step`, `elapsed`
    (seconds) and `state()`; each checkpoint adds the time since the last one to `elapsed`, writes
    `checkpoint.pt`, then appends `evaluate()`'s held-out scores to `eval.jsonl` and prints `describe(scores)`."""
    mark = time.time()

    def checkpoint() -> None:
        nonlocal mark
        trainer.elapsed += time.time() - mark
        mark = time.time()
        save_checkpoint(args.run_dir, trainer.state())
        scores = evaluate()
        append_jsonl(
            args.run_dir / "eval.jsonl", {"step": trainer.step, "hours": trainer.elapsed / 3600, **scores}
        )
        print(describe(scores), flush=True)

    log = partial(append_jsonl, args.run_dir / "log.jsonl")
    if run_loop(train_step, lambda: trainer.step, Cadence.from_args(args), checkpoint, log, speed=speed):
        print("stopped: checkpoint saved; the same command resumes")
    return 0


def add_device_arguments(parser) -> None:
    parser.add_argument("--precision", default="auto", choices=list(PRECISIONS))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)


def training_device(args) -> torch.device:
    """`--threads` applied, then the `--device` picked."""
    from ...device import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    return pick_device(args.device)


def autocast(precision: str, device: torch.device):
    """bf16 autocast for `--precision bf16`, and for `auto` on the CPU."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cpu")
    return torch.autocast(device.type, torch.bfloat16, enabled=bf16)
