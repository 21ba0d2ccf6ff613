"""Device choice: CUDA when present (or asked for), CPU otherwise."""

import torch


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
