"""What the machine offers for torch (shown in Settings, so "cuda" is only offered where it works)."""

import os


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def machine_summary() -> str:
    """E.g. "CPU: 2 cores (torch uses 2 threads); CUDA: not available (torch 2.13.0+cpu is a CPU-only build)"."""
    try:
        import torch
    except ImportError:
        return f"CPU: {os.cpu_count()} cores; torch is not installed, so nothing can run yet."
    cpu = f"CPU: {os.cpu_count()} cores (torch uses {torch.get_num_threads()} threads)"
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return f"{cpu}; CUDA: {names} (torch {torch.__version__})"
    if torch.version.cuda is None:
        return f"{cpu}; CUDA: not available (torch {torch.__version__} is a CPU-only build)"
    return f"{cpu}; CUDA: not available (torch {torch.__version__} sees no NVIDIA GPU or driver)"
