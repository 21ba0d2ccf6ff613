"""The run folder's `checkpoint.pt` of both diffusion trainers: tensors and plain values only, written atomically and
read with `weights_only=True` (a checkpoint from elsewhere cannot run code)."""

from pathlib import Path

import torch

from ...atomic import atomic_path


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict) -> None:
    with atomic_path(checkpoint_path(run_dir)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(run_dir: Path) -> dict | None:
    path = checkpoint_path(run_dir)
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
