"""Device choice: CUDA when present (or asked for), CPU otherwise."""

import torch

from .errors import InputError


def pick_device(choice: str = "auto") -> torch.device:
    choice = choice.lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but torch sees no CUDA device; choose 'cpu' or 'auto'.")
    if choice not in ("cpu", "cuda"):
        raise ValueError(f"Unknown device '{choice}': use 'auto', 'cpu' or 'cuda'.")
    return torch.device(choice)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    return f"CPU ({torch.get_num_threads()} threads)"


def _use_bf16(precision: str, device: torch.device) -> bool:
    if precision not in ("auto", "fp32", "bf16"):
        raise InputError(f"Unknown precision '{precision}': use auto, fp32 or bf16.")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
